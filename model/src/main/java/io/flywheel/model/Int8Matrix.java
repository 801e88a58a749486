package io.flywheel.model;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix W [rows, cols] quantized to int8, weight-only, with one scale per output column
 * (per output channel): {@code W[k, n] ≈ q[k, n] · scale[n]}, {@code scale[n] = max_k |W[k, n]| / 127},
 * q rounded to nearest. Activations stay float32; {@code x · W = (x · q) ⊙ scale}, so the scale is
 * applied once per output, after the sum.
 *
 * <p>A decode step reads every weight once, so a quarter of the bytes is most of the speed. No BLAS
 * multiplies int8 by float, so the multiply is ours, on Java's Vector API (the JVM needs
 * {@code --add-modules jdk.incubator.vector}; {@link Quantization#INT8} says so when it is missing):
 * L int8 become L floats in one register (L = 16 with AVX-512, 8 with AVX2) and meet a broadcast
 * activation in a fused multiply-add. q lies in a {@link PanelMatrix}'s panels.
 */
final class Int8Matrix extends PanelMatrix {

    /** Bytes that widen to one float register. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(L * Byte.SIZE));

    private final byte[] q;
    private final float[] scale;   // [padded], zero past cols

    private Int8Matrix(int rows, int cols, byte[] q, float[] scale) {
        super(rows, cols);
        this.q = q;
        this.scale = scale;
    }

    /** Quantizes row-major W [rows, cols] given as {@code w}. */
    static Int8Matrix quantize(float[] w, int rows, int cols) {
        if (w.length != rows * cols) {
            throw new IllegalArgumentException(w.length + " floats for a " + rows + " x " + cols + " matrix");
        }
        int padded = padded(cols);
        float[] scale = new float[padded];
        for (int k = 0; k < rows; k++) {
            for (int n = 0; n < cols; n++) {
                scale[n] = Math.max(scale[n], Math.abs(w[k * cols + n]));
            }
        }
        for (int n = 0; n < cols; n++) {
            scale[n] /= 127;
        }
        byte[] q = new byte[rows * padded];
        for (int k = 0; k < rows; k++) {
            for (int n = 0; n < cols; n++) {
                float s = scale[n];
                int v = s == 0 ? 0 : Math.round(w[k * cols + n] / s);
                q[at(n, k, rows)] = (byte) Math.max(-127, Math.min(127, v));
            }
        }
        return new Int8Matrix(rows, cols, q, scale);
    }

    /** Where q[k, n] lies: panel n / PANEL, then row k of it. */
    private static int at(int n, int k, int rows) {
        return (n / PANEL) * PANEL * rows + k * PANEL + n % PANEL;
    }

    /** The weight as quantized: {@code q[k, n] · scale[n]}. */
    float weight(int k, int n) {
        return q[at(n, k, rows)] * scale[n];
    }

    /** Bytes this matrix holds (q and its scales). */
    @Override
    long bytes() {
        return q.length + 4L * scale.length;
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
                a0 = widen(o).fma(xk, a0);
                a1 = widen(o + L).fma(xk, a1);
                a2 = widen(o + 2 * L).fma(xk, a2);
                a3 = widen(o + 3 * L).fma(xk, a3);
            }
            a0.mul(FloatVector.fromArray(F, scale, j)).intoArray(y, j);
            a1.mul(FloatVector.fromArray(F, scale, j + L)).intoArray(y, j + L);
            a2.mul(FloatVector.fromArray(F, scale, j + 2 * L)).intoArray(y, j + 2 * L);
            a3.mul(FloatVector.fromArray(F, scale, j + 3 * L)).intoArray(y, j + 3 * L);
        }
    }

    /**
     * Several rows, panels {@code from .. to}: four rows at a time times half a panel (eight
     * accumulators), so each widened weight serves four rows. Rows past m repeat the last one and
     * are not stored.
     */
    @Override
    void rows(float[] x, int m, float[] y, int from, int to) {
        for (int j = from * PANEL; j < to * PANEL; j += PANEL) {
            int panel = j * rows;
            for (int half = 0; half < PANEL; half += 2 * L) {
                int c = j + half;
                FloatVector s0 = FloatVector.fromArray(F, scale, c);
                FloatVector s1 = FloatVector.fromArray(F, scale, c + L);
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
                        FloatVector w0 = widen(o);
                        FloatVector w1 = widen(o + L);
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
                    store(a00, a01, s0, s1, y, r * padded + c);
                    if (r + 1 < m) {
                        store(a10, a11, s0, s1, y, (r + 1) * padded + c);
                    }
                    if (r + 2 < m) {
                        store(a20, a21, s0, s1, y, (r + 2) * padded + c);
                    }
                    if (r + 3 < m) {
                        store(a30, a31, s0, s1, y, (r + 3) * padded + c);
                    }
                }
            }
        }
    }

    /** L int8 weights from {@code offset} of q, as floats. */
    private FloatVector widen(int offset) {
        return (FloatVector) ByteVector.fromArray(B, q, offset).convertShape(VectorOperators.B2F, F, 0);
    }

    private static void store(FloatVector a0, FloatVector a1, FloatVector s0, FloatVector s1, float[] y, int at) {
        a0.mul(s0).intoArray(y, at);
        a1.mul(s1).intoArray(y, at + L);
    }
}
