package io.flywheel.ingest.gateway;

import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Response;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Every error leaves as an OpenAI-style JSON body; never a stack trace or an HTML page. */
public class ErrorMappers {

    private static final Logger LOG = Logger.getLogger(ErrorMappers.class);

    private final GatewayMetrics metrics;

    ErrorMappers(GatewayMetrics metrics) {
        this.metrics = metrics;
    }

    @ServerExceptionMapper
    public Response apiError(ApiError error) {
        metrics.failed(error);
        return error.toResponse();
    }

    /** 404, 405, 415, 406 and the like, which JAX-RS raises before our code runs. */
    @ServerExceptionMapper
    public Response http(WebApplicationException e) {
        int status = e.getResponse().getStatus();
        String code = switch (status) {
            case 404 -> "not_found";
            case 405 -> "method_not_allowed";
            case 406 -> "not_acceptable";
            case 415 -> "unsupported_media_type";
            default -> "http_" + status;
        };
        String message = status == 415
                ? "send application/json (one document) or application/x-ndjson (a batch)"
                : e.getMessage();
        return apiError(ApiError.of(status, status >= 500 ? "server_error" : "invalid_request_error", code, message));
    }

    @ServerExceptionMapper
    public Response unexpected(Exception e) {
        LOG.error("request failed", e);
        return apiError(ApiError.of(500, "server_error", "internal_error", "internal error; the documents were not accepted"));
    }
}
