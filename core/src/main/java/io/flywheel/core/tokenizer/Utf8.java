package io.flywheel.core.tokenizer;

/** Strict UTF-8 validation, one sequence at a time. */
final class Utf8 {
    private Utf8() {}

    /**
     * The length of the valid UTF-8 sequence starting at {@code i}, or 0 if the bytes there are not
     * one (overlong forms, surrogates, values above U+10FFFF and truncated sequences are invalid).
     */
    static int sequenceLength(byte[] b, int i) {
        int b0 = b[i] & 0xFF;
        if (b0 < 0x80) {
            return 1;
        }
        int n;
        int min;
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            n = 2;
            min = 0x80;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            n = 3;
            min = 0x800;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            n = 4;
            min = 0x10000;
        } else {
            return 0;
        }
        if (i + n > b.length) {
            return 0;
        }
        int cp = b0 & (0x7F >> n);
        for (int k = 1; k < n; k++) {
            int c = b[i + k] & 0xFF;
            if ((c & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (c & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        return n;
    }

    /** Receives the maximal runs of valid UTF-8 as text and of invalid bytes as ranges, in order. */
    interface InvalidRange {
        void accept(int from, int to);
    }

    static void forEachSegment(byte[] data, java.util.function.Consumer<String> text, InvalidRange invalid) {
        int pos = 0;
        while (pos < data.length) {
            int validEnd = pos;
            int len;
            while (validEnd < data.length && (len = sequenceLength(data, validEnd)) > 0) {
                validEnd += len;
            }
            if (validEnd > pos) {
                text.accept(new String(data, pos, validEnd - pos, java.nio.charset.StandardCharsets.UTF_8));
                pos = validEnd;
            }
            int invalidEnd = pos;
            while (invalidEnd < data.length && sequenceLength(data, invalidEnd) <= 0) {
                invalidEnd++;
            }
            if (invalidEnd > pos) {
                invalid.accept(pos, invalidEnd);
                pos = invalidEnd;
            }
        }
    }
}
