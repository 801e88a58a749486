package io.flywheel.tokenizerstream;

import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Heuristic quality rules on cleaned text, cheapest first:
 * <ul>
 *   <li>no text at all: {@code empty};</li>
 *   <li>fewer code points than {@code minChars}: {@code too_short}; more than {@code maxChars}:
 *       {@code too_long};</li>
 *   <li>letters over visible code points below {@code minLetterShare} (0 switches it off):
 *       {@code low_letter_share};</li>
 *   <li>non-blank lines that repeat an earlier line, over all non-blank lines, above
 *       {@code maxRepeatedLineShare} (1 switches it off; documents with fewer than
 *       {@link #MIN_LINES_FOR_REPETITION} lines pass): {@code repetitive};</li>
 *   <li>a blocklist term, case-insensitive, as a whole word or phrase: {@code blocked_term}.</li>
 * </ul>
 */
final class QualityFilter {

    static final int MIN_LINES_FOR_REPETITION = 4;

    private final int minChars;
    private final int maxChars;
    private final double minLetterShare;
    private final double maxRepeatedLineShare;
    private final List<String> blocklist;
    private final Pattern blockPattern;

    QualityFilter(int minChars, int maxChars, double minLetterShare, double maxRepeatedLineShare, List<String> blocklist) {
        if (minChars < 1 || maxChars < minChars) {
            throw new IllegalArgumentException("need 1 <= min chars <= max chars, got " + minChars + " and " + maxChars);
        }
        this.minChars = minChars;
        this.maxChars = maxChars;
        this.minLetterShare = minLetterShare;
        this.maxRepeatedLineShare = maxRepeatedLineShare;
        this.blocklist = blocklist.stream().map(String::strip).filter(t -> !t.isEmpty()).toList();
        StringBuilder alternatives = new StringBuilder();
        for (String term : this.blocklist) {
            alternatives.append(alternatives.isEmpty() ? "" : "|").append(Pattern.quote(term));
        }
        // Whole words only: "ass" must not block "class".
        this.blockPattern = Pattern.compile("(?<![\\p{L}\\p{N}])(?:" + alternatives + ")(?![\\p{L}\\p{N}])",
                Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);
    }

    Verdict<Document> check(Document doc) {
        String text = doc.text();
        if (text.isEmpty()) {
            return Verdict.reject(Reason.EMPTY, "no text left after cleaning", doc.original());
        }
        int chars = text.codePointCount(0, text.length());
        if (chars < minChars) {
            return Verdict.reject(Reason.TOO_SHORT, chars + " characters, minimum " + minChars, doc.original());
        }
        if (chars > maxChars) {
            return Verdict.reject(Reason.TOO_LONG, chars + " characters, maximum " + maxChars, doc.original());
        }
        double letters = letterShare(text);
        if (letters < minLetterShare) {
            return Verdict.reject(Reason.LOW_LETTER_SHARE,
                    String.format(Locale.ROOT, "letters are %.2f of visible characters, minimum %.2f", letters, minLetterShare), doc.original());
        }
        double repeated = repeatedLineShare(text);
        if (repeated > maxRepeatedLineShare) {
            return Verdict.reject(Reason.REPETITIVE,
                    String.format(Locale.ROOT, "%.2f of lines repeat an earlier line, maximum %.2f", repeated, maxRepeatedLineShare), doc.original());
        }
        if (!blocklist.isEmpty()) {
            String term = blockedTerm(text);
            if (term != null) {
                return Verdict.reject(Reason.BLOCKED_TERM, "contains the blocked term '" + term + "'", doc.original());
            }
        }
        return Verdict.pass(doc);
    }

    static double letterShare(String text) {
        int letters = 0;
        int visible = 0;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (!Character.isWhitespace(cp)) {
                visible++;
                if (Character.isLetter(cp)) {
                    letters++;
                }
            }
        }
        return visible == 0 ? 0 : (double) letters / visible;
    }

    static double repeatedLineShare(String text) {
        Set<String> seen = new HashSet<>();
        int lines = 0;
        int repeats = 0;
        int start = 0;
        while (start <= text.length()) {
            int end = text.indexOf('\n', start);
            if (end < 0) {
                end = text.length();
            }
            String line = text.substring(start, end).strip();
            if (!line.isEmpty()) {
                lines++;
                if (!seen.add(line)) {
                    repeats++;
                }
            }
            start = end + 1;
        }
        return lines < MIN_LINES_FOR_REPETITION ? 0 : (double) repeats / lines;
    }

    /** The first blocklist term found as a whole word (or phrase), or null. */
    private String blockedTerm(String text) {
        var matcher = blockPattern.matcher(text);
        if (!matcher.find()) {
            return null;
        }
        String found = matcher.group();
        return blocklist.stream().filter(found::equalsIgnoreCase).findFirst().orElse(found);
    }
}
