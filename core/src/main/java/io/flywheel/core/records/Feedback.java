package io.flywheel.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;
import java.util.Objects;

/**
 * What a chat app says about an answer, on {@code flywheel.feedback.raw}, keyed by the response id
 * it is about (the chosen one for a comparison). Either a {@link Rating} of one response
 * ({@code {response_id, rating: 1|-1}}) or a {@link Comparison} of two
 * ({@code {chosen_id, rejected_id}}); both may carry {@code user} and {@code comment}.
 */
public sealed interface Feedback permits Feedback.Rating, Feedback.Comparison {

    /** Who gave it, when the app says; feedback from one user on one response counts once. */
    String user();

    String comment();

    long ts();

    /** The response this event is keyed by. */
    String key();

    record Rating(String responseId, int rating, String user, String comment, long ts) implements Feedback {
        public Rating {
            Objects.requireNonNull(responseId, "responseId");
            if (rating != 1 && rating != -1) {
                throw new RecordFormatException("rating", "must be 1 or -1, found " + rating);
            }
        }

        @Override
        public String key() {
            return responseId;
        }
    }

    record Comparison(String chosenId, String rejectedId, String user, String comment, long ts) implements Feedback {
        public Comparison {
            Objects.requireNonNull(chosenId, "chosenId");
            Objects.requireNonNull(rejectedId, "rejectedId");
            if (chosenId.equals(rejectedId)) {
                throw new RecordFormatException("rejected_id", "must differ from chosen_id");
            }
        }

        @Override
        public String key() {
            return chosenId;
        }
    }

    Codec<Feedback> CODEC = new Codec<>() {
        @Override
        public byte[] encode(Feedback feedback) {
            ObjectNode node = Json.object();
            if (feedback instanceof Rating r) {
                node.put("response_id", r.responseId()).put("rating", r.rating());
            } else if (feedback instanceof Comparison c) {
                node.put("chosen_id", c.chosenId()).put("rejected_id", c.rejectedId());
            }
            if (feedback.user() != null) {
                node.put("user", feedback.user());
            }
            if (feedback.comment() != null) {
                node.put("comment", feedback.comment());
            }
            node.put("ts", feedback.ts());
            return Json.write(node);
        }

        @Override
        public Feedback decode(byte[] bytes) {
            Json.Fields f = Json.read(bytes);
            boolean rating = f.contains("response_id") || f.contains("rating");
            boolean comparison = f.contains("chosen_id") || f.contains("rejected_id");
            if (rating == comparison) {
                throw new RecordFormatException("record",
                        "must be either {response_id, rating} or {chosen_id, rejected_id}");
            }
            Feedback out;
            if (rating) {
                long value = f.integer("rating");
                if (value != 1 && value != -1) {
                    throw new RecordFormatException("rating", "must be 1 or -1, found " + value);
                }
                out = new Rating(f.nonBlankString("response_id"), (int) value, f.optionalString("user"),
                        f.optionalString("comment"), f.nonNegativeInteger("ts"));
            } else {
                out = new Comparison(f.nonBlankString("chosen_id"), f.nonBlankString("rejected_id"),
                        f.optionalString("user"), f.optionalString("comment"), f.nonNegativeInteger("ts"));
            }
            f.done();
            return out;
        }
    };
}
