package io.flywheel.feedback;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Binary;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Feedback joined with the responses it is about, on its way (keyed by prompt hash) to the pair
 * builder: a {@link Rated} answer, or a {@link Compared} pair of answers to one prompt.
 */
sealed interface Joined permits Joined.Rated, Joined.Compared {

    /** The prompt as the model saw it (chat messages rendered by the template, specials spelled out). */
    String prompt();

    /** One answer: the response id the client saw and the generated text. */
    record Answer(String id, String completion) {
        public Answer {
            Objects.requireNonNull(id, "id");
            Objects.requireNonNull(completion, "completion");
        }
    }

    record Rated(String prompt, Answer answer, int rating) implements Joined {}

    record Compared(String prompt, Answer chosen, Answer rejected) implements Joined {}

    /** The repartition key: the same prompt from any response meets in one task. */
    static String promptHash(String prompt) {
        return Binary.sha256ToHex(Binary.sha256(prompt.getBytes(StandardCharsets.UTF_8)));
    }

    Codec<Joined> CODEC = new Codec<>() {
        @Override
        public byte[] encode(Joined joined) {
            ObjectNode node = Json.object().put("prompt", joined.prompt());
            if (joined instanceof Rated r) {
                node.put("kind", "rated").put("rating", r.rating());
                answer(node.putObject("answer"), r.answer());
            } else if (joined instanceof Compared c) {
                node.put("kind", "compared");
                answer(node.putObject("chosen"), c.chosen());
                answer(node.putObject("rejected"), c.rejected());
            }
            return Json.write(node);
        }

        private void answer(ObjectNode node, Answer a) {
            node.put("id", a.id()).put("completion", a.completion());
        }

        @Override
        public Joined decode(byte[] bytes) {
            Json.Fields f = Json.read(bytes);
            String prompt = f.string("prompt");
            String kind = f.string("kind");
            Joined out = switch (kind) {
                case "rated" -> new Rated(prompt, answer(f.object("answer")), (int) f.integer("rating"));
                case "compared" -> new Compared(prompt, answer(f.object("chosen")), answer(f.object("rejected")));
                default -> throw new RecordFormatException("kind", "unknown kind '" + kind + "'");
            };
            f.done();
            return out;
        }

        private Answer answer(Json.Fields f) {
            Answer a = new Answer(f.string("id"), f.string("completion"));
            f.done();
            return a;
        }
    };
}
