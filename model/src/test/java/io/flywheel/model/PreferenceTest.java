package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The reward head and DPO: exact gradients, agreement with the eager path, and learning a preference. */
class PreferenceTest {

    private static final GptConfig SMALL = new GptConfig(12, 10, 2, 2, 16, 2, 0.0, true);

    @Test
    void rowsSplitAmongThreadsGiveTheGradientsOfOneThread() {
        // 5 rows among 1, 2 and 3 workers (uneven shares; the pairs' rows fall to different workers).
        Gpt one = Gpt.initialize(SMALL, 5);
        one.parameters().get("reward.w").muli(20);
        Random random = new Random(9);
        List<Gpt.Sequence> chosen = List.of(sequence(random, 3, 4), sequence(random, 5, 2));
        List<Gpt.Sequence> rejected = List.of(sequence(random, 3, 3), sequence(random, 5, 4));
        List<Gpt.Sequence> supervised = List.of(sequence(random, 2, 5));
        float[] reference = {0.3f, -0.2f};
        one.useThreads(1);
        Gpt.PreferenceGradients expected = one.preferenceGradients(chosen, rejected, reference, supervised, 1.0, 0.5, 0.7);
        java.util.Map<String, INDArray> expectedGrads = new java.util.HashMap<>();
        expected.byParameter().forEach((name, grad) -> expectedGrads.put(name, grad.dup()));
        int[][] inputs = new int[5][SMALL.contextLength()];
        int[][] targets = new int[5][SMALL.contextLength()];
        for (int b = 0; b < 5; b++) {
            for (int t = 0; t < SMALL.contextLength(); t++) {
                inputs[b][t] = random.nextInt(SMALL.vocabSize());
                targets[b][t] = random.nextInt(SMALL.vocabSize());
            }
        }
        Gpt.Gradients lm = one.gradients(inputs, targets, null);
        java.util.Map<String, INDArray> lmGrads = new java.util.HashMap<>();
        lm.byParameter().forEach((name, grad) -> lmGrads.put(name, grad.dup()));

        for (int threads : new int[] {2, 3}) {
            Gpt split = Gpt.withWeights(SMALL, one.parameters());
            split.useThreads(threads);
            Gpt.PreferenceGradients g = split.preferenceGradients(chosen, rejected, reference, supervised, 1.0, 0.5, 0.7);
            assertEquals(expected.loss(), g.loss(), 1e-5, threads + " threads");
            assertArrayEquals(expected.rewardMargins(), g.rewardMargins(), 1e-5f);
            assertArrayEquals(expected.policyMargins(), g.policyMargins(), 1e-5f);
            assertEquals(expectedGrads.keySet(), g.byParameter().keySet());
            expectedGrads.forEach((name, grad) -> assertArrayEquals(flat(grad), flat(g.byParameter().get(name)),
                    1e-5f, threads + " threads, " + name));
            Gpt.Gradients l = split.gradients(inputs, targets, null);
            assertEquals(lm.loss(), l.loss(), 1e-5);
            lmGrads.forEach((name, grad) -> assertArrayEquals(flat(grad), flat(l.byParameter().get(name)),
                    1e-5f, threads + " threads, language model, " + name));
        }
    }

    @Test
    void preferenceLossesAndGradientsMatchFiniteDifferences() {
        Gpt gpt = Gpt.initialize(SMALL, 5);
        gpt.parameters().get("reward.w").muli(20);    // a non-trivial reward head
        Random random = new Random(4);
        List<Gpt.Sequence> chosen = List.of(sequence(random, 3, 4), sequence(random, 5, 2));
        List<Gpt.Sequence> rejected = List.of(sequence(random, 3, 3), sequence(random, 5, 4));
        List<Gpt.Sequence> supervised = List.of(sequence(random, 2, 5));
        float[] reference = {0.3f, -0.2f};
        Gpt.PreferenceGradients g = gpt.preferenceGradients(chosen, rejected, reference, supervised, 1.0, 0.5, 0.7);
        assertTrue(g.rewardLoss() > 0 && g.dpoLoss() > 0 && g.languageLoss() > 0, g.toString());
        assertEquals(g.languageLoss() + g.rewardLoss() + g.dpoLoss(), g.loss(), 1e-5);
        java.util.Map<String, INDArray> grads = new java.util.HashMap<>();   // the views change with the next step
        g.byParameter().forEach((name, grad) -> grads.put(name, grad.dup()));
        for (String name : new String[] {"reward.w", "wte", "h1.attn.wv", "h0.mlp.wfc", "lnf.gain"}) {
            INDArray p = gpt.parameters().get(name);
            INDArray grad = grads.get(name);
            for (long i : new long[] {0, p.length() / 2, p.length() - 1}) {
                INDArray flat = p.reshape(-1);
                double original = flat.getDouble(i);
                double eps = 1e-2;
                flat.putScalar(i, original + eps);
                double plus = gpt.preferenceGradients(chosen, rejected, reference, supervised, 1.0, 0.5, 0.7).loss();
                flat.putScalar(i, original - eps);
                double minus = gpt.preferenceGradients(chosen, rejected, reference, supervised, 1.0, 0.5, 0.7).loss();
                flat.putScalar(i, original);
                double numeric = (plus - minus) / (2 * eps);
                assertEquals(numeric, grad.reshape(-1).getDouble(i), 2e-3 + 0.05 * Math.abs(numeric), name + "[" + i + "]");
            }
        }
        // A language-model step leaves the reward head alone.
        int[][] window = {chosen.get(0).tokens().clone()};
        int[][] inputs = {java.util.Arrays.copyOf(window[0], SMALL.contextLength())};
        assertFalse(gpt.gradients(inputs, inputs, null).byParameter().containsKey("reward.w"));
    }

    @Test
    void aTokenFarBelowTheOthersGivesFiniteLossesAndGradients() {
        Gpt gpt = Gpt.initialize(SMALL, 6);
        gpt.parameters().get("wte").getRow(3).assign(40f);    // token 3's logits tower over the rest: others < -100 nats
        Random random = new Random(2);
        Gpt.Sequence c = Gpt.Sequence.fit(new int[] {3, 3}, new int[] {5, 6}, SMALL.contextLength());
        Gpt.Sequence r = Gpt.Sequence.fit(new int[] {3, 3}, new int[] {7}, SMALL.contextLength());
        Gpt.PreferenceGradients g = gpt.preferenceGradients(List.of(c), List.of(r), new float[] {0f},
                List.of(sequence(random, 2, 3)), 1.0, 1.0, 0.1);
        assertTrue(Double.isFinite(g.loss()), "loss " + g.loss());
        for (var e : g.byParameter().entrySet()) {
            assertTrue(Double.isFinite(e.getValue().norm2Number().doubleValue()), e.getKey());
        }
    }

    @Test
    void theGraphsMarginsEqualTheEagerRewardAndLogProbabilities() {
        Gpt gpt = Gpt.initialize(SMALL, 8);
        gpt.parameters().get("reward.w").muli(20);
        Random random = new Random(1);
        List<Gpt.Sequence> chosen = List.of(sequence(random, 4, 3), sequence(random, 1, 8));
        List<Gpt.Sequence> rejected = List.of(sequence(random, 2, 6), sequence(random, 6, 4));
        Gpt.PreferenceGradients g = gpt.preferenceGradients(chosen, rejected, new float[2], List.of(), 1.0, 1.0, 1.0);
        Inference eager = new Inference(gpt);
        for (int p = 0; p < 2; p++) {
            double reward = eager.reward(chosen.get(p).tokens()) - eager.reward(rejected.get(p).tokens());
            double logRatio = eager.answerLogProbability(chosen.get(p)) - eager.answerLogProbability(rejected.get(p));
            assertEquals(reward, g.rewardMargins()[p], 1e-4);
            assertEquals(logRatio, g.policyMargins()[p], 1e-4);
        }
    }

    @Test
    void theRewardHeadAndDpoLearnAHiddenPreference() {
        // Preferred answers end with token 3, the others with token 4; the rest is noise.
        Gpt gpt = Gpt.initialize(SMALL, 2);
        Inference reference = new Inference(SMALL, frozen(gpt));
        AdamW adam = new AdamW(new OptimizerConfig(3e-3, 3e-3, 5, OptimizerConfig.Schedule.CONSTANT, 1, 0.0, 0.9, 0.99, 1e-8, 1.0));
        Random random = new Random(11);
        double beta = 0.5;
        for (int step = 0; step < 120; step++) {
            List<Gpt.Sequence> chosen = new ArrayList<>();
            List<Gpt.Sequence> rejected = new ArrayList<>();
            float[] margins = new float[8];
            for (int p = 0; p < 8; p++) {
                int[][] pair = pair(random);
                chosen.add(Gpt.Sequence.fit(pair[0], pair[1], SMALL.contextLength()));
                rejected.add(Gpt.Sequence.fit(pair[0], pair[2], SMALL.contextLength()));
                margins[p] = (float) (reference.answerLogProbability(chosen.get(p)) - reference.answerLogProbability(rejected.get(p)));
            }
            adam.apply(gpt.parameters(), gpt.preferenceGradients(chosen, rejected, margins, List.of(), 1.0, 1.0, beta).byParameter());
        }
        Inference policy = new Inference(gpt);
        int rewardRight = 0;
        int dpoRight = 0;
        int n = 100;
        Random heldOut = new Random(99);
        for (int i = 0; i < n; i++) {
            int[][] pair = pair(heldOut);
            Gpt.Sequence c = Gpt.Sequence.fit(pair[0], pair[1], SMALL.contextLength());
            Gpt.Sequence r = Gpt.Sequence.fit(pair[0], pair[2], SMALL.contextLength());
            rewardRight += policy.reward(c.tokens()) > policy.reward(r.tokens()) ? 1 : 0;
            double implicit = (policy.answerLogProbability(c) - reference.answerLogProbability(c))
                    - (policy.answerLogProbability(r) - reference.answerLogProbability(r));
            dpoRight += implicit > 0 ? 1 : 0;
        }
        assertTrue(rewardRight >= 0.9 * n, "reward pair accuracy " + rewardRight + "/" + n);
        assertTrue(dpoRight >= 0.9 * n, "DPO implicit-reward accuracy " + dpoRight + "/" + n);
    }

    /** {prompt, chosen answer, rejected answer}: answers share a random body, and differ in their last token. */
    private static int[][] pair(Random random) {
        int[] prompt = new int[2 + random.nextInt(3)];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 5 + random.nextInt(7);
        }
        int[] body = new int[1 + random.nextInt(3)];
        for (int i = 0; i < body.length; i++) {
            body[i] = 5 + random.nextInt(7);
        }
        int[] good = java.util.Arrays.copyOf(body, body.length + 1);
        int[] bad = java.util.Arrays.copyOf(body, body.length + 1);
        good[body.length] = 3;
        bad[body.length] = 4;
        return new int[][] {prompt, good, bad};
    }

    private static java.util.Map<String, INDArray> frozen(Gpt gpt) {
        java.util.Map<String, INDArray> copy = new java.util.LinkedHashMap<>();
        gpt.parameters().forEach((k, v) -> copy.put(k, v.dup()));
        return copy;
    }

    private static float[] flat(INDArray a) {
        return a.dup().reshape(a.length()).toFloatVector();
    }

    private static Gpt.Sequence sequence(Random random, int prompt, int answer) {
        int[] p = new int[prompt];
        int[] a = new int[answer];
        for (int i = 0; i < prompt; i++) {
            p[i] = random.nextInt(SMALL.vocabSize());
        }
        for (int i = 0; i < answer; i++) {
            a[i] = random.nextInt(SMALL.vocabSize());
        }
        return Gpt.Sequence.fit(p, a, SMALL.contextLength());
    }
}
