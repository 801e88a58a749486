package io.flywheel.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.Json;
import java.util.Map;
import java.util.Objects;

/**
 * What producers send to {@code flywheel.text.raw}, keyed by {@link #id}.
 *
 * @param id     stable document id (given by the producer, or a hash of source and content)
 * @param source where the text came from (a file, a feed, an app)
 * @param text   the document, any size the topic allows; may be empty (the stream rejects it then)
 * @param ts     event time, epoch milliseconds
 * @param meta   free-form string attributes; empty when the producer sent none
 */
public record RawText(String id, String source, String text, long ts, Map<String, String> meta) {

    public RawText {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(text, "text");
        meta = Map.copyOf(meta);
    }

    public static final Codec<RawText> CODEC = new Codec<>() {
        @Override
        public byte[] encode(RawText r) {
            ObjectNode node = Json.object()
                    .put("id", r.id).put("source", r.source).put("text", r.text).put("ts", r.ts);
            ObjectNode meta = node.putObject("meta");
            r.meta.forEach(meta::put);
            return Json.write(node);
        }

        @Override
        public RawText decode(byte[] bytes) {
            Json.Fields f = Json.read(bytes);
            RawText r = new RawText(f.nonBlankString("id"), f.nonBlankString("source"), f.string("text"),
                    f.nonNegativeInteger("ts"), f.optionalStringMap("meta"));
            f.done();
            return r;
        }
    };
}
