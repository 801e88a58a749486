package io.flywheel.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingRegistry;
import com.knuddels.jtokkit.api.GptBytePairEncodingParams;
import io.flywheel.core.serde.RecordFormatException;
import io.flywheel.core.testing.MixedText;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TokenizerTest {

    static Tokenizer trained;
    static byte[] trainedFile;
    static Tokenizer cl100k;

    @BeforeAll
    static void train() throws Exception {
        trainedFile = trainOn(MixedText.generate(7, 300_000), 2000, PreTokenizer.CL100K);
        trained = TokenizerFiles.read("test-2k", trainedFile);
        cl100k = TokenizerFiles.loadPublic("cl100k_base");
    }

    static byte[] trainOn(String text, int vocab, PreTokenizer pattern) {
        BpeTrainer trainer = new BpeTrainer(pattern, vocab, BpeTrainer.DEFAULT_SPECIALS, s -> {});
        trainer.add(text.getBytes(StandardCharsets.UTF_8));
        return trainer.train();
    }

    // ------------------------------------------------------------------ round trips

    @Test
    void randomBytesRoundTripExactly() {
        SplittableRandom r = new SplittableRandom(1234);
        for (Tokenizer t : List.of(trained, cl100k)) {
            for (int i = 0; i < 300; i++) {
                byte[] bytes = new byte[r.nextInt(2000)];
                for (int k = 0; k < bytes.length; k++) {
                    // Mostly text-like bytes with invalid UTF-8 sprinkled in.
                    bytes[k] = (byte) (r.nextInt(4) == 0 ? r.nextInt(256) : r.nextInt(0x20, 0x7F));
                }
                assertArrayEquals(bytes, t.decodeBytes(t.encode(bytes)), t.name() + " iteration " + i);
            }
        }
    }

    @Test
    void invalidUtf8SurvivesEveryKindOfDamage() {
        byte[][] cases = {
                {(byte) 0xFF}, {(byte) 0xC3}, {'a', (byte) 0xC3, 'b'}, {(byte) 0xE2, (byte) 0x82}, {(byte) 0xED, (byte) 0xA0, (byte) 0x80},
                {(byte) 0xC0, (byte) 0xAF}, {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, {(byte) 0x80, (byte) 0x80, (byte) 0x80},
                {0, 0, 0, 0}, {'x', (byte) 0xF0, (byte) 0x9F, (byte) 0x98, 'y'},
        };
        for (Tokenizer t : List.of(trained, cl100k)) {
            for (byte[] c : cases) {
                assertArrayEquals(c, t.decodeBytes(t.encode(c)), t.name() + " " + Arrays.toString(c));
            }
        }
    }

    @Test
    void randomUnicodeRoundTrips() {
        SplittableRandom r = new SplittableRandom(99);
        for (Tokenizer t : List.of(trained, cl100k)) {
            for (int i = 0; i < 300; i++) {
                String s = MixedText.randomUnicode(r, r.nextInt(500));
                int[] ids = t.encode(s);
                assertEquals(s, t.decode(ids));
                // The string and byte entry points agree on valid UTF-8.
                assertArrayEquals(ids, t.encode(s.getBytes(StandardCharsets.UTF_8)));
            }
        }
    }

    @Test
    void emptyInputIsNoTokens() {
        assertEquals(0, trained.encode("").length);
        assertEquals(0, trained.encode(new byte[0]).length);
        assertEquals("", trained.decode(new int[0]));
    }

    // ------------------------------------------------------------------ long chunks

    @Test
    void longChunksMergeLikeShortOnes() {
        // A run of punctuation is one chunk; above 64 bytes the heap merge path takes over. It must
        // give what jtokkit gives (its own path for long pieces), here over 20,000 bytes.
        Encoding jtokkit = Encodings.newDefaultEncodingRegistry().getEncoding("cl100k_base").orElseThrow();
        SplittableRandom r = new SplittableRandom(5);
        String punct = "=-+*#.,;:!?/\\|_~^";
        for (int len : new int[] {65, 100, 1000, 20_000}) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < len; i++) {
                sb.append(r.nextInt(3) == 0 ? punct.charAt(r.nextInt(punct.length())) : '=');
            }
            String s = sb.toString();
            assertArrayEquals(jtokkit.encodeOrdinary(s).toArray(), cl100k.encode(s), "length " + len);
        }
        String spaces = " ".repeat(50_000) + "x";
        assertArrayEquals(jtokkit.encodeOrdinary(spaces).toArray(), cl100k.encode(spaces));
    }

    // ------------------------------------------------------------------ special tokens

    @Test
    void specialTokensNeverComeFromOrdinaryText() {
        for (String special : BpeTrainer.DEFAULT_SPECIALS) {
            int id = trained.specialId(special);
            assertTrue(trained.isSpecial(id));
            int[] ordinary = trained.encode("before " + special + " after");
            assertFalse(IntStream.of(ordinary).anyMatch(trained::isSpecial), special + " leaked into ordinary encoding");
            assertEquals("before " + special + " after", trained.decode(ordinary));
            int[] withSpecials = trained.encodeWithSpecials("before " + special + " after");
            assertEquals(1, IntStream.of(withSpecials).filter(x -> x == id).count());
            assertEquals("before " + special + " after", trained.decode(withSpecials));
        }
        // Random text never produces a special id either.
        int[] ids = trained.encode(MixedText.generate(8, 50_000));
        assertFalse(IntStream.of(ids).anyMatch(trained::isSpecial));
    }

    @Test
    void publicSpecialTokensHaveTheirWellKnownIds() {
        assertEquals(100257, cl100k.specialId("<|endoftext|>"));
        assertArrayEquals(new int[] {100257}, cl100k.encodeWithSpecials("<|endoftext|>"));
        assertThrows(IllegalArgumentException.class, () -> cl100k.specialId("<|user|>"));
    }

    @Test
    void decodingAnUnknownIdNamesIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trained.decode(new int[] {1, 999_999}));
        assertTrue(e.getMessage().contains("999999"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> trained.decode(new int[] {-1}));
    }

    // ------------------------------------------------------------------ training

    @Test
    void trainingIsDeterministicAndExact() {
        String text = MixedText.generate(7, 300_000);
        byte[] again = trainOn(text, 2000, PreTokenizer.CL100K);
        assertArrayEquals(trainedFile, again);
        assertEquals(TokenizerFiles.read("a", trainedFile).id(), TokenizerFiles.read("b", again).id());
        assertEquals(2000, trained.vocabSize());
        assertEquals(2000 - BpeTrainer.DEFAULT_SPECIALS.size(), trained.ordinaryCount());
        assertEquals(TokenizerFiles.sha256(trainedFile), trained.id());
    }

    @ParameterizedTest
    @ValueSource(ints = {261, 300, 1024, 4097})
    void vocabularySizeIsExactForAnySize(int size) {
        Tokenizer t = TokenizerFiles.read("t", trainOn(MixedText.generate(3, 100_000), size, PreTokenizer.GPT2));
        assertEquals(size, t.vocabSize());
        assertEquals(size - 1, t.specialId("<|end|>"));
    }

    @Test
    void differentCorporaGiveDifferentIds() {
        byte[] other = trainOn(MixedText.generate(8, 300_000), 2000, PreTokenizer.CL100K);
        assertNotEquals(trained.id(), TokenizerFiles.read("o", other).id());
    }

    @Test
    void trainingFailsClearlyWhenTheCorpusIsTooSmall() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trainOn("ab ab ab", 5000, PreTokenizer.GPT2));
        assertTrue(e.getMessage().contains("supports only"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new BpeTrainer(PreTokenizer.GPT2, 100, BpeTrainer.DEFAULT_SPECIALS, s -> {}));
    }

    @Test
    void trainedMergesCompressTheTrainingText() {
        String text = MixedText.generate(7, 100_000);
        int bytes = text.getBytes(StandardCharsets.UTF_8).length;
        int tokens = trained.encode(text).length;
        assertTrue(tokens < bytes / 2, tokens + " tokens for " + bytes + " bytes");
    }

    @Test
    void tiktokenExportGivesJtokkitTheSameIds() {
        Map<byte[], Integer> ranks = new HashMap<>();
        for (String line : new String(TokenizerFiles.exportTiktoken(trained), StandardCharsets.US_ASCII).split("\n")) {
            String[] parts = line.split(" ");
            ranks.put(Base64.getDecoder().decode(parts[0]), Integer.parseInt(parts[1]));
        }
        assertEquals(trained.ordinaryCount(), ranks.size());
        EncodingRegistry registry = Encodings.newDefaultEncodingRegistry();
        registry.registerGptBytePairEncoding(new GptBytePairEncodingParams("flywheel-test", PreTokenizer.CL100K.pattern(), ranks,
                trained.specialTokens()));
        Encoding jtokkit = registry.getEncoding("flywheel-test").orElseThrow();
        String text = MixedText.generate(11, 200_000);
        assertArrayEquals(jtokkit.encodeOrdinary(text).toArray(), trained.encode(text));
    }

    // ------------------------------------------------------------------ files

    @Test
    void tokenizerFilesAreValidatedStrictly() {
        String good = new String(trainedFile, StandardCharsets.UTF_8);
        assertEquals("pattern", assertThrows(RecordFormatException.class, () -> TokenizerFiles.read("x",
                good.replace("\"pattern\":\"cl100k\"", "\"pattern\":\"perl\"").getBytes(StandardCharsets.UTF_8))).field());
        assertEquals("format", assertThrows(RecordFormatException.class, () -> TokenizerFiles.read("x",
                good.replace("flywheel-bpe", "sentencepiece").getBytes(StandardCharsets.UTF_8))).field());
        assertEquals("merges[0]", assertThrows(RecordFormatException.class, () -> TokenizerFiles.read("x",
                good.replaceFirst("\"merges\":\\[\\[\\d+,\\d+\\]", "\"merges\":[[99999,1]").getBytes(StandardCharsets.UTF_8))).field());
        assertEquals("record", assertThrows(RecordFormatException.class, () -> TokenizerFiles.read("x",
                "not json".getBytes(StandardCharsets.UTF_8))).field());
    }
}
