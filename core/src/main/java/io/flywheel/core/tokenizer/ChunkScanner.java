package io.flywheel.core.tokenizer;

/**
 * Hand-written equivalents of the GPT-2 and cl100k pre-tokenization regexes (as compiled by
 * {@link PreTokenizer} with Unicode character classes). The regex engine spends more time than the
 * merges on ordinary text; these scanners do the same splits in one pass over the code points. A
 * test compares them with the regexes on generated and random text.
 *
 * <p>Each alternative is commented with the part of the regex it implements, in the regex's order:
 * the first alternative that matches at a position wins, as in the regex.
 */
final class ChunkScanner {

    private static final byte LETTER = 1;
    private static final byte NUMBER = 2;
    private static final byte SPACE = 3;
    private static final byte OTHER = 4;
    private static final byte[] ASCII = new byte[128];

    static {
        for (int c = 0; c < 128; c++) {
            ASCII[c] = classifySlow(c);
        }
    }

    private ChunkScanner() {}

    private static byte classify(int cp) {
        return cp < 128 ? ASCII[cp] : classifySlow(cp);
    }

    private static byte classifySlow(int cp) {
        if (isWhiteSpace(cp)) {
            return SPACE;
        }
        switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> {
                return LETTER;
            }
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> {
                return NUMBER;
            }
            default -> {
                return OTHER;
            }
        }
    }

    /** {@code \s} under UNICODE_CHARACTER_CLASS: the Unicode White_Space property. */
    private static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    private static boolean isNewline(int cp) {
        return cp == '\r' || cp == '\n';
    }

    /** End of the run of code points of class {@code kind} starting at {@code i}. */
    private static int runEnd(String s, int i, byte kind) {
        int n = s.length();
        while (i < n) {
            int cp = s.codePointAt(i);
            if (classify(cp) != kind) {
                break;
            }
            i += Character.charCount(cp);
        }
        return i;
    }

    /** Whitespace handling shared by both patterns: {@code \s+(?!\S)|\s+}, where {@code j} ends the run. */
    private static int spaceRunMatch(String s, int i, int j) {
        if (j == s.length()) {
            return j;
        }
        // \s+(?!\S): give back the last whitespace so the next chunk can start with it.
        int last = s.offsetByCodePoints(j, -1);
        return last > i ? last : j;
    }

    /** The end of the chunk that starts at {@code i}. */
    private interface ChunkEnd {
        int at(String s, int i);
    }

    private static void split(String s, ChunkEnd chunkEnd, PreTokenizer.ChunkConsumer out) {
        int i = 0;
        while (i < s.length()) {
            int end = chunkEnd.at(s, i);
            out.accept(s, i, end);
            i = end;
        }
    }

    // ---------------------------------------------------------------- GPT-2

    static void splitGpt2(String s, PreTokenizer.ChunkConsumer out) {
        split(s, ChunkScanner::gpt2At, out);
    }

    private static int gpt2At(String s, int i) {
        int n = s.length();
        int c0 = s.charAt(i);
        // '(?:[sdmt]|ll|ve|re)
        if (c0 == '\'' && i + 1 < n) {
            char c1 = s.charAt(i + 1);
            if (c1 == 's' || c1 == 'd' || c1 == 'm' || c1 == 't') {
                return i + 2;
            }
            if (i + 2 < n) {
                char c2 = s.charAt(i + 2);
                if ((c1 == 'l' && c2 == 'l') || (c1 == 'v' && c2 == 'e') || (c1 == 'r' && c2 == 'e')) {
                    return i + 3;
                }
            }
        }
        //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
        int start = i;
        if (c0 == ' ' && i + 1 < n) {
            start = i + 1;
        }
        byte kind = classify(s.codePointAt(start));
        if (kind != SPACE) {
            return runEnd(s, start, kind);
        }
        // \s+(?!\S) | \s+
        int j = runEnd(s, i, SPACE);
        return spaceRunMatch(s, i, j);
    }

    // ---------------------------------------------------------------- cl100k

    static void splitCl100k(String s, PreTokenizer.ChunkConsumer out) {
        split(s, ChunkScanner::cl100kAt, out);
    }

    private static boolean is(char c, char lower) {
        // (?i) with Unicode case: 's' also matches LATIN SMALL LETTER LONG S, 'k' the Kelvin sign.
        return Character.toLowerCase(c) == lower || (lower == 's' && c == '\u017F');
    }

    private static int cl100kAt(String s, int i) {
        int n = s.length();
        int c0 = s.codePointAt(i);
        int w0 = Character.charCount(c0);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (c0 == '\'' && i + 1 < n) {
            char c1 = s.charAt(i + 1);
            if (is(c1, 's') || is(c1, 't') || is(c1, 'm') || is(c1, 'd')) {
                return i + 2;
            }
            if (i + 2 < n) {
                char c2 = s.charAt(i + 2);
                if ((is(c1, 'r') && is(c2, 'e')) || (is(c1, 'v') && is(c2, 'e')) || (is(c1, 'l') && is(c2, 'l'))) {
                    return i + 3;
                }
            }
        }
        byte k0 = classify(c0);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (k0 == LETTER) {
            return runEnd(s, i, LETTER);
        }
        if (k0 != NUMBER && !isNewline(c0) && i + w0 < n && classify(s.codePointAt(i + w0)) == LETTER) {
            return runEnd(s, i + w0, LETTER);
        }
        // \p{N}{1,3}
        if (k0 == NUMBER) {
            int j = i;
            for (int count = 0; count < 3 && j < n; count++) {
                int cp = s.codePointAt(j);
                if (classify(cp) != NUMBER) {
                    break;
                }
                j += Character.charCount(cp);
            }
            return j;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        int start = (c0 == ' ' && i + 1 < n && classify(s.codePointAt(i + 1)) == OTHER) ? i + 1 : i;
        if (classify(s.codePointAt(start)) == OTHER) {
            int j = runEnd(s, start, OTHER);
            while (j < n && isNewline(s.charAt(j))) {
                j++;
            }
            return j;
        }
        // \s*[\r\n]+ : up to and including the last newline of the whitespace run.
        int j = runEnd(s, i, SPACE);
        for (int p = j - 1; p >= i; p--) {
            if (isNewline(s.charAt(p))) {
                return p + 1;
            }
        }
        // \s+(?!\S) | \s+
        return spaceRunMatch(s, i, j);
    }
}
