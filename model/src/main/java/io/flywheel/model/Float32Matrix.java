package io.flywheel.model;

import jdk.incubator.vector.FloatVector;

/**
 * A float32 weight matrix W [rows, cols] held for decoding in a {@link PanelMatrix}'s panels and
 * multiplied by our own Vector API loops.
 *
 * <p>Why not OpenBLAS: a decode step multiplies a few rows (one per running sequence) by every
 * weight, and for a few rows OpenBLAS's sgemm spends its time packing. Measured on this machine
 * (AMD EPYC, AVX2, one thread, 16 rows times 512 x 2048 weights): OpenBLAS over contiguous
 * 512 x 32 tiles ({@link Matrix.Tiled}) ran at 28-29 GFLOP/s, the four-row loop below at 45-60;
 * at 4 rows 10 against 30; a lone row read the weights as fast as OpenBLAS's sgemv or faster
 * (docs/benchmarks.md, "Our own multiply for decode"). At 256 rows (a long prompt) OpenBLAS is
 * about 10% faster; the prefill is a small share of serving's time.
 *
 * <p>Each output is the sum over k in order, one fused multiply-add per k, whatever the number of
 * rows, the row's place among them or the threads: a sequence gets the same logits alone as in any
 * batch (over OpenBLAS, one row and sixteen rows rounded differently).
 *
 * <p>The loops have the shape {@link Int8Matrix}'s have: a lone row spans a panel with four
 * accumulators; several rows go four at a time over half a panel (eight accumulators, two weight
 * loads per k serving four rows). Six rows (twelve accumulators) measured slower: with AVX2's
 * sixteen registers the JIT spilled them.
 */
final class Float32Matrix extends PanelMatrix {

    private final float[] w;

    private Float32Matrix(int rows, int cols, float[] w) {
        super(rows, cols);
        this.w = w;
    }

    /** The panels of row-major W [rows, cols] given as {@code w}. */
    static Float32Matrix of(float[] w, int rows, int cols) {
        if (w.length != rows * cols) {
            throw new IllegalArgumentException(w.length + " floats for a " + rows + " x " + cols + " matrix");
        }
        float[] panels = new float[Math.multiplyExact(rows, padded(cols))];
        for (int n = 0; n < cols; n += PANEL) {
            int width = Math.min(PANEL, cols - n);
            for (int k = 0; k < rows; k++) {
                System.arraycopy(w, k * cols + n, panels, n * rows + k * PANEL, width);
            }
        }
        return new Float32Matrix(rows, cols, panels);
    }

    @Override
    long bytes() {
        return 4L * w.length;
    }

    /** One row, panels {@code from .. to}: four accumulators span a panel, each weight is loaded once. */
    @Override
    void row(float[] x, float[] y, int from, int to) {
        for (int j = from * PANEL; j < to * PANEL; j += PANEL) {
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = a0;
            FloatVector a2 = a0;
            FloatVector a3 = a0;
            int panel = j * rows;
            for (int k = 0; k < rows; k++) {
                FloatVector xk = FloatVector.broadcast(F, x[k]);
                int o = panel + k * PANEL;
                a0 = FloatVector.fromArray(F, w, o).fma(xk, a0);
                a1 = FloatVector.fromArray(F, w, o + L).fma(xk, a1);
                a2 = FloatVector.fromArray(F, w, o + 2 * L).fma(xk, a2);
                a3 = FloatVector.fromArray(F, w, o + 3 * L).fma(xk, a3);
            }
            a0.intoArray(y, j);
            a1.intoArray(y, j + L);
            a2.intoArray(y, j + 2 * L);
            a3.intoArray(y, j + 3 * L);
        }
    }

    /**
     * Several rows, panels {@code from .. to}: four rows at a time times half a panel. Rows past
     * m repeat the last one and are not stored.
     */
    @Override
    void rows(float[] x, int m, float[] y, int from, int to) {
        for (int j = from * PANEL; j < to * PANEL; j += PANEL) {
            int panel = j * rows;
            for (int half = 0; half < PANEL; half += 2 * L) {
                int c = j + half;
                for (int r = 0; r < m; r += 4) {
                    int x0 = r * rows;
                    int x1 = Math.min(r + 1, m - 1) * rows;
                    int x2 = Math.min(r + 2, m - 1) * rows;
                    int x3 = Math.min(r + 3, m - 1) * rows;
                    FloatVector a00 = FloatVector.zero(F);
                    FloatVector a01 = a00;
                    FloatVector a10 = a00;
                    FloatVector a11 = a00;
                    FloatVector a20 = a00;
                    FloatVector a21 = a00;
                    FloatVector a30 = a00;
                    FloatVector a31 = a00;
                    for (int k = 0; k < rows; k++) {
                        int o = panel + k * PANEL + half;
                        FloatVector w0 = FloatVector.fromArray(F, w, o);
                        FloatVector w1 = FloatVector.fromArray(F, w, o + L);
                        FloatVector v = FloatVector.broadcast(F, x[x0 + k]);
                        a00 = w0.fma(v, a00);
                        a01 = w1.fma(v, a01);
                        v = FloatVector.broadcast(F, x[x1 + k]);
                        a10 = w0.fma(v, a10);
                        a11 = w1.fma(v, a11);
                        v = FloatVector.broadcast(F, x[x2 + k]);
                        a20 = w0.fma(v, a20);
                        a21 = w1.fma(v, a21);
                        v = FloatVector.broadcast(F, x[x3 + k]);
                        a30 = w0.fma(v, a30);
                        a31 = w1.fma(v, a31);
                    }
                    store(a00, a01, y, r * padded + c);
                    if (r + 1 < m) {
                        store(a10, a11, y, (r + 1) * padded + c);
                    }
                    if (r + 2 < m) {
                        store(a20, a21, y, (r + 2) * padded + c);
                    }
                    if (r + 3 < m) {
                        store(a30, a31, y, (r + 3) * padded + c);
                    }
                }
            }
        }
    }

    private static void store(FloatVector a0, FloatVector a1, float[] y, int at) {
        a0.intoArray(y, at);
        a1.intoArray(y, at + L);
    }
}
