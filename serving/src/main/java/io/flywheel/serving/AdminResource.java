package io.flywheel.serving;

import com.fasterxml.jackson.databind.JsonNode;
import io.flywheel.core.serde.Json;
import io.smallrye.common.annotation.Blocking;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.io.IOException;

/**
 * Rollback: {@code POST /admin/models/pin {"version": N}} serves checkpoint N (verified like any
 * other) until {@code POST /admin/models/unpin} returns to the latest promoted one. Guarded by the
 * admin key ({@link AccessFilter}).
 */
@Path("/admin/models")
@Blocking
public class AdminResource {

    private final ModelRegistry registry;

    AdminResource(ModelRegistry registry) {
        this.registry = registry;
    }

    @POST
    @Path("/pin")
    @Consumes(MediaType.APPLICATION_JSON)
    public Response pin(JsonNode body) throws InterruptedException {
        if (body == null || !body.path("version").canConvertToLong() || !body.path("version").isIntegralNumber()
                || body.get("version").asLong() < 1) {
            throw ApiError.invalid("version", "send {\"version\": N} with a checkpoint version >= 1");
        }
        long version = body.get("version").asLong();
        try {
            registry.pin(version);
        } catch (IllegalStateException e) {
            throw ApiError.of(409, "invalid_request_error", "nothing_promoted", e.getMessage());
        } catch (IOException e) {
            throw ApiError.notFound("checkpoint_unavailable", e.getMessage());
        }
        return Response.ok(Json.write(Json.object().put("pinned", version).put("model_version", version)),
                MediaType.APPLICATION_JSON_TYPE).build();
    }

    @POST
    @Path("/unpin")
    public Response unpin() {
        registry.unpin();
        return Response.ok(Json.write(Json.object().putNull("pinned")), MediaType.APPLICATION_JSON_TYPE).build();
    }
}
