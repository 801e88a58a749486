package io.flywheel.core.records;

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

    public static Split ofCode(int code) {
        for (Split s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return null;
    }
}
