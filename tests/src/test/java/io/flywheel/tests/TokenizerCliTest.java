package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.knuddels.jtokkit.Encodings;
import io.flywheel.core.testing.MixedText;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code flywheel tokenize} and {@code flywheel tokenizer train|export} through the real CLI. */
class TokenizerCliTest {

    @TempDir
    static Path dir;
    static Path corpus;
    static Path tokenizer;

    @BeforeAll
    static void trainOnce() throws Exception {
        corpus = dir.resolve("corpus");
        Files.createDirectories(corpus.resolve("nested"));
        Files.writeString(corpus.resolve("a.txt"), MixedText.generate(1, 60_000));
        Files.writeString(corpus.resolve("nested/b.txt"), MixedText.generate(2, 60_000));
        tokenizer = dir.resolve("tok.json");
        Cli.Result r = Cli.run("tokenizer", "train", "--vocab-size", "1000", "--out", tokenizer.toString(),
                "--tiktoken-out", dir.resolve("tok.tiktoken").toString(), corpus.toString());
        assertEquals(0, r.exit(), r.stderr());
        assertTrue(r.out().contains("vocab 1000"), r.out());
    }

    private static String idsLine(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(" "));
    }

    @Test
    void encodesLikeJtokkitWithAPublicVocabulary() throws Exception {
        String text = "Hello, world! Grüße 😀 12345\n";
        Cli.Result r = Cli.run(text.getBytes(StandardCharsets.UTF_8), "tokenize", "--tokenizer", "cl100k_base");
        assertEquals(0, r.exit(), r.stderr());
        int[] expected = Encodings.newDefaultEncodingRegistry().getEncoding("cl100k_base").orElseThrow().encodeOrdinary(text).toArray();
        assertEquals(idsLine(expected), r.out().strip());
    }

    @Test
    void decodeGivesBackTheExactBytesEvenInvalidUtf8() throws Exception {
        byte[] input = {'a', 'b', (byte) 0xC3, ' ', (byte) 0xFF, 'z', '\n', 0};
        Cli.Result enc = Cli.run(input, "tokenize", "--tokenizer", tokenizer.toString());
        assertEquals(0, enc.exit(), enc.stderr());
        Cli.Result dec = Cli.run(enc.stdout(), "tokenize", "--tokenizer", tokenizer.toString(), "--decode");
        assertEquals(0, dec.exit(), dec.stderr());
        assertArrayEquals(input, dec.stdout());
    }

    @Test
    void trainingIsDeterministicThroughTheCli() throws Exception {
        Path again = dir.resolve("again.json");
        Cli.Result r = Cli.run("tokenizer", "train", "--vocab-size", "1000", "--out", again.toString(), corpus.toString());
        assertEquals(0, r.exit(), r.stderr());
        assertArrayEquals(Files.readAllBytes(tokenizer), Files.readAllBytes(again));
        assertTrue(r.out().contains(TokenizerFiles.sha256(Files.readAllBytes(again))), "prints the tokenizer id");
    }

    @Test
    void exportWritesTheTiktokenRankFile() throws Exception {
        Path out = dir.resolve("exported.tiktoken");
        Cli.Result r = Cli.run("tokenizer", "export", "--tokenizer", tokenizer.toString(), "--out", out.toString());
        assertEquals(0, r.exit(), r.stderr());
        assertArrayEquals(Files.readAllBytes(dir.resolve("tok.tiktoken")), Files.readAllBytes(out));
        assertEquals(1000 - 5, Files.readAllLines(out).size());
    }

    @Test
    void specialsFlagTurnsSpellingsIntoSpecialIds() throws Exception {
        byte[] text = "hi<|endoftext|>".getBytes(StandardCharsets.UTF_8);
        Cli.Result plain = Cli.run(text, "tokenize", "--tokenizer", "r50k_base");
        Cli.Result special = Cli.run(text, "tokenize", "--tokenizer", "r50k_base", "--specials");
        assertTrue(special.out().strip().endsWith(" 50256"), special.out());
        assertTrue(!plain.out().contains("50256"), plain.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "bogus-command",
            "tokenize",
            "tokenize --tokenizer no_such_vocab",
            "tokenize --tokenizer /no/such/file.json",
            "tokenize --tokenizer cl100k_base --no-such-flag",
            "tokenize --tokenizer cl100k_base /no/such/input.txt",
            "tokenizer",
            "tokenizer train --vocab-size 1000 --out /tmp/x.json /no/such/corpus.txt",
            "tokenizer train --vocab-size lots --out /tmp/x.json pom.xml",
            "tokenizer train --vocab-size 10 --out /tmp/x.json pom.xml",
            "tokenizer train --vocab-size 1000 --pattern perl --out /tmp/x.json pom.xml",
            "broker --port 0x",
    })
    void badUsageExitsWithTwoAndSaysWhy(String command) throws Exception {
        Cli.Result r = Cli.run(command.split(" "));
        assertEquals(2, r.exit(), "stdout: " + r.out() + "\nstderr: " + r.stderr());
        assertTrue(!r.stderr().isBlank(), "an explanation on stderr");
        assertTrue(!r.stderr().contains("\tat "), "no stack trace: " + r.stderr());
    }

    @Test
    void badIdsToDecodeExitWithTwo() throws Exception {
        for (String ids : new String[] {"1 2 three", "1 99999999", "-4"}) {
            Cli.Result r = Cli.run(ids.getBytes(StandardCharsets.UTF_8), "tokenize", "--tokenizer", "cl100k_base", "--decode");
            assertEquals(2, r.exit(), ids + ": " + r.stderr());
            assertTrue(r.stderr().contains("token"), r.stderr());
            assertEquals(0, r.stdout().length, "nothing half-written on stdout");
        }
    }

    @Test
    void aCorruptTokenizerFileExitsWithTwo() throws Exception {
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"format\":\"flywheel-bpe\",\"version\":1}");
        Cli.Result r = Cli.run("x".getBytes(StandardCharsets.UTF_8), "tokenize", "--tokenizer", bad.toString());
        assertEquals(2, r.exit(), r.stderr());
        assertTrue(r.stderr().contains("pattern"), r.stderr());
    }

    @Test
    void aTooSmallCorpusExitsWithTwo() throws Exception {
        Path tiny = dir.resolve("tiny.txt");
        Files.writeString(tiny, "to be or not to be");
        Cli.Result r = Cli.run("tokenizer", "train", "--vocab-size", "5000", "--out", dir.resolve("t.json").toString(), tiny.toString());
        assertEquals(2, r.exit(), r.stderr());
        assertTrue(r.stderr().contains("supports only"), r.stderr());
    }
}
