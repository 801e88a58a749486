package io.flywheel.local.cli;

import io.flywheel.core.cli.UsageError;
import io.flywheel.core.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code flywheel tokenize}: text in, ids out (one line, space-separated), or ids in, exact bytes
 * out with {@code --decode}.
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Encode text from stdin (or FILE) to token ids, or decode ids back with --decode.",
                "Encoding is byte-exact: any bytes, even invalid UTF-8, decode back to themselves."})
public final class TokenizeCommand implements Callable<Integer> {

    @Option(names = "--tokenizer", required = true, paramLabel = "FILE|NAME",
            description = "A tokenizer file from 'tokenizer train', or r50k_base, cl100k_base, o200k_base.")
    String tokenizer;

    @Option(names = "--decode", description = "Read whitespace-separated ids and write the text they stand for.")
    boolean decode;

    @Option(names = "--specials", description = "When encoding, turn special-token spellings such as <|endoftext|> into their ids.")
    boolean specials;

    @Parameters(arity = "0..1", paramLabel = "FILE", description = "Read this file instead of stdin.")
    Path input;

    @Override
    public Integer call() throws IOException {
        Tokenizer tok = Tokenizers.load(tokenizer);
        byte[] in = readInput();
        PrintStream out = System.out;
        if (decode) {
            int[] ids = parseIds(new String(in, StandardCharsets.UTF_8), tok);
            OutputStream raw = out;
            raw.write(tok.decodeBytes(ids));
            raw.flush();
        } else {
            int[] ids = specials ? tok.encodeWithSpecials(new String(in, StandardCharsets.UTF_8)) : tok.encode(in);
            StringBuilder line = new StringBuilder(ids.length * 5);
            for (int i = 0; i < ids.length; i++) {
                if (i > 0) {
                    line.append(' ');
                }
                line.append(ids[i]);
            }
            out.println(line);
            out.flush();
        }
        return 0;
    }

    private byte[] readInput() {
        if (input == null) {
            try (InputStream stdin = System.in) {
                return stdin.readAllBytes();
            } catch (IOException e) {
                throw new UsageError("cannot read stdin: " + e.getMessage(), e);
            }
        }
        try {
            return Files.readAllBytes(input);
        } catch (IOException e) {
            throw new UsageError("cannot read " + input + ": " + e.getMessage(), e);
        }
    }

    static int[] parseIds(String text, Tokenizer tok) {
        String trimmed = text.strip();
        if (trimmed.isEmpty()) {
            return new int[0];
        }
        String[] parts = trimmed.split("[\\s,]+");
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                throw new UsageError("token " + (i + 1) + " ('" + abbreviate(parts[i]) + "') is not an integer id");
            }
            if (ids[i] < 0 || ids[i] >= tok.vocabSize()) {
                throw new UsageError("token " + (i + 1) + " is id " + ids[i] + ", outside the vocabulary of "
                        + tok.name() + " (0.." + (tok.vocabSize() - 1) + ")");
            }
        }
        return ids;
    }

    private static String abbreviate(String s) {
        return s.length() <= 20 ? s : s.substring(0, 20) + "...";
    }
}
