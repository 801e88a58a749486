package io.flywheel.serving;

import io.flywheel.core.serde.Json;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

/**
 * An error in the OpenAI API's shape, {@code {"error": {"message", "type", "param", "code"}}}, so
 * that clients written for OpenAI handle ours.
 */
public final class ApiError extends RuntimeException {

    private final int status;
    private final String type;
    private final String param;
    private final String code;
    private final Integer retryAfterSeconds;

    private ApiError(int status, String type, String param, String code, String message, Integer retryAfterSeconds) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** 400: a parameter is missing, of the wrong type, or out of range. */
    public static ApiError invalid(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, "invalid_value", message, null);
    }

    /** 400: a parameter this endpoint does not know (OpenAI's "Unrecognized request argument"). */
    public static ApiError unknownParameter(String param) {
        return new ApiError(400, "invalid_request_error", param, "unknown_parameter",
                "Unrecognized request argument supplied: " + param, null);
    }

    public static ApiError badRequest(String code, String message) {
        return new ApiError(400, "invalid_request_error", null, code, message, null);
    }

    public static ApiError unauthorized(String message) {
        return new ApiError(401, "invalid_request_error", null, "invalid_api_key", message, null);
    }

    public static ApiError modelNotFound(String model, String served) {
        return new ApiError(404, "invalid_request_error", "model", "model_not_found",
                "The model '" + model + "' does not exist; this server serves '" + served + "'", null);
    }

    public static ApiError notFound(String code, String message) {
        return new ApiError(404, "invalid_request_error", null, code, message, null);
    }

    /** 413: the prompt does not fit the model's context with room for one generated token. */
    public static ApiError contextLength(String param, int promptTokens, int context) {
        return new ApiError(413, "invalid_request_error", param, "context_length_exceeded",
                "This model's maximum context length is " + context + " tokens; the prompt has " + promptTokens
                        + " tokens, which leaves no room to generate", null);
    }

    /** 413: a part of the request is larger than its documented limit. */
    public static ApiError tooLarge(String param, String code, String message) {
        return new ApiError(413, "invalid_request_error", param, code, message, null);
    }

    public static ApiError rateLimited(int perMinute, int retryAfterSeconds) {
        return new ApiError(429, "requests", null, "rate_limit_exceeded",
                "Rate limit reached: " + perMinute + " requests per minute; retry after " + retryAfterSeconds + " s",
                retryAfterSeconds);
    }

    public static ApiError modelNotLoaded() {
        return new ApiError(503, "server_error", null, "model_not_loaded",
                "No model is loaded yet: waiting for the first promoted checkpoint", 5);
    }

    public static ApiError overloaded() {
        return new ApiError(503, "server_error", null, "server_overloaded",
                "The server is at capacity (the request queue is full); retry shortly", 1);
    }

    public static ApiError of(int status, String type, String code, String message) {
        return new ApiError(status, type, null, code, message, null);
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }

    /** The body as bytes, for answers written outside JAX-RS (the event loop's {@link RequestBodies}). */
    public byte[] body() {
        return Json.write(Json.object().set("error", Json.object().put("message", getMessage()).put("type", type)
                .put("param", param).put("code", code)));
    }

    public Response toResponse() {
        Response.ResponseBuilder response = Response.status(status).type(MediaType.APPLICATION_JSON_TYPE)
                .entity(new Body(new Detail(getMessage(), type, param, code)));
        if (status == 401) {
            response.header("WWW-Authenticate", "Bearer");
        }
        if (retryAfterSeconds != null) {
            response.header("Retry-After", retryAfterSeconds);
        }
        return response.build();
    }

    public record Body(Detail error) {}

    /** {@code param} and {@code code} are always present (null when not applicable), as OpenAI sends them. */
    public record Detail(String message, String type, String param, String code) {}
}
