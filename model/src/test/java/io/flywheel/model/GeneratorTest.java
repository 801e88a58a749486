package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class GeneratorTest {

    @Test
    void samplingFollowsItsParameters() {
        float[] logits = {1.0f, 3.0f, 2.0f, -1.0f};
        assertEquals(1, Sampling.greedy(1).sampler().next(logits));
        assertEquals(1, new Sampling(1.5, 1, 1, 7L, 1, List.of()).sampler().next(logits), "top_k 1 is greedy");
        assertEquals(1, new Sampling(1.5, 0.01, 0, 7L, 1, List.of()).sampler().next(logits), "a tiny top_p is greedy");

        // Seeded draws repeat; frequencies follow softmax(logits / T) restricted to the top 3.
        Sampling.Sampler a = new Sampling(0.8, 1, 3, 42L, 1, List.of()).sampler();
        Sampling.Sampler b = new Sampling(0.8, 1, 3, 42L, 1, List.of()).sampler();
        int[] counts = new int[4];
        for (int i = 0; i < 20_000; i++) {
            int x = a.next(logits);
            assertEquals(x, b.next(logits));
            counts[x]++;
        }
        double z = Math.exp(1 / 0.8) + Math.exp(3 / 0.8) + Math.exp(2 / 0.8);
        assertEquals(0, counts[3], "outside the top 3");
        assertEquals(Math.exp(3 / 0.8) / z, counts[1] / 20_000.0, 0.015);
        assertEquals(Math.exp(2 / 0.8) / z, counts[2] / 20_000.0, 0.015);
        // Without top-k or top-p every token keeps its softmax share.
        Sampling.Sampler all = new Sampling(0.8, 1, 0, 42L, 1, List.of()).sampler();
        int[] unrestricted = new int[4];
        for (int i = 0; i < 20_000; i++) {
            unrestricted[all.next(logits)]++;
        }
        double zAll = z + Math.exp(-1 / 0.8);
        for (int t = 0; t < 4; t++) {
            assertEquals(Math.exp(logits[t] / 0.8) / zAll, unrestricted[t] / 20_000.0, 0.015, "token " + t);
        }
        // top_p 0.9 keeps the smallest prefix reaching 90%: here tokens 1 and 2.
        Sampling.Sampler nucleus = new Sampling(0.8, 0.9, 0, 42L, 1, List.of()).sampler();
        for (int i = 0; i < 2_000; i++) {
            int x = nucleus.next(logits);
            assertTrue(x == 1 || x == 2, "token " + x);
        }
        assertThrows(IllegalArgumentException.class, () -> new Sampling(2.5, 1, 0, null, 1, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new Sampling(1, 1, 0, null, 1, List.of("a", "b", "c", "d", "e")));
    }

    @Test
    void generationStopsAtLengthAndAtStopStringsAndStreamsTheSameText() throws Exception {
        Tokenizer tokenizer = TokenizerFiles.load("cl100k_base");
        Gpt gpt = Gpt.initialize(new GptConfig(tokenizer.vocabSize(), 32, 1, 2, 16, 2, 0.0, true), 3);
        Generator generator = new Generator(new Inference(gpt), tokenizer);
        int[] prompt = tokenizer.encode("Once upon a time");

        List<String> pieces = new ArrayList<>();
        Generator.Completion full = generator.generate(prompt, Sampling.greedy(12), pieces::add);
        assertEquals(Generator.Finish.LENGTH, full.finish());
        assertEquals(12, full.tokens().length);
        assertEquals(tokenizer.decode(full.tokens()), full.text());
        assertEquals(full.text(), String.join("", pieces));

        // A stop string taken from the middle of that text ends the same greedy run just before it.
        String stop = full.text().substring(full.text().length() / 2, full.text().length() / 2 + 2);
        List<String> stopped = new ArrayList<>();
        Generator.Completion cut = generator.generate(prompt,
                new Sampling(0, 1, 0, null, 12, List.of(stop)), stopped::add);
        assertEquals(Generator.Finish.STOP, cut.finish());
        assertEquals(full.text().substring(0, full.text().indexOf(stop)), cut.text());
        assertEquals(cut.text(), String.join("", stopped));
        assertTrue(cut.tokens().length < full.tokens().length);

        // The context bounds the completion: 32 positions, 4 of them the prompt.
        Generator.Completion capped = generator.generate(prompt, Sampling.greedy(100), null);
        assertEquals(Generator.Finish.LENGTH, capped.finish());
        assertEquals(32 - prompt.length + 1, capped.tokens().length);
        assertArrayEquals(java.util.Arrays.copyOf(capped.tokens(), 12), full.tokens());
        assertNotEquals(0, capped.text().length());
    }
}
