package io.flywheel.core.records;

import io.flywheel.core.serde.Binary;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Which part of the data a document belongs to, chosen deterministically from its id. */
public enum Split {
    TRAIN(0),
    VALIDATION(1);

    private final int code;

    Split(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /**
     * The split of a document, from its id alone: the same id always lands on the same side, in
     * every process and every run. The first 53 bits of the id's SHA-256, read as a number in
     * [0, 1), fall below {@code validationShare} for validation documents.
     */
    public static Split of(String documentId, double validationShare) {
        if (!(validationShare >= 0 && validationShare <= 1)) {
            throw new IllegalArgumentException("validation share must be within [0, 1]: " + validationShare);
        }
        byte[] sha = Binary.sha256(documentId.getBytes(StandardCharsets.UTF_8));
        long bits = ByteBuffer.wrap(sha).getLong() >>> 11;
        return bits * 0x1.0p-53 < validationShare ? VALIDATION : TRAIN;
    }

    public static Split ofCode(int code) {
        for (Split s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return null;
    }
}
