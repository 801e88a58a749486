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
    private final String param;
    private final Integer line;

    private ApiError(int status, String type, String code, String param, Integer line, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.code = code;
        this.param = param;
        this.line = line;
    }

    public static ApiError badRequest(String code, Integer line, String message) {
        return new ApiError(400, "invalid_request_error", code, null, line, at(line, message));
    }

    public static ApiError tooLarge(String code, Integer line, String message) {
        return new ApiError(413, "invalid_request_error", code, null, line, at(line, message));
    }

    public static ApiError unauthorized(String message) {
        return new ApiError(401, "invalid_request_error", "invalid_api_key", null, null, message);
    }

    public static ApiError unavailable(String message) {
        return new ApiError(503, "server_error", "broker_unavailable", null, null, message);
    }

    public static ApiError of(int status, String type, String code, String message) {
        return new ApiError(status, type, code, null, null, message);
    }

    private static String at(Integer line, String message) {
        return line == null ? message : "line " + line + ": " + message;
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }

    public Response toResponse() {
        Response.ResponseBuilder response = Response.status(status)
                .type(MediaType.APPLICATION_JSON_TYPE)
                .entity(new Body(new Detail(getMessage(), type, param, code, line)));
        if (status == 401) {
            response.header("WWW-Authenticate", "Bearer");
        }
        return response.build();
    }

    public record Body(Detail error) {}

    /** {@code param} and {@code code} are always present, null when unknown, as OpenAI sends them. */
    public record Detail(String message, String type, String param, String code,
                         @JsonInclude(JsonInclude.Include.NON_NULL) Integer line) {}
}
