package io.flywheel.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.Json;
import java.util.Objects;

/**
 * A completion that serving produced, on the compacted {@code flywheel.responses}, keyed by
 * {@link #id}, so that feedback about it can be joined to its prompt.
 *
 * @param id           the response id the client saw ({@code chatcmpl-...} / {@code cmpl-...})
 * @param modelVersion the checkpoint version that produced it
 * @param prompt       the prompt text as the model saw it (chat messages rendered by the template)
 * @param completion   the generated text
 * @param ts           when it was produced, epoch milliseconds
 */
public record ResponseRecord(String id, long modelVersion, String prompt, String completion, long ts) {

    public ResponseRecord {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(completion, "completion");
    }

    public static final Codec<ResponseRecord> CODEC = new Codec<>() {
        @Override
        public byte[] encode(ResponseRecord r) {
            return Json.write(Json.object().put("id", r.id).put("model_version", r.modelVersion)
                    .put("prompt", r.prompt).put("completion", r.completion).put("ts", r.ts));
        }

        @Override
        public ResponseRecord decode(byte[] bytes) {
            Json.Fields f = Json.read(bytes);
            ResponseRecord r = new ResponseRecord(f.nonBlankString("id"), f.nonNegativeInteger("model_version"),
                    f.string("prompt"), f.string("completion"), f.nonNegativeInteger("ts"));
            f.done();
            return r;
        }
    };
}
