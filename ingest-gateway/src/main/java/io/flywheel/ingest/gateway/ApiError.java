package io.flywheel.ingest.gateway;

import com.fasterxml.jackson.annotation.JsonInclude;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

/**
 * An error in the OpenAI API's shape, {@code {"error": {"message", "type", "param", "code"}}}, so
 * that clients that already handle OpenAI errors handle ours. {@code line} names the NDJSON line
 * (1-based) that failed a batch, when there is one.
 */
public final class ApiError extends RuntimeException {

    private final int status;
    private final String type;
    private final String code;
    private final Integer line;

    private ApiError(int status, String type, String code, Integer line, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.code = code;
        this.line = line;
    }

    public static ApiError badRequest(String code, Integer line, String message) {
        return new ApiError(400, "invalid_request_error", code, line, at(line, message));
    }

    public static ApiError tooLarge(String code, Integer line, String message) {
        return new ApiError(413, "invalid_request_error", code, line, at(line, message));
    }

    public static ApiError unauthorized(String message) {
        return new ApiError(401, "invalid_request_error", "invalid_api_key", null, message);
    }

    public static ApiError unavailable(String message) {
        return new ApiError(503, "server_error", "broker_unavailable", null, message);
    }

    public static ApiError of(int status, String type, String code, String message) {
        return new ApiError(status, type, code, null, message);
    }

    private static String at(Integer line, String message) {
        return line == null ? message : "line " + line + ": " + message;
    }

    public String code() {
        return code;
    }

    public Response toResponse() {
        Response.ResponseBuilder response = Response.status(status)
                .type(MediaType.APPLICATION_JSON_TYPE)
                .entity(new Body(new Detail(getMessage(), type, null, code, line)));
        if (status == 401) {
            response.header("WWW-Authenticate", "Bearer");
        }
        return response.build();
    }

    public record Body(Detail error) {}

    /** {@code param} is always present (null: no request parameter is at fault), as OpenAI sends it. */
    public record Detail(String message, String type, String param, String code,
                         @JsonInclude(JsonInclude.Include.NON_NULL) Integer line) {}
}
