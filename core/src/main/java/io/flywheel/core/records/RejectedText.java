package io.flywheel.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;
import io.flywheel.core.serde.StrictUtf8;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.Objects;

/**
 * A record that did not make it to the next topic, with the reason. Nothing is dropped silently:
 * the original bytes are kept exactly. In JSON they are a string {@code original} when they are
 * valid UTF-8, otherwise {@code original_base64}; exactly one of the two is present.
 *
 * @param reason   a short, stable machine-readable reason ({@code malformed}, {@code duplicate}, ...)
 * @param detail   a human-readable explanation
 * @param original the record value exactly as it arrived
 */
public record RejectedText(String reason, String detail, byte[] original) {

    public RejectedText {
        Objects.requireNonNull(reason, "reason");
        Objects.requireNonNull(detail, "detail");
        Objects.requireNonNull(original, "original");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RejectedText r && reason.equals(r.reason) && detail.equals(r.detail)
                && Arrays.equals(original, r.original);
    }

    @Override
    public int hashCode() {
        return Objects.hash(reason, detail, Arrays.hashCode(original));
    }

    @Override
    public String toString() {
        return "RejectedText[reason=" + reason + ", detail=" + detail + ", original=" + original.length + " bytes]";
    }

    public static final Codec<RejectedText> CODEC = new Codec<>() {
        @Override
        public byte[] encode(RejectedText r) {
            ObjectNode node = Json.object().put("reason", r.reason).put("detail", r.detail);
            String text = StrictUtf8.decodeOrNull(r.original);
            if (text != null) {
                node.put("original", text);
            } else {
                node.put("original_base64", Base64.getEncoder().encodeToString(r.original));
            }
            return Json.write(node);
        }

        @Override
        public RejectedText decode(byte[] bytes) {
            Json.Fields f = Json.read(bytes);
            String reason = f.nonBlankString("reason");
            String detail = f.string("detail");
            String text = f.optionalString("original");
            String base64 = f.optionalString("original_base64");
            f.done();
            if ((text == null) == (base64 == null)) {
                throw new RecordFormatException("original", "exactly one of original and original_base64 must be present");
            }
            byte[] original;
            if (text != null) {
                original = text.getBytes(StandardCharsets.UTF_8);
            } else {
                try {
                    original = Base64.getDecoder().decode(base64);
                } catch (IllegalArgumentException e) {
                    throw new RecordFormatException("original_base64", "is not valid base64", e);
                }
            }
            return new RejectedText(reason, detail, original);
        }
    };
}
