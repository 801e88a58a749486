package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The engine's whole step against the SameDiff graph it replaced, on the same weights: the loss
 * and every parameter's gradient, for language-model windows with a mask and for a preference
 * batch with every loss term on, tied and untied.
 */
class EngineParityTest {

    private Random random = new Random(5);

    @Test
    void languageModelStepsMatchTheGraph() {
        for (boolean tied : new boolean[] {true, false}) {
            GptConfig config = new GptConfig(37, 8, 2, 2, 16, 4, 0.0, tied);
            Gpt engine = Gpt.initialize(config, 3);
            scaleUp(engine);
            SameDiffGpt graph = new SameDiffGpt(config, engine.parameters());
            int[][] inputs = new int[3][8];
            int[][] targets = new int[3][8];
            float[][] mask = new float[3][8];
            for (int b = 0; b < 3; b++) {
                for (int t = 0; t < 8; t++) {
                    inputs[b][t] = random.nextInt(37);
                    targets[b][t] = random.nextInt(37);
                    mask[b][t] = (b * 8 + t) % 5 == 0 ? 0 : 1;
                }
            }
            inputs[0][2] = inputs[2][5] = inputs[1][0] = 9;   // a repeated id
            Gpt.Gradients expected = graph.gradients(inputs, targets, mask);
            Gpt.Gradients actual = engine.gradients(inputs, targets, mask);
            assertEquals(expected.loss(), actual.loss(), 1e-4 * Math.abs(expected.loss()), "loss, tied=" + tied);
            assertEquals(expected.tokens(), actual.tokens());
            assertSameGradients(expected.byParameter(), actual.byParameter(), "tied=" + tied);
        }
    }

    @Test
    void preferenceStepsMatchTheGraph() {
        for (int seed = 0; seed < 4; seed++) {
            random = new Random(seed);
            preferenceStepMatchesTheGraph();
        }
    }

    private void preferenceStepMatchesTheGraph() {
        GptConfig config = new GptConfig(29, 10, 2, 2, 16, 4, 0.0, true);
        Gpt engine = Gpt.initialize(config, 8);
        scaleUp(engine);
        engine.parameters().get("reward.w").assign(org.nd4j.linalg.factory.Nd4j.randn(org.nd4j.linalg.api.buffer.DataType.FLOAT, 16, 1));
        SameDiffGpt graph = new SameDiffGpt(config, engine.parameters());
        List<Gpt.Sequence> chosen = List.of(sequence(3, 4), sequence(2, 5));
        List<Gpt.Sequence> rejected = List.of(sequence(3, 3), sequence(4, 6));
        List<Gpt.Sequence> supervised = List.of(sequence(5, 4));
        float[] reference = {0.3f, -1.1f};
        Gpt.PreferenceGradients expected = graph.preferenceGradients(chosen, rejected, reference, supervised, 1.0, 0.5, 0.7);
        Gpt.PreferenceGradients actual = engine.preferenceGradients(chosen, rejected, reference, supervised, 1.0, 0.5, 0.7);
        // float32 sums in another order: the terms agree to about 1e-5 of their size.
        assertEquals(expected.loss(), actual.loss(), 2e-4 * Math.abs(expected.loss()), "loss");
        assertEquals(expected.languageLoss(), actual.languageLoss(), 2e-4 * Math.abs(expected.languageLoss()));
        assertEquals(expected.rewardLoss(), actual.rewardLoss(), 2e-4 * Math.abs(expected.rewardLoss()));
        assertEquals(expected.dpoLoss(), actual.dpoLoss(), 2e-4 * Math.abs(expected.dpoLoss()));
        for (int p = 0; p < 2; p++) {
            // float32 sums in a different order: about 1e-4 of the margin apart.
            assertEquals(expected.rewardMargins()[p], actual.rewardMargins()[p], 1e-3 * Math.max(1, Math.abs(expected.rewardMargins()[p])));
            assertEquals(expected.policyMargins()[p], actual.policyMargins()[p], 1e-3 * Math.max(1, Math.abs(expected.policyMargins()[p])));
        }
        assertTrue(actual.byParameter().containsKey("reward.w"), "the reward head learns from pairs");
        assertSameGradients(expected.byParameter(), actual.byParameter(), "preferences");
    }

    @Test
    void aSmallerBatchAfterALargerOneReusesTheBuffersExactly() {
        GptConfig config = new GptConfig(23, 6, 2, 2, 8, 2, 0.0, true);
        Gpt reused = Gpt.initialize(config, 4);
        Gpt fresh = Gpt.initialize(config, 4);
        int[][] large = new int[5][6];
        int[][] small = new int[2][6];
        for (int[] row : large) {
            for (int t = 0; t < 6; t++) {
                row[t] = random.nextInt(23);
            }
        }
        for (int[] row : small) {
            for (int t = 0; t < 6; t++) {
                row[t] = random.nextInt(23);
            }
        }
        reused.gradients(large, large, null);
        Gpt.Gradients after = reused.gradients(small, small, null);
        Gpt.Gradients expected = fresh.gradients(small, small, null);
        assertEquals(expected.loss(), after.loss(), 0.0);
        for (String name : expected.byParameter().keySet()) {
            assertEquals(expected.byParameter().get(name), after.byParameter().get(name), name);
        }
    }

    /** Larger weights than GPT-2's initialisation, so that every path carries a visible gradient. */
    private static void scaleUp(Gpt model) {
        model.parameters().forEach((name, w) -> {
            if (w.rank() == 2) {
                w.muli(10);
            } else if (!name.endsWith(".gain")) {
                w.addi(org.nd4j.linalg.factory.Nd4j.randn(w.dataType(), w.shape()).muli(0.1));
            }
        });
    }

    private Gpt.Sequence sequence(int prompt, int answer) {
        int[] tokens = new int[prompt + answer];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = random.nextInt(29);
        }
        return new Gpt.Sequence(tokens, prompt);
    }

    private static void assertSameGradients(Map<String, INDArray> expected, Map<String, INDArray> actual, String what) {
        assertEquals(expected.keySet(), actual.keySet(), what + ": the parameters with a gradient");
        for (String name : expected.keySet()) {
            INDArray e = expected.get(name).reshape(-1);
            INDArray a = actual.get(name).reshape(-1);
            double scale = Math.max(1e-3, e.amaxNumber().doubleValue());
            for (long i = 0; i < e.length(); i++) {
                assertEquals(e.getDouble(i), a.getDouble(i), 2e-3 * scale, what + ": " + name + "[" + i + "]");
            }
        }
    }
}
