package io.flywheel.core.records;

import io.flywheel.core.serde.Binary;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Stable document ids: the same source and text always give the same id, so a re-run of an
 * ingest is recognised downstream (the tokenizer stream rejects it as a duplicate).
 */
public final class DocumentIds {

    private DocumentIds() {}

    /** {@code sha256(source, NUL, text)}, first 128 bits in hex: 32 characters. */
    public static String of(String source, String text) {
        byte[] s = source.getBytes(StandardCharsets.UTF_8);
        byte[] t = text.getBytes(StandardCharsets.UTF_8);
        byte[] both = new byte[s.length + 1 + t.length];
        System.arraycopy(s, 0, both, 0, s.length);
        System.arraycopy(t, 0, both, s.length + 1, t.length);
        return HexFormat.of().formatHex(Binary.sha256(both), 0, 16);
    }
}
