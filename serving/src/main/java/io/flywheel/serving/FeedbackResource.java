package io.flywheel.serving;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.records.Feedback;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;
import io.smallrye.common.annotation.Blocking;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

/**
 * {@code POST /v1/feedback}: {@code {"response_id", "rating": 1|-1}} or
 * {@code {"chosen_id", "rejected_id"}}, each with an optional {@code user} and {@code comment}.
 * Answered 202 once {@code feedback.raw} has it; the feedback stream joins it to its response.
 */
@Path("/v1/feedback")
@Blocking
public class FeedbackResource {

    private final EventSink events;
    private final ServingMetrics metrics;

    FeedbackResource(EventSink events, ServingMetrics metrics) {
        this.events = events;
        this.metrics = metrics;
    }

    @POST
    @Consumes(MediaType.APPLICATION_JSON)
    public Response feedback(JsonNode body) {
        if (body == null || !body.isObject()) {
            throw ApiError.badRequest("invalid_json", "The request body must be a JSON object");
        }
        ObjectNode record = ((ObjectNode) body).deepCopy();
        if (record.has("ts")) {
            throw ApiError.invalid("ts", "'ts' is set by the server");
        }
        record.put("ts", System.currentTimeMillis());
        Feedback feedback;
        try {
            feedback = Feedback.CODEC.decode(Json.write(record));
        } catch (RecordFormatException e) {
            throw ApiError.invalid(e.field().equals("record") ? null : e.field(), e.getMessage());
        }
        events.feedback(feedback);
        metrics.request(202);
        return Response.accepted(Json.write(Json.object().put("object", "feedback").put("status", "accepted")
                .put("response_id", feedback.key()))).type(MediaType.APPLICATION_JSON_TYPE).build();
    }
}
