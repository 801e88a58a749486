package io.flywheel.tokenizerstream;

import java.text.Normalizer;

/**
 * Puts text in one canonical form so that equal-looking documents are equal strings (which exact
 * dedup relies on) and the tokenizer never sees invisible junk:
 * <ul>
 *   <li>Unicode NFC;</li>
 *   <li>every line break ({@code \r\n}, {@code \r}, NEL, U+2028/2029, form feed, vertical tab)
 *       becomes {@code \n}; at most one blank line in a row; none at the start or end;</li>
 *   <li>control characters (NUL included) other than tab and newline, byte-order marks and
 *       zero-width spaces are removed; unpaired surrogates become U+FFFD;</li>
 *   <li>a line keeps its indentation (code stays readable), but any other run of spaces, tabs or
 *       Unicode spaces becomes one space, and trailing spaces go; the text starts with a visible
 *       character.</li>
 * </ul>
 * One pass over the characters after NFC (which is skipped when the text is already NFC).
 */
final class TextNormalizer {

    private TextNormalizer() {}

    static String normalize(String text) {
        String s = Normalizer.isNormalized(text, Normalizer.Form.NFC) ? text : Normalizer.normalize(text, Normalizer.Form.NFC);
        StringBuilder out = new StringBuilder(s.length());
        StringBuilder indent = new StringBuilder();
        boolean lineStart = true;
        boolean pendingSpace = false;
        int pendingNewlines = 0;
        int n = s.length();
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (isLineBreak(c)) {
                if (c == '\r' && i + 1 < n && s.charAt(i + 1) == '\n') {
                    i++;
                }
                pendingNewlines++;
                lineStart = true;
                pendingSpace = false;
                indent.setLength(0);
                continue;
            }
            if (c == '\t' || c == ' ' || (c > 127 && Character.isSpaceChar(c))) {
                if (lineStart) {
                    indent.append(c == '\t' ? '\t' : ' ');
                } else {
                    pendingSpace = true;
                }
                continue;
            }
            if (Character.isISOControl(c) || c == '\uFEFF' || c == '\u200B') {
                continue;
            }
            // A visible character: first flush the whitespace that precedes it.
            if (lineStart) {
                if (!out.isEmpty()) {
                    out.append(pendingNewlines >= 2 ? "\n\n" : "\n");
                    out.append(indent);
                }
                indent.setLength(0);
                pendingNewlines = 0;
                lineStart = false;
            } else if (pendingSpace) {
                out.append(' ');
            }
            pendingSpace = false;
            if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                out.append(c).append(s.charAt(++i));
            } else if (Character.isSurrogate(c)) {
                out.append('\uFFFD');
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    private static boolean isLineBreak(char c) {
        return c == '\n' || c == '\r' || c == '\u0085' || c == '\u2028' || c == '\u2029' || c == '\f' || c == '\u000B';
    }
}
