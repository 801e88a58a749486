package io.flywheel.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingRegistry;
import io.flywheel.core.testing.MixedText;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Our encoder against jtokkit, token for token, on the public vocabularies. */
class PublicVocabularyParityTest {

    private static final EncodingRegistry REGISTRY = Encodings.newDefaultEncodingRegistry();

    @ParameterizedTest
    @ValueSource(strings = {"r50k_base", "cl100k_base", "o200k_base"})
    void sameIdsAsJtokkitOnAMegabyteOfMixedText(String name) throws Exception {
        Tokenizer ours = TokenizerFiles.loadPublic(name);
        Encoding theirs = REGISTRY.getEncoding(name).orElseThrow();
        String text = MixedText.generate(name.hashCode(), 1 << 20);
        assertTrue(text.getBytes(StandardCharsets.UTF_8).length >= 1 << 20);

        // Line by line first, so that a mismatch names the line; then the whole text at once.
        String[] lines = text.split("(?<=\n)");
        for (int i = 0; i < lines.length; i++) {
            int[] expected = theirs.encodeOrdinary(lines[i]).toArray();
            int[] actual = ours.encode(lines[i]);
            if (!Arrays.equals(expected, actual)) {
                assertEquals(Arrays.toString(expected), Arrays.toString(actual),
                        name + " line " + i + ": " + escape(lines[i]));
            }
        }
        int[] all = ours.encode(text);
        assertArrayEquals(theirs.encodeOrdinary(text).toArray(), all);
        assertEquals(text, ours.decode(all));
    }

    static String escape(String s) {
        StringBuilder sb = new StringBuilder();
        s.codePoints().forEach(cp -> {
            if (cp < 0x20 || cp > 0x7e) {
                sb.append(String.format("\\u{%x}", cp));
            } else {
                sb.appendCodePoint(cp);
            }
        });
        return sb.toString();
    }
}
