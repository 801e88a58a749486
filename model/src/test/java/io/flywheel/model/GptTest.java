package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

class GptTest {

    private static final GptConfig TINY = new GptConfig(16, 12, 2, 2, 32, 4, 0.0, true);

    @Test
    void theMaskedLossAndItsGradientsMatchFiniteDifferences() {
        Gpt gpt = Gpt.initialize(new GptConfig(11, 6, 2, 2, 8, 2, 0.0, false), 7);
        Random random = new Random(3);
        int[][] inputs = new int[3][6];
        int[][] targets = new int[3][6];
        float[][] mask = new float[3][6];
        for (int b = 0; b < 3; b++) {
            for (int t = 0; t < 6; t++) {
                inputs[b][t] = random.nextInt(11);
                targets[b][t] = random.nextInt(11);
                mask[b][t] = (b + t) % 3 == 0 ? 0 : 1;
            }
        }
        inputs[0][1] = inputs[1][4] = inputs[2][0] = 5;     // a repeated id: its gradients must add up
        Gpt.Gradients g = gpt.gradients(inputs, targets, mask);
        Map<String, INDArray> grads = new java.util.HashMap<>();   // the views change with the next step
        g.byParameter().forEach((name, grad) -> grads.put(name, grad.dup()));
        for (String name : new String[] {"wte", "wpe", "h0.attn.wq", "h1.mlp.bfc", "h0.ln1.gain", "lnf.bias", "head"}) {
            INDArray p = gpt.parameters().get(name);
            INDArray grad = grads.get(name);
            for (long i : new long[] {0, p.length() / 2, p.length() - 1, name.equals("wte") ? 5L * 8 + 3 : 1}) {
                double numeric = numericGradient(gpt, p, i, inputs, targets, mask);
                double analytic = grad.reshape(-1).getDouble(i);
                assertEquals(numeric, analytic, 2e-3 + 0.05 * Math.abs(numeric), name + "[" + i + "]");
            }
        }
        // The mean is over counted targets only: masking changes the loss.
        double unmasked = gpt.gradients(inputs, targets, null).loss();
        assertTrue(Math.abs(unmasked - g.loss()) > 1e-4);
    }

    @Test
    void dropoutDrawsNewMasksEachStepAndItsGradientsMatchFiniteDifferencesForFixedMasks() {
        GptConfig config = new GptConfig(11, 6, 2, 2, 8, 2, 0.25, true);
        Gpt gpt = Gpt.initialize(config, 9);
        // Larger matrices than GPT-2's initialisation: attention far from uniform, so that the
        // attention mask's share of the gradient is visible.
        gpt.parameters().forEach((name, w) -> {
            if (w.rank() == 2) {
                w.muli(12);
            }
        });
        Random random = new Random(8);
        int[][] inputs = new int[3][6];
        int[][] targets = new int[3][6];
        for (int b = 0; b < 3; b++) {
            for (int t = 0; t < 6; t++) {
                inputs[b][t] = random.nextInt(11);
                targets[b][t] = random.nextInt(11);
            }
        }
        double first = gpt.gradients(inputs, targets, null).loss();
        double second = gpt.gradients(inputs, targets, null).loss();
        assertTrue(Math.abs(first - second) > 1e-6, "each step draws new masks: " + first + " " + second);
        double undropped = Gpt.withWeights(new GptConfig(11, 6, 2, 2, 8, 2, 0.0, true), gpt.parameters())
                .gradients(inputs, targets, null).loss();
        assertTrue(Math.abs(undropped - second) > 1e-6, "dropout changes the loss");

        gpt.freezeDropoutMasks();
        Gpt.Gradients g = gpt.gradients(inputs, targets, null);
        assertEquals(second, g.loss(), 1e-6, "frozen: the last step's masks again");
        Map<String, INDArray> grads = new java.util.HashMap<>();
        g.byParameter().forEach((name, grad) -> grads.put(name, grad.dup()));
        for (String name : new String[] {"wte", "wpe", "h0.attn.wq", "h1.attn.wk", "h0.attn.wv", "h1.mlp.wfc", "h1.mlp.bproj", "h0.ln2.gain"}) {
            INDArray p = gpt.parameters().get(name);
            for (long i = 0; i < p.length(); i += Math.max(1, p.length() / 9)) {
                // A smaller step than the test above: the masks' 1/(1-p) scaling curves the loss more.
                double numeric = numericGradient(gpt, p, i, inputs, targets, null, 1e-3);
                double analytic = grads.get(name).reshape(-1).getDouble(i);
                assertEquals(numeric, analytic, 2e-3 + 0.05 * Math.abs(numeric), name + "[" + i + "]");
            }
        }
    }

    private static double numericGradient(Gpt gpt, INDArray p, long i, int[][] in, int[][] out, float[][] mask) {
        return numericGradient(gpt, p, i, in, out, mask, 1e-2);
    }

    private static double numericGradient(Gpt gpt, INDArray p, long i, int[][] in, int[][] out, float[][] mask, double eps) {
        INDArray flat = p.reshape(-1);
        double original = flat.getDouble(i);
        flat.putScalar(i, original + eps);
        double plus = gpt.gradients(in, out, mask).loss();
        flat.putScalar(i, original - eps);
        double minus = gpt.gradients(in, out, mask).loss();
        flat.putScalar(i, original);
        return (plus - minus) / (2 * eps);
    }

    @Test
    void eagerInferenceMatchesTheGraphAndTheCacheMatchesAFullForward() {
        Gpt gpt = Gpt.initialize(TINY, 11);
        // Train a few steps so that the weights are not the initial ones.
        AdamW adam = new AdamW(OptimizerConfig.defaults());
        Random random = new Random(5);
        for (int s = 0; s < 5; s++) {
            int[][] batch = randomBatch(random, 4);
            adam.apply(gpt.parameters(), gpt.gradients(inputsOf(batch), targetsOf(batch), null).byParameter());
        }
        Inference inference = new Inference(gpt);
        int[] tokens = randomBatch(random, 1)[0];
        int[] inputs = java.util.Arrays.copyOf(tokens, TINY.contextLength());

        // The graph's loss from the same weights equals the loss computed from eager logits.
        float[][] logits = inference.logits(inputs);
        int[] targets = java.util.Arrays.copyOfRange(tokens, 1, TINY.contextLength() + 1);
        double eagerLoss = 0;
        for (int t = 0; t < inputs.length; t++) {
            float[] row = logits[t];
            double max = Double.NEGATIVE_INFINITY;
            for (float v : row) {
                max = Math.max(max, v);
            }
            double sum = 0;
            for (float v : row) {
                sum += Math.exp(v - max);
            }
            eagerLoss += Math.log(sum) + max - row[targets[t]];
        }
        eagerLoss /= inputs.length;
        double graphLoss = gpt.gradients(new int[][] {inputs}, new int[][] {targets}, null).loss();
        assertEquals(graphLoss, eagerLoss, 1e-4);

        // Token by token through the cache gives the same logits as the full forward pass.
        Inference.Session session = inference.session();
        float[] prompt = session.append(java.util.Arrays.copyOf(inputs, 5));
        assertArrayEquals(logits[4], prompt, 1e-4f);
        for (int t = 5; t < inputs.length; t++) {
            float[] next = session.append(inputs[t]);
            assertArrayEquals(logits[t], next, 1e-4f, "position " + t);
        }
        assertEquals(0, session.remaining());
    }

    @Test
    void learnsToReverseSequences() {
        // [a b c d e 0 e d c b a ...]: the second half is only predictable by attending back.
        GptConfig config = new GptConfig(16, 12, 2, 2, 48, 4, 0.0, true);
        Gpt gpt = Gpt.initialize(config, 1);
        AdamW adam = new AdamW(new OptimizerConfig(3e-3, 3e-4, 20, OptimizerConfig.Schedule.COSINE, 400, 0.0, 0.9, 0.99, 1e-8, 1.0));
        Random random = new Random(9);
        float[][] mask = new float[32][12];
        for (float[] row : mask) {
            for (int t = 5; t < 10; t++) {
                row[t] = 1;      // targets at t = 5..9 are the reversed tokens
            }
        }
        double first = Double.NaN;
        double last = Double.NaN;
        for (int step = 0; step < 400; step++) {
            int[][] inputs = new int[32][12];
            int[][] targets = new int[32][12];
            for (int b = 0; b < 32; b++) {
                int[] seq = reversal(random);
                inputs[b] = java.util.Arrays.copyOf(seq, 12);
                targets[b] = java.util.Arrays.copyOfRange(seq, 1, 13);
            }
            Gpt.Gradients g = gpt.gradients(inputs, targets, mask);
            adam.apply(gpt.parameters(), g.byParameter());
            first = step == 0 ? g.loss() : first;
            last = g.loss();
        }
        // Guessing among the 14 symbols costs ln 14 = 2.64 nats; a model that reverses costs ~0.
        assertTrue(first > 2.0, "untrained loss " + first);
        assertTrue(last < 0.3, "loss after 400 steps " + last);
    }

    private static int[] reversal(Random random) {
        int[] seq = new int[13];
        for (int i = 0; i < 5; i++) {
            seq[i] = 2 + random.nextInt(14);
            seq[10 - i] = seq[i];
        }
        seq[5] = 0;
        seq[11] = 1;
        seq[12] = 1;
        return seq;
    }

    private static int[][] randomBatch(Random random, int batch) {
        int[][] out = new int[batch][TINY.contextLength() + 1];
        for (int[] row : out) {
            for (int t = 0; t < row.length; t++) {
                row[t] = random.nextInt(TINY.vocabSize());
            }
        }
        return out;
    }

    private static int[][] inputsOf(int[][] windows) {
        int[][] out = new int[windows.length][];
        for (int i = 0; i < windows.length; i++) {
            out[i] = java.util.Arrays.copyOf(windows[i], windows[i].length - 1);
        }
        return out;
    }

    private static int[][] targetsOf(int[][] windows) {
        int[][] out = new int[windows.length][];
        for (int i = 0; i < windows.length; i++) {
            out[i] = java.util.Arrays.copyOfRange(windows[i], 1, windows[i].length);
        }
        return out;
    }
}
