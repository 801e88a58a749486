package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The decode path against the training forward it shares its kernels with: a cache filled token by
 * token gives the training forward's logits at every position, a batched step gives what each
 * sequence gets alone, and a copied checkpoint scores as the model it came from.
 */
class DecoderTest {

    private final Random random = new Random(17);

    /** Weights far from their initial scale, so that a wrong term shows in the logits. */
    private Gpt model(GptConfig config, long seed) {
        Gpt gpt = Gpt.initialize(config, seed);
        gpt.parameters().forEach((name, w) -> {
            if (w.rank() == 2) {
                w.muli(10);
            } else if (!name.endsWith(".gain")) {
                w.addi(org.nd4j.linalg.factory.Nd4j.randn(w.dataType(), w.shape()).muli(0.1));
            }
        });
        return gpt;
    }

    private int[] tokens(int n, int vocab) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = random.nextInt(vocab);
        }
        return t;
    }

    @Test
    void tokenByTokenDecodeGivesTheTrainingForwardsLogitsAtEveryPosition() {
        for (Activation activation : Activation.values()) {
            for (boolean tied : new boolean[] {true, false}) {
                GptConfig config = new GptConfig(41, 12, 2, 3, 24, 4, 0.0, tied, activation, 1e-5);
                Gpt gpt = model(config, 5);
                int[] row = tokens(12, 41);
                row[3] = row[7] = row[11] = 9;      // repeated ids
                float[] training = gpt.trainingLogits(new int[][] {row});
                Decoder decoder = Decoder.of(gpt);
                Decoder.Cache cache = decoder.cache(1);
                // A prompt of 4 in one pass, then one token at a time.
                float[] prompt = decoder.forward(cache, new int[] {0}, new int[][] {java.util.Arrays.copyOf(row, 4)}, true).logits()[0];
                for (int t = 0; t < 4; t++) {
                    assertRow(training, t, prompt, t, 41, "prompt position " + t);
                }
                for (int t = 4; t < 12; t++) {
                    float[] next = decoder.forward(cache, new int[] {0}, new int[][] {{row[t]}}, false).logits()[0];
                    assertRow(training, t, next, 0, 41, activation + (tied ? " tied" : " untied") + ", position " + t);
                }
                assertEquals(0, cache.remaining(0));
                cache.close();
            }
        }
    }

    @Test
    void aBatchedStepGivesEachSequenceWhatItGetsAlone() {
        GptConfig config = new GptConfig(53, 16, 2, 4, 32, 4, 0.0, true);
        Gpt gpt = model(config, 8);
        Decoder decoder = Decoder.of(gpt);
        int[][] prompts = {tokens(3, 53), tokens(1, 53), tokens(7, 53), tokens(5, 53)};
        script(decoder, decoder.cache(6), decoder, prompts, KvCacheDtype.FLOAT32, 2e-4f);
    }

    @Test
    void aStepSplitAmongThreadsGivesEverySequenceTheBitsItGetsAloneOnOneThread() {
        // Wide enough that each weight multiply has several panels to share out.
        GptConfig config = new GptConfig(53, 16, 2, 4, 64, 4, 0.0, true);
        Gpt gpt = model(config, 9);
        int[][] prompts = {tokens(3, 53), tokens(1, 53), tokens(7, 53), tokens(5, 53)};
        for (KvCacheDtype dtype : KvCacheDtype.values()) {
            for (int threads : new int[] {2, 3}) {
                try (Decoder split = Decoder.copyOf(config, gpt.parameters()); Decoder one = Decoder.copyOf(config, gpt.parameters())) {
                    split.useThreads(threads);
                    // Our own multiplies sum every row in the same order, in any batch and on any thread: exactly equal.
                    script(split, split.cache(6, dtype), one, prompts, dtype, 0f);
                }
            }
        }
    }

    /**
     * Four sequences through {@code batched} in slots of {@code cache}, in no particular order, and
     * each alone through {@code single}: step 1, sequences 0 and 2 prefill together; step 2, 1 and 3
     * join (prefill) while 0 and 2 decode one token; then all four decode for a few steps. Every
     * step's logits and rewards agree within {@code delta}.
     */
    private void script(Decoder batched, Decoder.Cache cache, Decoder single, int[][] prompts, KvCacheDtype dtype, float delta) {
        int sequences = prompts.length;
        int vocab = batched.config().vocabSize();
        Decoder.Cache[] alone = new Decoder.Cache[sequences];
        int[] slots = {5, 0, 2, 3};
        for (int i = 0; i < sequences; i++) {
            alone[i] = single.cache(1, dtype);
        }
        step(batched, cache, single, alone, slots, prompts, new int[] {0, 2}, delta);
        int[][] next = {{1}, prompts[1], {2}, prompts[3]};
        step(batched, cache, single, alone, slots, next, new int[] {0, 1, 2, 3}, delta);
        for (int s = 0; s < 5; s++) {
            int[][] one = new int[sequences][];
            for (int i = 0; i < sequences; i++) {
                one[i] = new int[] {random.nextInt(vocab)};
            }
            step(batched, cache, single, alone, slots, one, new int[] {0, 1, 2, 3}, delta);
        }
        for (int i = 0; i < sequences; i++) {
            assertEquals(alone[i].length(0), cache.length(slots[i]), "sequence " + i + "'s length");
            alone[i].close();
        }
        cache.close();
    }

    /** Runs {@code which} sequences one step in the batched cache and alone, and compares. */
    private static void step(Decoder batched, Decoder.Cache cache, Decoder single, Decoder.Cache[] alone, int[] slots, int[][] tokens,
                             int[] which, float delta) {
        int[] s = new int[which.length];
        int[][] t = new int[which.length][];
        for (int i = 0; i < which.length; i++) {
            s[i] = slots[which[i]];
            t[i] = tokens[which[i]];
        }
        Decoder.Output together = batched.forward(cache, s, t, false);
        for (int i = 0; i < which.length; i++) {
            Decoder.Output one = single.forward(alone[which[i]], new int[] {0}, new int[][] {t[i]}, false);
            assertArrayEquals(one.logits()[0], together.logits()[i], delta, "sequence " + which[i]);
            assertEquals(one.rewards()[0], together.rewards()[i], delta, "sequence " + which[i] + "'s reward");
        }
    }

    @Test
    void aCopyScoresAsTheModelItCameFromAndARefusedCallChangesNothing() {
        GptConfig config = new GptConfig(29, 8, 1, 2, 16, 4, 0.0, false);
        Gpt gpt = model(config, 2);
        Map<String, INDArray> weights = new LinkedHashMap<>();
        gpt.parameters().forEach((name, w) -> weights.put(name, w.dup()));
        int[] row = tokens(8, 29);
        try (Decoder copy = Decoder.copyOf(config, weights)) {
            Decoder.Cache a = copy.cache(2);
            Decoder.Cache b = Decoder.of(gpt).cache(1);
            float[] full = Decoder.of(gpt).forward(b, new int[] {0}, new int[][] {row}, true).logits()[0];
            // The copy holds its matrices as panels (its own order of sums): equal within float rounding.
            assertRow(full, 0, copy.forward(a, new int[] {1}, new int[][] {row}, true).logits()[0], 0, 8 * 29, "every position");

            // Full, outside the vocabulary, a slot twice or outside the cache: refused, nothing appended.
            a.clear(1);
            copy.forward(a, new int[] {1}, new int[][] {java.util.Arrays.copyOf(row, 6)}, false);
            assertThrows(IllegalArgumentException.class, () -> copy.forward(a, new int[] {1}, new int[][] {{1, 2, 3}}, false));
            assertThrows(IllegalArgumentException.class, () -> copy.forward(a, new int[] {0, 1}, new int[][] {{1}, {29}}, false));
            assertThrows(IllegalArgumentException.class, () -> copy.forward(a, new int[] {0, 0}, new int[][] {{1}, {2}}, false));
            assertThrows(IllegalArgumentException.class, () -> copy.forward(a, new int[] {2}, new int[][] {{1}}, false));
            assertEquals(6, a.length(1));
            assertEquals(0, a.length(0));
            float[] seventh = copy.forward(a, new int[] {1}, new int[][] {{row[6]}}, false).logits()[0];
            assertRow(full, 6, seventh, 0, 29, "the position after the refused calls");
        }

        Map<String, INDArray> wrong = new LinkedHashMap<>(weights);
        wrong.put("h0.attn.wq", org.nd4j.linalg.factory.Nd4j.zeros(8, 9));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Decoder.copyOf(config, wrong));
        assertTrue(e.getMessage().contains("h0.attn.wq"), e.getMessage());
        Map<String, INDArray> noReward = new LinkedHashMap<>(weights);
        noReward.remove("reward.w");
        noReward.remove("reward.b");
        try (Decoder old = Decoder.copyOf(config, noReward)) {
            assertEquals(0f, old.forward(old.cache(1), new int[] {0}, new int[][] {row}, false).rewards()[0],
                    "a checkpoint from before the reward head scores 0");
        }
    }

    @Test
    void int8LogitsStayWithinOnePercentOfTheFloatLogitsRangeInAQuarterOfTheMatrixBytes() {
        for (boolean tied : new boolean[] {true, false}) {
            GptConfig config = new GptConfig(50, 16, 2, 2, 64, 4, 0.0, tied);
            Gpt gpt = Gpt.initialize(config, 3);
            int[] row = tokens(16, 50);
            try (Decoder full = Decoder.copyOf(config, gpt.parameters());
                 Decoder int8 = Decoder.copyOf(config, gpt.parameters(), Quantization.INT8)) {
                float[] a = full.forward(full.cache(1), new int[] {0}, new int[][] {row}, true).logits()[0];
                float[] b = int8.forward(int8.cache(1), new int[] {0}, new int[][] {row}, true).logits()[0];
                assertDifferentButWithin(a, b, 0.01f, "int8, tied " + tied);
                long matrixFloats = config.parameterCount() - (new Layout(config, name -> !Decoder.isMatrix(name))).size;
                // A float32 copy holds a tied head as panels of its own; int8 multiplies by the embedding as it lies.
                long tiedHead = tied ? 4L * config.width() * config.vocabSize() : 0;
                // A byte per matrix weight instead of four; scales and padded columns add a few percent here.
                assertEquals(full.weightBytes() - tiedHead - 3 * matrixFloats, int8.weightBytes(), 0.08 * matrixFloats);
            }
        }
    }

    @Test
    void aBfloat16CacheDecodesAsItsOwnFullForwardAndNearTheFloat32One() {
        // Head sizes 8 (the scalar loops) and 32 (whole vectors); 40 positions span two key blocks of 32.
        for (int[] shape : new int[][] {{3, 24}, {2, 64}}) {
            GptConfig config = new GptConfig(41, 40, 2, shape[0], shape[1], 4, 0.0, true);
            Gpt gpt = model(config, 6);
            Decoder decoder = Decoder.of(gpt);
            int[] row = tokens(40, 41);
            row[5] = row[20] = row[33] = 7;
            String what = "head size " + config.headSize();
            // Every position in one pass: its rows go through sgemm over the cache unpacked to float32.
            Decoder.Cache wide = decoder.cache(1, KvCacheDtype.BFLOAT16);
            float[] full = decoder.forward(wide, new int[] {0}, new int[][] {row}, true).logits()[0];
            // A prompt of 5, then one row at a time through the bfloat16 loops, in slot 1 of 2 beside another sequence.
            Decoder.Cache cache = decoder.cache(2, KvCacheDtype.BFLOAT16);
            assertEquals(KvCacheDtype.BFLOAT16, cache.dtype());
            decoder.forward(cache, new int[] {0}, new int[][] {tokens(4, 41)}, false);
            float[] prompt = decoder.forward(cache, new int[] {1}, new int[][] {java.util.Arrays.copyOf(row, 5)}, false).logits()[0];
            assertRow(full, 4, prompt, 0, 41, what + ", the prompt's last position");
            for (int t = 5; t < 40; t++) {
                Decoder.Output both = decoder.forward(cache, new int[] {1, 0}, new int[][] {{row[t]}, {row[t] % 3}}, false);
                assertRow(full, t, both.logits()[0], 0, 41, what + ", position " + t);
            }
            // Against float32: rounded keys and values move the logits, a little.
            float[] exact = decoder.forward(decoder.cache(1), new int[] {0}, new int[][] {row}, true).logits()[0];
            assertDifferentButWithin(exact, full, 0.02f, "bfloat16, " + what);
            // Layers x slots x width x 2 bytes, for the values' 40 positions and the keys' 64 (two whole blocks).
            assertEquals(2L * 2 * shape[1] * 2 * (40 + 64), cache.bytes());
            assertEquals(2L * 2 * shape[1] * 4 * (40 + 40), decoder.cache(2).bytes());
        }
        IllegalArgumentException odd = assertThrows(IllegalArgumentException.class,
                () -> Decoder.of(Gpt.initialize(new GptConfig(41, 8, 1, 2, 10, 4, 0.0, true), 1)).cache(1, KvCacheDtype.BFLOAT16));
        assertTrue(odd.getMessage().contains("even head size"), odd.getMessage());
    }

    /** {@code actual} is not {@code exact}, and no logit is further from it than {@code share} of exact's range. */
    private static void assertDifferentButWithin(float[] exact, float[] actual, float share, String what) {
        float min = Float.MAX_VALUE;
        float max = -Float.MAX_VALUE;
        float worst = 0;
        for (int i = 0; i < exact.length; i++) {
            min = Math.min(min, exact[i]);
            max = Math.max(max, exact[i]);
            worst = Math.max(worst, Math.abs(exact[i] - actual[i]));
        }
        assertTrue(worst > 0, what + " gives the float32 logits exactly");
        assertTrue(worst <= share * (max - min), what + ": the largest logit difference " + worst + " against a range of " + (max - min));
    }

    private static void assertRow(float[] expected, int expectedRow, float[] actual, int actualRow, int v, String what) {
        for (int i = 0; i < v; i++) {
            float e = expected[expectedRow * v + i];
            assertEquals(e, actual[actualRow * v + i], 1e-4f * Math.max(1, Math.abs(e)), what + ", logit " + i);
        }
    }
}
