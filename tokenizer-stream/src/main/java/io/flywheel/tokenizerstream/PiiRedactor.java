package io.flywheel.tokenizerstream;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Replaces personal data and secrets by typed placeholders ({@code [EMAIL]}, {@code [PHONE]},
 * {@code [CARD]}, {@code [IP]}, {@code [SECRET]}) so that the model never learns them.
 *
 * <p>Each kind is found by a hand-written scan from a cheap trigger (an {@code @}, a digit, a
 * colon, a long run of token characters) and then validated: a regex over the whole text would
 * try every position and cost more than tokenizing it. What counts:
 * <ul>
 *   <li>e-mail: {@code local@domain.tld} with a letter-only top-level domain of 2+ letters;</li>
 *   <li>payment card: 13-19 digits, optionally grouped by single spaces or dashes, starting with
 *       3-6 (the card networks' prefixes), passing the Luhn check;</li>
 *   <li>phone: 10-15 digits with separators ({@code +}, spaces, dashes, dots, parentheses), or
 *       {@code +} and 8-15 digits; bare digit runs (ids, timestamps) are left alone;</li>
 *   <li>IP: dotted IPv4 with every octet at most 255; IPv6 in any valid colon form;</li>
 *   <li>secret: a private-key block, a token with a well-known key prefix ({@code sk-},
 *       {@code ghp_}, {@code AKIA}, ...), or any run of 32+ token characters that mixes upper
 *       case, lower case and digits with at least 4 bits of entropy per character (hex digests
 *       and words do not).</li>
 * </ul>
 */
final class PiiRedactor {

    enum Kind {
        EMAIL, PHONE, CARD, IP, SECRET;

        String placeholder() {
            return "[" + name() + "]";
        }

        /** The metric label: {@code email}, {@code phone}, ... */
        String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The redacted text and how many of each kind were replaced. */
    record Result(String text, Map<Kind, Integer> counts) {}

    private record Span(int start, int end, Kind kind) {}

    private static final List<String> KEY_PREFIXES = List.of("sk-", "sk_live_", "sk_test_", "rk_live_", "pk_live_",
            "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-", "xoxs-",
            "AKIA", "ASIA", "AIza", "hf_", "npm_");
    private static final int MIN_KEY_BODY = 16;
    private static final int MIN_GENERIC_SECRET = 32;
    private static final Pattern IPV4 = Pattern.compile("(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})");

    private PiiRedactor() {}

    static Result redact(String text) {
        Map<Kind, Integer> counts = new EnumMap<>(Kind.class);
        // Secrets first: a key may contain digits or an '@' that the other scans would half-take.
        String out = replace(text, findSecrets(text), counts);
        out = replace(out, findEmails(out), counts);
        out = replace(out, findIpv6(out), counts);
        out = replace(out, findNumbers(out), counts);
        return new Result(out, counts);
    }

    private static String replace(String text, List<Span> spans, Map<Kind, Integer> counts) {
        if (spans.isEmpty()) {
            return text;
        }
        StringBuilder out = new StringBuilder(text.length());
        int at = 0;
        for (Span span : spans) {
            out.append(text, at, span.start()).append(span.kind().placeholder());
            counts.merge(span.kind(), 1, Integer::sum);
            at = span.end();
        }
        return out.append(text, at, text.length()).toString();
    }

    // --- secrets -------------------------------------------------------------------------------

    private static List<Span> findSecrets(String text) {
        List<Span> spans = new ArrayList<>();
        int n = text.length();
        int i = 0;
        while (i < n) {
            if (text.startsWith("-----BEGIN ", i)) {
                int header = text.indexOf("-----", i + 11);
                int end = header < 0 ? -1 : text.indexOf("-----END ", header + 5);
                int close = end < 0 ? -1 : text.indexOf("-----", end + 9);
                if (header >= 0 && text.substring(i, header).endsWith("PRIVATE KEY") && close >= 0) {
                    spans.add(new Span(i, close + 5, Kind.SECRET));
                    i = close + 5;
                    continue;
                }
            }
            if (!isTokenChar(text.charAt(i))) {
                i++;
                continue;
            }
            int start = i;
            while (i < n && isTokenChar(text.charAt(i))) {
                i++;
            }
            if (i - start >= MIN_KEY_BODY && (hasKeyPrefix(text, start, i) || looksRandom(text, start, i))) {
                spans.add(new Span(start, i, Kind.SECRET));
            }
        }
        return spans;
    }

    private static boolean isTokenChar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || c == '_' || c == '-' || c == '+' || c == '/' || c == '=';
    }

    private static boolean hasKeyPrefix(String text, int start, int end) {
        for (String prefix : KEY_PREFIXES) {
            if (text.startsWith(prefix, start) && end - start - prefix.length() >= MIN_KEY_BODY) {
                return true;
            }
        }
        return false;
    }

    private static boolean looksRandom(String text, int start, int end) {
        if (end - start < MIN_GENERIC_SECRET) {
            return false;
        }
        boolean upper = false;
        boolean lower = false;
        boolean digit = false;
        int[] freq = new int[128];
        for (int i = start; i < end; i++) {
            char c = text.charAt(i);
            upper |= c >= 'A' && c <= 'Z';
            lower |= c >= 'a' && c <= 'z';
            digit |= c >= '0' && c <= '9';
            freq[c]++;
        }
        if (!(upper && lower && digit)) {
            return false;
        }
        double entropy = 0;
        int len = end - start;
        for (int f : freq) {
            if (f > 0) {
                double p = (double) f / len;
                entropy -= p * Math.log(p) / Math.log(2);
            }
        }
        return entropy >= 4.0;
    }

    // --- e-mail --------------------------------------------------------------------------------

    private static List<Span> findEmails(String text) {
        List<Span> spans = new ArrayList<>();
        int at = text.indexOf('@');
        int lastEnd = 0;
        while (at >= 0) {
            int start = at;
            while (start > lastEnd && isLocalChar(text.charAt(start - 1))) {
                start--;
            }
            int end = at + 1;
            while (end < text.length() && isDomainChar(text.charAt(end))) {
                end++;
            }
            while (end > at + 1 && (text.charAt(end - 1) == '.' || text.charAt(end - 1) == '-')) {
                end--;
            }
            if (start < at && validDomain(text, at + 1, end)) {
                spans.add(new Span(start, end, Kind.EMAIL));
                lastEnd = end;
            }
            at = text.indexOf('@', Math.max(at + 1, lastEnd));
        }
        return spans;
    }

    private static boolean isLocalChar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
    }

    private static boolean isDomainChar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    }

    private static boolean validDomain(String text, int start, int end) {
        int dot = text.lastIndexOf('.', end - 1);
        if (dot <= start || end - dot - 1 < 2) {
            return false;
        }
        for (int i = dot + 1; i < end; i++) {
            if (!Character.isLetter(text.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    // --- IPv6 ----------------------------------------------------------------------------------

    private static List<Span> findIpv6(String text) {
        List<Span> spans = new ArrayList<>();
        int colon = text.indexOf(':');
        while (colon >= 0) {
            int start = colon;
            while (start > 0 && isIpv6Char(text.charAt(start - 1))) {
                start--;
            }
            int end = colon;
            while (end < text.length() && isIpv6Char(text.charAt(end))) {
                end++;
            }
            boolean bounded = (start == 0 || !isWordChar(text.charAt(start - 1)))
                    && (end == text.length() || !isWordChar(text.charAt(end)));
            if (bounded && validIpv6(text.substring(start, end))) {
                spans.add(new Span(start, end, Kind.IP));
            }
            colon = text.indexOf(':', end + 1);
        }
        return spans;
    }

    private static boolean isIpv6Char(char c) {
        return Character.digit(c, 16) >= 0 && c < 128 || c == ':' || c == '.';
    }

    private static boolean isWordChar(char c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }

    static boolean validIpv6(String s) {
        int gap = s.indexOf("::");
        if (gap >= 0 && s.indexOf("::", gap + 1) >= 0) {
            return false;
        }
        String[] parts = (gap >= 0 ? s.substring(0, gap) + ":" + s.substring(gap + 2) : s).split(":", -1);
        int groups = 0;
        for (int i = 0; i < parts.length; i++) {
            String part = parts[i];
            if (part.isEmpty()) {
                if (gap >= 0 && (i == 0 || i == parts.length - 1 || parts.length == 1)) {
                    continue;
                }
                return false;
            }
            if (i == parts.length - 1 && part.indexOf('.') >= 0) {
                if (!validIpv4(part)) {
                    return false;
                }
                groups += 2;
            } else if (part.length() > 4 || part.indexOf('.') >= 0) {
                return false;
            } else {
                groups++;
            }
        }
        return gap >= 0 ? groups < 8 && s.length() > 2 || s.equals("::1") : groups == 8;
    }

    // --- digits: cards, IPv4, phones -----------------------------------------------------------

    private static List<Span> findNumbers(String text) {
        List<Span> spans = new ArrayList<>();
        int n = text.length();
        int i = 0;
        while (i < n) {
            char c = text.charAt(i);
            boolean opens = isDigit(c) || ((c == '+' || c == '(') && i + 1 < n && isDigit(text.charAt(i + 1)));
            if (!opens || (i > 0 && isWordChar(text.charAt(i - 1)))) {
                i++;
                continue;
            }
            int end = numberEnd(text, i);
            if (end < n && isWordChar(text.charAt(end))) {
                // Part of a word or code ("v1.2.3b", "x86_64"): not a number we redact.
                i = end + 1;
                continue;
            }
            Kind kind = classify(text.substring(i, end));
            if (kind != null) {
                spans.add(new Span(i, end, kind));
            }
            i = end;
        }
        return spans;
    }

    /** The end of a run of digits joined by single separators (space, dash, dot, parentheses). */
    private static int numberEnd(String text, int start) {
        int n = text.length();
        int i = start + 1;
        int end = isDigit(text.charAt(start)) ? i : start;
        while (i < n) {
            char c = text.charAt(i);
            if (isDigit(c)) {
                end = ++i;
            } else if ((c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') && i + 1 < n
                    && (isDigit(text.charAt(i + 1)) || (c == ')' && text.charAt(i + 1) == ' ' && i + 2 < n && isDigit(text.charAt(i + 2))))) {
                i += c == ')' && text.charAt(i + 1) == ' ' ? 2 : 1;
            } else {
                break;
            }
        }
        return Math.max(end, start + 1);
    }

    private static Kind classify(String candidate) {
        Matcher ipv4 = IPV4.matcher(candidate);
        if (ipv4.matches()) {
            return octetsAtMost255(ipv4) ? Kind.IP : null;
        }
        StringBuilder digits = new StringBuilder(candidate.length());
        boolean cardSeparatorsOnly = true;
        for (int i = 0; i < candidate.length(); i++) {
            char c = candidate.charAt(i);
            if (isDigit(c)) {
                digits.append(c);
            } else if (c != ' ' && c != '-') {
                cardSeparatorsOnly = false;
            }
        }
        int count = digits.length();
        char first = digits.charAt(0);
        if (cardSeparatorsOnly && count >= 13 && count <= 19 && first >= '3' && first <= '6' && luhn(digits)) {
            return Kind.CARD;
        }
        boolean plus = candidate.charAt(0) == '+';
        boolean separated = count < candidate.length() - (plus ? 1 : 0);
        if ((separated && count >= 10 && count <= 15) || (plus && count >= 8 && count <= 15)) {
            return Kind.PHONE;
        }
        return null;
    }

    static boolean luhn(CharSequence digits) {
        int sum = 0;
        boolean twice = false;
        for (int i = digits.length() - 1; i >= 0; i--) {
            int d = digits.charAt(i) - '0';
            if (twice) {
                d *= 2;
                if (d > 9) {
                    d -= 9;
                }
            }
            sum += d;
            twice = !twice;
        }
        return sum % 10 == 0;
    }

    static boolean validIpv4(String s) {
        Matcher m = IPV4.matcher(s);
        return m.matches() && octetsAtMost255(m);
    }

    private static boolean octetsAtMost255(Matcher dottedQuad) {
        for (int g = 1; g <= 4; g++) {
            if (Integer.parseInt(dottedQuad.group(g)) > 255) {
                return false;
            }
        }
        return true;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
