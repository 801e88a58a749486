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
import java.nio.charset.StandardCharsets;

/**
 * {@code POST /v1/feedback}: {@code {"response_id", "rating": 1|-1}} or
 * {@code {"chosen_id", "rejected_id"}}, each with an optional {@code user} and {@code comment}.
 * Answered 202 once {@code feedback.raw} has it; the feedback stream joins it to its response.
 */
@Path("/v1/feedback")
@Blocking
public class FeedbackResource {

    /** A comment's limit, in UTF-8 bytes (README.md); larger ones are 413 before Kafka is involved. */
    static final int MAX_COMMENT_BYTES = 16 * 1024;
    /** A whole feedback record's limit, well inside the producer's request size. */
    static final int MAX_RECORD_BYTES = 64 * 1024;

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
        if (record.path("comment").isTextual()
                && record.get("comment").asText().getBytes(StandardCharsets.UTF_8).length > MAX_COMMENT_BYTES) {
            throw ApiError.tooLarge("comment", "comment_too_long", "A comment may have at most " + MAX_COMMENT_BYTES + " bytes of UTF-8");
        }
        record.put("ts", System.currentTimeMillis());
        Feedback feedback;
        try {
            feedback = Feedback.CODEC.decode(Json.write(record));
        } catch (RecordFormatException e) {
            throw ApiError.invalid(e.field().equals("record") ? null : e.field(), e.getMessage());
        }
        if (Feedback.CODEC.encode(feedback).length > MAX_RECORD_BYTES) {
            throw ApiError.tooLarge(null, "feedback_too_large", "A feedback record may have at most " + MAX_RECORD_BYTES + " bytes");
        }
        events.feedback(feedback);
        metrics.request(202);
        return Response.accepted(Json.write(Json.object().put("object", "feedback").put("status", "accepted")
                .put("response_id", feedback.key()))).type(MediaType.APPLICATION_JSON_TYPE).build();
    }
}
