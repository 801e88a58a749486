package io.flywheel.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.flywheel.core.testing.MixedText;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The hand-written scanners split exactly like the regexes they replace. */
class ChunkScannerTest {

    private static List<String> scanner(PreTokenizer p, String s) {
        List<String> out = new ArrayList<>();
        p.split(s, (text, start, end) -> out.add(text.substring(start, end)));
        return out;
    }

    private static List<String> regex(PreTokenizer p, String s) {
        List<String> out = new ArrayList<>();
        p.splitWithRegex(s, (text, start, end) -> out.add(text.substring(start, end)));
        return out;
    }

    @ParameterizedTest
    @EnumSource(value = PreTokenizer.class, names = {"GPT2", "CL100K"})
    void edgeCases(PreTokenizer p) {
        String[] cases = {"", " ", "  ", "a", " a", "  a", "'s", "'S", "'ſ", "'re", "'RE", "'ll", "'x", "''s", "a's", " 's",
                "\n", "\n\n", " \n ", "\n  word", "x \r\n\t y", "1234567", " 12", "a1b2", "😀😀 😀", " ...", "...\n\n", "\t\t",
                "\u00a0x", " \u00a0", "\u3000\u3000a", "x\u2028y", "e\u0301", "\u0085", "end   ", "Ⅻ ½ ²", "a\u200bb"};
        for (String c : cases) {
            assertEquals(regex(p, c), scanner(p, c), "case: " + PublicVocabularyParityTest.escape(c));
        }
    }

    @ParameterizedTest
    @EnumSource(value = PreTokenizer.class, names = {"GPT2", "CL100K"})
    void mixedAndRandomText(PreTokenizer p) {
        String mixed = MixedText.generate(21, 300_000);
        assertEquals(regex(p, mixed), scanner(p, mixed));
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < 2000; i++) {
            String s = MixedText.randomUnicode(r, r.nextInt(60));
            assertEquals(regex(p, s), scanner(p, s), PublicVocabularyParityTest.escape(s));
        }
        // Short strings over a small alphabet that hits every branch.
        String alphabet = " \n\r\t'sSlLrReEvV1a,😀\u00a0ſ";
        for (int i = 0; i < 20_000; i++) {
            StringBuilder sb = new StringBuilder();
            for (int k = r.nextInt(8); k > 0; k--) {
                sb.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0, r.nextInt(alphabet.codePointCount(0, alphabet.length())))));
            }
            String s = sb.toString();
            assertEquals(regex(p, s), scanner(p, s), PublicVocabularyParityTest.escape(s));
        }
    }
}
