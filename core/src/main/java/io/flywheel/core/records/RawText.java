package io.flywheel.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;
import io.flywheel.core.serde.StrictUtf8;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;

/**
 * A document of {@code flywheel.text.raw}. Producers may send, with any Kafka client:
 * <ul>
 *   <li>a JSON object with a string {@code text} and any of {@code id}, {@code source}, {@code ts}
 *       (epoch milliseconds) and {@code meta} (an object of strings; numbers and booleans are
 *       taken as their text);</li>
 *   <li>any other UTF-8 value, which is the text of one document.</li>
 * </ul>
 * What the value leaves out comes from the Kafka record ({@link #fromRecord}): the id from the
 * record's key, else {@link DocumentIds a hash of source and text}; the time from the record's
 * timestamp; the source from a {@code source} header, else {@code kafka}. Invalid UTF-8, a value
 * starting with '{' that is not such an object, wrong types and unknown fields are refused, as
 * is a record with no value (a tombstone).
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

    /** The source of a record that names none, in its value or its headers. */
    public static final String DEFAULT_SOURCE = "kafka";

    /**
     * The document a {@code text.raw} record carries, with what its value leaves out taken from the
     * record itself.
     *
     * @param key          the record's key, or null
     * @param value        the record's value, or null (a tombstone: refused)
     * @param timestamp    the record's timestamp (negative when it has none: then now)
     * @param sourceHeader the record's {@code source} header as text, or null
     * @throws RecordFormatException naming what is wrong
     */
    public static RawText fromRecord(String key, byte[] value, long timestamp, String sourceHeader) {
        if (value == null) {
            throw new RecordFormatException("record", "has no value (a tombstone)");
        }
        String fallbackSource = sourceHeader != null && !sourceHeader.isBlank() ? sourceHeader.strip() : DEFAULT_SOURCE;
        long fallbackTs = timestamp >= 0 ? timestamp : System.currentTimeMillis();
        String fallbackId = key != null && !key.isBlank() ? key : null;
        int start = value.length >= 3 && (value[0] & 0xff) == 0xEF && (value[1] & 0xff) == 0xBB && (value[2] & 0xff) == 0xBF ? 3 : 0;
        if (!startsWithBrace(value, start)) {
            String text = StrictUtf8.decodeOrNull(start == 0 ? value : Arrays.copyOfRange(value, start, value.length));
            if (text == null) {
                throw new RecordFormatException("record", "is not valid UTF-8 (byte " + StrictUtf8.firstInvalidByte(value) + ")");
            }
            return new RawText(fallbackId != null ? fallbackId : DocumentIds.of(fallbackSource, text), fallbackSource, text,
                    fallbackTs, Map.of());
        }
        // The JSON parser reads the bytes once, refusing invalid UTF-8 (and skipping a byte-order mark) itself.
        Json.Fields f = Json.read(value);
        String text = f.string("text");
        String source = f.optionalString("source");
        if (source != null && source.isBlank()) {
            throw new RecordFormatException("source", "must not be blank");
        }
        source = source != null ? source : fallbackSource;
        String id = f.optionalString("id");
        if (id != null && id.isBlank()) {
            throw new RecordFormatException("id", "must not be blank");
        }
        id = id != null ? id : fallbackId != null ? fallbackId : DocumentIds.of(source, text);
        Long ts = f.optionalInteger("ts");
        if (ts != null && ts < 0) {
            throw new RecordFormatException("ts", "must be a non-negative integer (epoch milliseconds)");
        }
        Map<String, String> meta = f.optionalScalarMap("meta");
        f.done();
        return new RawText(id, source, text, ts != null ? ts : fallbackTs, meta);
    }

    /** Whether the first byte after a byte-order mark and ASCII whitespace is '{'. */
    private static boolean startsWithBrace(byte[] value, int from) {
        for (int i = from; i < value.length; i++) {
            byte b = value[i];
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
                return b == '{';
            }
        }
        return false;
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
