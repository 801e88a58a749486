package io.flywheel.serving;

import com.fasterxml.jackson.core.JsonProcessingException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Response;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Every error leaves as an OpenAI-style JSON body, counted by status; never a stack trace. */
public class ErrorMappers {

    private static final Logger LOG = Logger.getLogger(ErrorMappers.class);

    private final ServingMetrics metrics;

    ErrorMappers(ServingMetrics metrics) {
        this.metrics = metrics;
    }

    @ServerExceptionMapper
    public Response apiError(ApiError error) {
        metrics.request(error.status());
        return error.toResponse();
    }

    /** Where the JSON broke, in the client's terms; the parser's own message names its internals. */
    @ServerExceptionMapper
    public Response json(JsonProcessingException e) {
        String where = e.getLocation() == null || e.getLocation().getLineNr() < 1 ? ""
                : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
        return apiError(ApiError.badRequest("invalid_json", "We could not parse the JSON body of your request" + where
                + ": it must be one complete JSON object"));
    }

    /** Nobody is left to answer; counted, not logged as a failure. */
    @ServerExceptionMapper
    public Response clientGone(Generation.ClientGone e) {
        metrics.request(CompletionsResource.CLIENT_CLOSED);
        return Response.status(CompletionsResource.CLIENT_CLOSED).build();
    }

    /** 404, 405, 415 and the like, which JAX-RS raises before our code runs. */
    @ServerExceptionMapper
    public Response http(WebApplicationException e) {
        int status = e.getResponse().getStatus();
        if (status == 400 && e.getCause() instanceof JsonProcessingException j) {
            return json(j);
        }
        String code = switch (status) {
            case 400 -> "invalid_request";
            case 404 -> "not_found";
            case 405 -> "method_not_allowed";
            case 406 -> "not_acceptable";
            case 415 -> "unsupported_media_type";
            default -> "http_" + status;
        };
        String message = status == 415 ? "send the request body as application/json" : e.getMessage();
        return apiError(ApiError.of(status, status >= 500 ? "server_error" : "invalid_request_error", code, message));
    }

    @ServerExceptionMapper
    public Response unexpected(Exception e) {
        LOG.error("request failed", e);
        return apiError(ApiError.of(500, "server_error", "internal_error", "The server had an error while processing your request"));
    }
}
