package io.flywheel.core.testing;

import java.util.List;
import java.util.SplittableRandom;

/**
 * Deterministic text that stresses a tokenizer: many languages and scripts, emoji with joiners and
 * modifiers, code, long runs of every kind of whitespace, digits, contractions, odd code points.
 * The same seed gives the same text.
 */
public final class MixedText {

    private static final List<String> WORDS = List.of(
            "the", "The", "THE", "quick", "brown", "fox", "don't", "I'm", "we'll", "they've", "she'd", "it's", "YOU'RE",
            "WE'LL", "Hello", "world", "camelCase", "HTTPServer", "getX", "iPhone", "McDonald's",
            "Grüße", "straße", "Übermäßig", "naïve", "café", "déjà", "señor", "año", "Ærøskøbing", "łódź", "İstanbul",
            "Привет", "мир", "Москва", "Ελληνικά", "αβγδ", "ΣΊΣΥΦΟΣ",
            "中文", "汉字测试", "東京", "ひらがな", "カタカナ", "日本語の文章", "한국어", "안녕하세요",
            "العربية", "مرحبا", "עברית", "שלום", "हिन्दी", "नमस्ते", "ภาษาไทย", "სალამი", "Հայերեն",
            "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇩🇪", "🏳️‍🌈", "❤️", "🤖🚀", "∑∫√∞", "≠≤≥", "€£¥", "©®™", "½¾", "①②③",
            "x²", "H₂O", "ﬁ", "Å", "e\u0301", "a\u0308\u0304", "\u200b", "\u00ad", "ſ", "K", "ǅ", "ᾈ");

    private static final List<String> CODE = List.of(
            "public static void main(String[] args) {\n    System.out.println(\"hi\");\n}\n",
            "def f(x):\n\treturn x ** 2  # square\n",
            "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
            "<div class=\"a\">&amp;&lt;&gt;</div>",
            "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
            "{\"key\": [1, 2.5, -3e10, null, true]}",
            "if x != nil && y == 0 { return err }\r\n",
            "#include <stdio.h>\nint main(void){return 0;}\n",
            "$ git commit -m 'fix: it's done' && ./mvnw -B verify",
            "http://example.test/path?q=1&r=%20x#frag",
            "<|endoftext|>", "<|user|>", "<|im_start|>");

    private static final List<String> SPACES = List.of(
            " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t\n", "\u00a0", "\u3000", "\u2003", " \u00a0 ",
            "\u000b", "\f", "\u2028", "\u0085");

    private MixedText() {}

    /** About {@code chars} characters of mixed text. */
    public static String generate(long seed, int chars) {
        SplittableRandom r = new SplittableRandom(seed);
        StringBuilder sb = new StringBuilder(chars + 256);
        while (sb.length() < chars) {
            int kind = r.nextInt(100);
            if (kind < 50) {
                sb.append(WORDS.get(r.nextInt(WORDS.size())));
            } else if (kind < 58) {
                sb.append(CODE.get(r.nextInt(CODE.size())));
            } else if (kind < 68) {
                int digits = 1 + r.nextInt(r.nextInt(10) == 0 ? 40 : 6);
                for (int i = 0; i < digits; i++) {
                    sb.append((char) ('0' + r.nextInt(10)));
                }
                if (r.nextInt(4) == 0) {
                    sb.append(r.nextBoolean() ? '.' : ',').append(r.nextInt(1000));
                }
            } else if (kind < 74) {
                String punct = ".,;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~`";
                int n = 1 + r.nextInt(r.nextInt(20) == 0 ? 50 : 3);
                for (int i = 0; i < n; i++) {
                    sb.append(punct.charAt(r.nextInt(punct.length())));
                }
            } else if (kind < 77) {
                // A long run of one kind of whitespace, sometimes hundreds.
                String s = SPACES.get(r.nextInt(SPACES.size()));
                int n = 1 + r.nextInt(r.nextInt(10) == 0 ? 300 : 8);
                sb.append(s.repeat(n));
            } else if (kind < 80) {
                sb.appendCodePoint(randomCodePoint(r));
            } else if (kind < 84) {
                sb.append('\'').append(r.nextBoolean() ? "s" : r.nextBoolean() ? "LL" : "Re");
            }
            sb.append(kind % 7 == 0 ? SPACES.get(r.nextInt(SPACES.size())) : " ");
        }
        return sb.toString();
    }

    /** Any assigned-or-not code point except surrogates: text that is valid UTF-8. */
    public static int randomCodePoint(SplittableRandom r) {
        int plane = r.nextInt(10);
        int cp;
        do {
            cp = plane < 5 ? r.nextInt(0x80, 0x800) : plane < 8 ? r.nextInt(0x800, 0x10000) : r.nextInt(0x10000, 0x110000);
        } while (cp >= 0xD800 && cp <= 0xDFFF);
        return cp;
    }

    /** A string of random code points (no surrogates). */
    public static String randomUnicode(SplittableRandom r, int codePoints) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < codePoints; i++) {
            int k = r.nextInt(4);
            sb.appendCodePoint(k == 0 ? r.nextInt(0x20, 0x7F) : k == 1 ? " \n\t".charAt(r.nextInt(3)) : randomCodePoint(r));
        }
        return sb.toString();
    }
}
