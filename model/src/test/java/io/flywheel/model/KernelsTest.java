package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.LayerNorm;
import org.nd4j.linalg.api.ops.impl.transforms.strict.GELU;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Every fused loop against central finite differences of its own forward (the objective is a
 * random linear function of the output, so every output element's gradient is checked at once),
 * and the forwards against ND4J's ops, which today's checkpoints were trained with.
 */
class KernelsTest {

    private static final Random RANDOM = new Random(11);

    private static Floats random(int n, double scale) {
        Floats f = Floats.zeros(n);
        for (int i = 0; i < n; i++) {
            f.set(i, (float) (RANDOM.nextGaussian() * scale));
        }
        return f;
    }

    private static double dot(Floats a, Floats b, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += (double) a.get(i) * b.get(i);
        }
        return s;
    }

    /**
     * Checks {@code analytic[i]} against {@code (f(x + h e_i) - f(x - h e_i)) / 2h} for a sample of
     * inputs {@code i}, where {@code f} runs the forward and returns the objective.
     */
    private static void checkGradient(String what, Floats x, int n, Floats analytic, java.util.function.DoubleSupplier f) {
        float h = 1e-2f;
        for (int i = 0; i < n; i += Math.max(1, n / 23)) {
            float original = x.get(i);
            x.set(i, original + h);
            double plus = f.getAsDouble();
            x.set(i, original - h);
            double minus = f.getAsDouble();
            x.set(i, original);
            double numeric = (plus - minus) / (2 * h);
            assertEquals(numeric, analytic.get(i), 2e-3 + 2e-2 * Math.abs(numeric), what + "[" + i + "]");
        }
    }

    @Test
    void layerNormGradientsMatchFiniteDifferences() {
        int n = 3;
        int c = 10;
        Floats x = random(n * c, 1.5);
        Floats w = random(2 * c, 1.0);    // gain at 0, bias at c
        Floats up = random(n * c, 1.0);
        Floats out = Floats.zeros(n * c);
        Floats stats = Floats.zeros(2 * n);    // means, then reciprocal standard deviations
        java.util.function.DoubleSupplier objective = () -> {
            Kernels.layerNorm(out, 0, stats, 0, n, x, 0, w, 0, c, n, c, 1e-5f);
            return dot(out, up, n * c);
        };
        objective.getAsDouble();
        Floats dx = Floats.zeros(n * c);
        Floats dw = Floats.zeros(2 * c);
        Kernels.layerNormBackward(dx, 0, dw, 0, c, up, 0, x, 0, stats, 0, n, w, 0, n, c);
        checkGradient("dx", x, n * c, dx, objective);
        checkGradient("dgain and dbias", w, 2 * c, dw, objective);
    }

    @Test
    void layerNormIsNd4jsLayerNorm() {
        // Rows of small variance, where an epsilon of PyTorch's 1e-5 would show (ND4J adds none).
        int n = 4;
        int c = 16;
        Floats x = random(n * c, 1e-3);
        Floats w = random(2 * c, 1.0);
        Floats out = Floats.zeros(n * c);
        Kernels.layerNorm(out, 0, Floats.zeros(2 * n), 0, n, x, 0, w, 0, c, n, c,
                (float) GptConfig.DEFAULT_LAYER_NORM_EPSILON);
        INDArray expected = Nd4j.create(DataType.FLOAT, n, c);
        Nd4j.exec(new LayerNorm(x.view(0, n, c).dup(), w.view(0, c).dup(), w.view(c, c).dup(), expected, false, 1));
        for (int i = 0; i < n * c; i++) {
            assertEquals(expected.getFloat(i / c, i % c), out.get(i), 1e-4 * Math.max(1, Math.abs(out.get(i))), "element " + i);
        }
    }

    @Test
    void bothGeluFormsHaveMatchingGradients() {
        for (Activation form : Activation.values()) {
            int rows = 3;
            int c = 83;                        // whole vectors and a scalar tail in every row
            int n = rows * c;
            Floats x = random(n, 2.0);
            Floats up = random(n, 1.0);
            Floats out = Floats.zeros(n);
            java.util.function.DoubleSupplier objective = () -> {
                Kernels.gelu(form, out, 0, x, 0, n);
                return dot(out, up, n);
            };
            x.set(0, 0f);                      // where y / x cannot give the sigmoid back: in a vector
            x.set(80, 0f);                     // and in the tail
            objective.getAsDouble();
            Floats dx = random(n, 1.0);        // written, not added to
            Floats dw = Floats.zeros(c + 1);
            dw.set(c, 7f);
            Kernels.geluBackward(form, dx, 0, x, 0, out, 0, up, 0, rows, c, dw, 1);
            checkGradient(form + " dx", x, n, dx, objective);
            assertEquals(0f, dw.get(0), "nothing before the bias is touched");
            for (int j = 0; j < c; j++) {
                float sum = 7f * (j == c - 1 ? 1 : 0);
                for (int r = 0; r < rows; r++) {
                    sum += dx.get(r * c + j);
                }
                assertEquals(sum, dw.get(1 + j), 1e-5, form + ": the bias gradient is the rows' sum at " + j);
            }
        }
    }

    @Test
    void quickGeluIsNd4jsGeluAndTheTanhFormIsGpt2s() {
        int n = 50;
        Floats x = random(n, 3.0);
        Floats out = Floats.zeros(n);
        Kernels.gelu(Activation.QUICK_GELU, out, 0, x, 0, n);
        INDArray nd4j = x.view(0, n).dup();
        Nd4j.exec(new GELU(nd4j, nd4j));
        for (int i = 0; i < n; i++) {
            assertEquals(nd4j.getFloat(i), out.get(i), 1e-5, "quick_gelu at " + x.get(i));
        }
        Kernels.gelu(Activation.GELU_TANH, out, 0, x, 0, n);
        for (int i = 0; i < n; i++) {
            double v = x.get(i);
            double expected = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            assertEquals(expected, out.get(i), 1e-5, "gelu_new at " + v);
        }
    }

    @Test
    void causalSoftmaxSeesOnlyThePastAndItsGradientMatches() {
        int T = 6;
        Floats s = random(T * T, 2.0);
        Floats scores = Floats.zeros(T * T);
        scores.copy(s, 0, 0, T * T);
        Floats up = random(T * T, 1.0);
        Floats p = Floats.zeros(T * T);
        java.util.function.DoubleSupplier objective = () -> {
            p.copy(s, 0, 0, T * T);
            Kernels.causalSoftmax(p, 0, T, 0);
            return dot(p, up, T * T);
        };
        objective.getAsDouble();
        for (int i = 0; i < T; i++) {
            double rowSum = 0;
            for (int j = 0; j < T; j++) {
                rowSum += p.get(i * T + j);
                if (j > i) {
                    assertEquals(0f, p.get(i * T + j), "row " + i + " sees position " + j);
                }
            }
            assertEquals(1.0, rowSum, 1e-5);
        }
        Floats ds = Floats.zeros(T * T);
        ds.copy(up, 0, 0, T * T);
        Kernels.causalSoftmaxBackward(ds, 0, p, 0, T);
        checkGradient("ds", s, T * T, ds, objective);
    }

    @Test
    void logProbGradientsMatchAndClippedTargetsPassNone() {
        int n = 4;
        int v = 7;
        Floats logits = random(n * v, 2.0);
        int[] targets = {3, 0, 6, 3};
        logits.set(2 * v + 6, -200f);           // row 2's target is far below the floor: clipped
        float[] coefficient = {0.5f, -1.0f, 2.0f, 0f};
        Floats work = Floats.zeros(n * v);
        Floats scratch = Floats.zeros(n * v);
        Floats lse = Floats.zeros(n);
        float[] picked = new float[n];
        java.util.function.DoubleSupplier objective = () -> {
            scratch.copy(logits, 0, 0, n * v);     // the forward works in place
            Kernels.targetLogProbs(picked, lse, 0, scratch, 0, targets, n, v);
            double sum = 0;
            for (int r = 0; r < n; r++) {
                sum += coefficient[r] * picked[r];
            }
            return sum;
        };
        objective.getAsDouble();
        assertEquals(Kernels.LOG_PROB_FLOOR, picked[2]);
        work.copy(scratch, 0, 0, n * v);
        Kernels.logProbBackward(work, 0, lse, 0, picked, coefficient, targets, n, v);
        checkGradient("dlogits", logits, n * v, work, objective);
        for (int i = 0; i < v; i++) {
            assertEquals(0f, work.get(2 * v + i), "a clipped row passes no gradient");
            assertEquals(0f, work.get(3 * v + i), "a row with coefficient 0 passes none");
        }
    }

    @Test
    void newPositionsAfterACacheSeeTheCacheAndTheirPast() {
        // Two new rows after three cached positions: row i sees columns 0 .. 3 + i, as a [5, 5]
        // causal block's last two rows do.
        int start = 3;
        int rows = 2;
        int width = start + rows;
        Floats square = random(width * width, 2.0);
        Floats tail = Floats.zeros(rows * width);
        tail.copy(square, start * width, 0, rows * width);
        Kernels.causalSoftmax(square, 0, width, 0);
        Kernels.causalSoftmax(tail, 0, rows, start);
        for (int i = 0; i < rows * width; i++) {
            assertEquals(square.get(start * width + i), tail.get(i), 1e-7f, "entry " + i);
        }
        assertEquals(0f, tail.get(width - 1), "row 0 does not see the position after it");
    }

    @Test
    void embeddingScatterAddsUpRepeatedIds() {
        int T = 3;
        int c = 4;
        int vocab = 5;
        int[] tokens = {2, 4, 2, 1, 2, 0};      // id 2 three times, at positions 0, 2 and 1
        Floats w = random(vocab * c + T * c, 1.0);   // wte, then wpe
        Floats out = Floats.zeros(tokens.length * c);
        Floats up = random(tokens.length * c, 1.0);
        java.util.function.DoubleSupplier objective = () -> {
            Kernels.embed(out, 0, w, 0, vocab * c, tokens, 0, T, 0, c);
            Kernels.embed(out, T * c, w, 0, vocab * c, tokens, T, T, 0, c);
            return dot(out, up, tokens.length * c);
        };
        Floats dw = Floats.zeros(vocab * c + T * c);
        Kernels.embedBackward(dw, 0, vocab * c, up, 0, tokens, T, c);
        checkGradient("dwte and dwpe", w, vocab * c + T * c, dw, objective);
    }

    @Test
    void oneRowProductsTakeTheMatrixVectorPathWithTheSameResult() {
        // m = 1 goes to sgemv; every transpose combination, with offsets, strides and beta.
        int n = 5;
        int k = 7;
        for (boolean transA : new boolean[] {false, true}) {
            for (boolean transB : new boolean[] {false, true}) {
                int lda = transA ? 3 : k + 2;        // A is [1, k], or stored [k, 1] with row stride 3
                int ldb = (transB ? k : n) + 1;
                Floats a = random(2 + (transA ? (k - 1) * lda + 1 : k), 1.0);
                Floats b = random(4 + (transB ? n : k) * ldb, 1.0);
                Floats c = random(1 + n, 1.0);
                float[] before = new float[c.size()];
                c.copyTo(before, 0);
                Blas.sgemm(transA, transB, 1, n, k, 1.5f, a, 2, lda, b, 4, ldb, 0.25f, c, 1, n);
                for (int j = 0; j < n; j++) {
                    double sum = 0;
                    for (int p = 0; p < k; p++) {
                        float x = a.get(2 + (transA ? p * lda : p));
                        float y = b.get(4 + (transB ? j * ldb + p : p * ldb + j));
                        sum += x * y;
                    }
                    assertEquals(1.5 * sum + 0.25 * before[1 + j], c.get(1 + j), 1e-5, "transA " + transA + " transB " + transB + " column " + j);
                }
                assertEquals(before[0], c.get(0), "nothing before C is written");
            }
        }
    }

    @Test
    void sgemmHonoursOffsetsStridesAndTransposes() {
        // C[2x3] = A[2x4] · Bᵀ where A sits at offset 5 with row stride 6 and B[3x4] at offset 2.
        Floats a = random(5 + 2 * 6, 1.0);
        Floats b = random(2 + 3 * 4, 1.0);
        Floats c = random(1 + 2 * 5, 1.0);
        float[] before = new float[c.size()];
        c.copyTo(before, 0);
        Blas.sgemm(false, true, 2, 3, 4, 2f, a, 5, 6, b, 2, 4, 0.5f, c, 1, 5);
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 5; j++) {
                double expected = before[1 + i * 5 + j];
                if (j < 3) {
                    double sum = 0;
                    for (int k = 0; k < 4; k++) {
                        sum += a.get(5 + i * 6 + k) * b.get(2 + j * 4 + k);
                    }
                    expected = 2 * sum + 0.5 * before[1 + i * 5 + j];
                }
                assertEquals(expected, c.get(1 + i * 5 + j), 1e-5, "C[" + i + "][" + j + "]");
            }
        }
        assertEquals(before[0], c.get(0), "nothing before C's offset is written");
        assertThrows(IndexOutOfBoundsException.class, () -> Blas.sgemm(false, false, 3, 3, 4, 1f, a, 5, 6, b, 2, 4, 0f, c, 1, 5));
    }

    @Test
    void viewsShareTheMemory() {
        Floats f = Floats.zeros(10);
        INDArray view = f.view(4, 2, 3);
        view.putScalar(1, 2, 7f);
        assertEquals(7f, f.get(4 + 5));
        f.set(4, 3f);
        assertEquals(3f, view.getFloat(0, 0));
    }
}
