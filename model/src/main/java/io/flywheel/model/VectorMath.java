package io.flywheel.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fused loops' vector arithmetic: {@code exp} and the reductions (sum, dot product, squared
 * deviations, maximum), each giving the same bits on the Vector API, compiled or interpreted, as
 * in its scalar form.
 *
 * <p>{@code exp} over an array is the one transcendental function the engine's fused loops need (GELU,
 * the attention softmax, the cross-entropy), as a sequence of float additions, multiplies and
 * fused multiply-adds that Java defines exactly: on Java's Vector API 16 lanes at a time with
 * AVX-512 (measured here: about 0.5 ns per element, against 15 ns for {@code Math.exp}), otherwise
 * the same operations one element at a time, with the same bits.
 *
 * <p>Why not {@code VectorOperators.EXP}: its compiled form (Intel's SVML) and its interpreted
 * form ({@code Math.exp} per lane) differ in the last bit, so a result would depend on whether the
 * JIT had compiled the loop yet, and a batched decode step could sample another token than the
 * same sequence decoded alone. Here every element's exp is the same wherever and whenever it is
 * computed.
 *
 * <p>The method is Cody and Waite's: {@code e^x = 2^k · e^f} with {@code k = round(x / ln 2)} and
 * {@code |f| <= ln 2 / 2}, {@code e^f} by the degree-5 minimax polynomial of Cephes' {@code expf}
 * (about 1 ulp). Inputs are clamped to [-87, 88]: below, the result is about 1.6e-38 rather than
 * smaller or 0 (a softmax term that weighs nothing either way); above, the loops never go (they
 * exponentiate differences from a maximum, or GELU's bounded arguments). The Vector API is an
 * incubator module in Java 17: the JVMs Flywheel starts pass {@code --add-modules jdk.incubator.vector};
 * one started without it is only slower.
 */
final class VectorMath {

    private VectorMath() {}

    /** Whether this JVM has the Vector API (modules are resolved at start, so this never changes). */
    static final boolean AVAILABLE = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    private static final float LO = -87f;
    private static final float HI = 88f;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float ROUND = 12582912f;           // 1.5 · 2^23: x + ROUND - ROUND rounds x to an integer
    private static final float LN2_HI = 0.693359375f;       // ln 2 in two parts: k · LN2_HI is exact
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    /**
     * Below this many elements the scalar form runs: until the JIT has compiled the vector loop,
     * the Vector API runs interpreted, allocating per operation, hundreds of times slower, and
     * short rows (a small model's, a decode step's first positions) would pay that for
     * thousands of calls. The bits are the same either way.
     */
    private static final int VECTOR_MIN = 64;

    /** {@code a[i] = exp(a[i])} for {@code from <= i < to}. */
    static void exp(float[] a, int from, int to) {
        int i = from;
        if (AVAILABLE && to - from >= VECTOR_MIN) {
            i = Simd.exp(a, from, to);
        }
        for (; i < to; i++) {
            a[i] = exp(a[i]);
        }
    }

    /**
     * Partial sums per reduction: four vectors' lanes (64 with AVX-512), so that four chains of
     * fused multiply-adds run at once. Element i of every whole block of this many goes to
     * partial sum {@code i % BLOCK}; the partial sums are then added in order in double, and so is
     * the tail. The scalar forms do exactly that, so a reduction's result depends only on its
     * input, never on which path ran (a sum reassociated by lanes would otherwise differ between a
     * batched and a lone decode step, or before and after the JIT compiles the loop).
     */
    static final int BLOCK = 4 * (AVAILABLE ? Simd.lanes() : 16);

    /** {@code Σ a[0 .. n)}. */
    static double sum(float[] a, int n) {
        int whole = n - n % BLOCK;
        double s = 0;
        if (whole > 0) {     // a short row (n < BLOCK) is all tail: no partial sums to make and add
            float[] partial = new float[BLOCK];
            if (AVAILABLE) {
                Simd.sum(a, whole, partial);
            } else {
                Scalar.sum(a, whole, partial);
            }
            s = inOrder(partial);
        }
        for (int i = whole; i < n; i++) {
            s += a[i];
        }
        return s;
    }

    /** {@code Σ a[i] · b[i]} over {@code [0, n)}. */
    static double dot(float[] a, float[] b, int n) {
        int whole = n - n % BLOCK;
        double s = 0;
        if (whole > 0) {     // a short row (n < BLOCK) is all tail: no partial sums to make and add
            float[] partial = new float[BLOCK];
            if (AVAILABLE) {
                Simd.dot(a, b, whole, partial);
            } else {
                Scalar.dot(a, b, whole, partial);
            }
            s = inOrder(partial);
        }
        for (int i = whole; i < n; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** {@code Σ (a[i] - m)²} over {@code [0, n)}. */
    static double squaredDeviations(float[] a, float m, int n) {
        int whole = n - n % BLOCK;
        double s = 0;
        if (whole > 0) {     // a short row (n < BLOCK) is all tail: no partial sums to make and add
            float[] partial = new float[BLOCK];
            if (AVAILABLE) {
                Simd.squaredDeviations(a, m, whole, partial);
            } else {
                Scalar.squaredDeviations(a, m, whole, partial);
            }
            s = inOrder(partial);
        }
        for (int i = whole; i < n; i++) {
            float d = a[i] - m;
            s += d * d;
        }
        return s;
    }

    /** {@code max a[0 .. n)} ({@code -∞} for none; NaN if any is): exact in any order. */
    static float max(float[] a, int n) {
        int whole = n - n % BLOCK;
        float m = Float.NEGATIVE_INFINITY;
        if (AVAILABLE && whole > 0) {
            m = Simd.max(a, whole);
        } else {
            for (int i = 0; i < whole; i++) {
                m = Math.max(m, a[i]);
            }
        }
        for (int i = whole; i < n; i++) {
            m = Math.max(m, a[i]);
        }
        return m;
    }

    /** GPT-2's GELU: {@code u = √(2/π) · (x + 0.044715 x³)}; {@link Kernels#gelu} uses the same constants. */
    static final float GELU_TANH_SLOPE = (float) Math.sqrt(2 / Math.PI);
    static final float GELU_TANH_COEFFICIENT = 0.044715f;
    private static final float GELU_TANH_CUBIC = 3 * GELU_TANH_COEFFICIENT;

    /**
     * {@code d[i] = dout[i] · gelu'(x[i])} for {@code i < n}, from the forward's input x and output y:
     * for {@code y = x · σ(1.702x)}, {@code σ = y / x} and {@code gelu' = σ + 1.702 x σ (1 - σ)};
     * for GPT-2's {@code y = x/2 · (1 + tanh u)}, {@code tanh u = 2y/x - 1} and
     * {@code gelu' = (1 + tanh u)/2 + x/2 · (1 - tanh² u) · du/dx}. At {@code x = 0}, where y / x
     * gives nothing back, σ is 1/2 and tanh 0. Recovering them costs a division; computing them
     * again would cost an exp.
     */
    static void geluGradient(Activation form, float[] x, float[] y, float[] dout, float[] d, int n) {
        boolean quick = form == Activation.QUICK_GELU;
        int i = 0;
        if (AVAILABLE && n >= VECTOR_MIN) {
            i = quick ? Simd.quickGeluGradient(x, y, dout, d, n) : Simd.tanhGeluGradient(x, y, dout, d, n);
        }
        Scalar.geluGradient(quick, x, y, dout, d, i, n);
    }

    /** The scalar forms, operation for operation as {@link Simd}'s lanes. */
    static final class Scalar {
        private Scalar() {}

        /** {@code partial[j] += a[i + j]} over the blocks of {@code a[0 .. whole)}. */
        static void sum(float[] a, int whole, float[] partial) {
            for (int i = 0; i < whole; i += partial.length) {
                for (int j = 0; j < partial.length; j++) {
                    partial[j] += a[i + j];
                }
            }
        }

        static void dot(float[] a, float[] b, int whole, float[] partial) {
            for (int i = 0; i < whole; i += partial.length) {
                for (int j = 0; j < partial.length; j++) {
                    partial[j] = Math.fma(a[i + j], b[i + j], partial[j]);
                }
            }
        }

        static void squaredDeviations(float[] a, float m, int whole, float[] partial) {
            for (int i = 0; i < whole; i += partial.length) {
                for (int j = 0; j < partial.length; j++) {
                    float d = a[i + j] - m;
                    partial[j] = Math.fma(d, d, partial[j]);
                }
            }
        }

        static void geluGradient(boolean quick, float[] x, float[] y, float[] dout, float[] d, int from, int to) {
            for (int i = from; i < to; i++) {
                float v = x[i];
                if (quick) {
                    float s = v != 0 ? y[i] / v : 0.5f;
                    d[i] = dout[i] * (s + 1.702f * v * s * (1 - s));
                } else {
                    float t = v != 0 ? 2 * y[i] / v - 1 : 0f;
                    float du = GELU_TANH_SLOPE * (1 + GELU_TANH_CUBIC * v * v);
                    d[i] = dout[i] * (0.5f * (1 + t) + 0.5f * v * (1 - t * t) * du);
                }
            }
        }
    }

    private static double inOrder(float[] partial) {
        double s = 0;
        for (float p : partial) {
            s += p;
        }
        return s;
    }

    /** One element: the same operations as a vector lane. */
    static float exp(float x) {
        x = Math.min(Math.max(x, LO), HI);
        float r = x * LOG2E + ROUND;     // k = round(x / ln 2) sits in r's low mantissa bits
        float k = r - ROUND;
        float f = Math.fma(k, -LN2_HI, x);
        f = Math.fma(k, -LN2_LO, f);
        float p = Math.fma(P0, f, P1);
        p = Math.fma(p, f, P2);
        p = Math.fma(p, f, P3);
        p = Math.fma(p, f, P4);
        p = Math.fma(p, f, P5);
        float y = Math.fma(p, f * f, f) + 1f;
        // 2^k: k added to y's exponent. ROUND's bits end in 23 zeros, so r's bits shifted by 23 are k's.
        return Float.intBitsToFloat(Float.floatToRawIntBits(y) + (Float.floatToRawIntBits(r) << 23));
    }

    /** Loaded only where the module is present: nothing outside this file and its test refers to the Vector API's types. */
    static final class Simd {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        private static final FloatVector NEG_LN2_HI = FloatVector.broadcast(S, -LN2_HI);
        private static final FloatVector NEG_LN2_LO = FloatVector.broadcast(S, -LN2_LO);
        private static final FloatVector V2 = FloatVector.broadcast(S, P2);
        private static final FloatVector V3 = FloatVector.broadcast(S, P3);
        private static final FloatVector V4 = FloatVector.broadcast(S, P4);
        private static final FloatVector V5 = FloatVector.broadcast(S, P5);
        private static final FloatVector ONE = FloatVector.broadcast(S, 1f);

        static int lanes() {
            return S.length();
        }

        /** {@code partial[j] += a[i + j]} over the blocks of {@code a[0 .. whole)}, four vectors at a time. */
        static void sum(float[] a, int whole, float[] partial) {
            int L = S.length();
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            for (int i = 0; i < whole; i += 4 * L) {
                s0 = s0.add(FloatVector.fromArray(S, a, i));
                s1 = s1.add(FloatVector.fromArray(S, a, i + L));
                s2 = s2.add(FloatVector.fromArray(S, a, i + 2 * L));
                s3 = s3.add(FloatVector.fromArray(S, a, i + 3 * L));
            }
            store(partial, s0, s1, s2, s3);
        }

        static void dot(float[] a, float[] b, int whole, float[] partial) {
            int L = S.length();
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            for (int i = 0; i < whole; i += 4 * L) {
                s0 = FloatVector.fromArray(S, a, i).fma(FloatVector.fromArray(S, b, i), s0);
                s1 = FloatVector.fromArray(S, a, i + L).fma(FloatVector.fromArray(S, b, i + L), s1);
                s2 = FloatVector.fromArray(S, a, i + 2 * L).fma(FloatVector.fromArray(S, b, i + 2 * L), s2);
                s3 = FloatVector.fromArray(S, a, i + 3 * L).fma(FloatVector.fromArray(S, b, i + 3 * L), s3);
            }
            store(partial, s0, s1, s2, s3);
        }

        static void squaredDeviations(float[] a, float m, int whole, float[] partial) {
            int L = S.length();
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            for (int i = 0; i < whole; i += 4 * L) {
                FloatVector d0 = FloatVector.fromArray(S, a, i).sub(m);
                FloatVector d1 = FloatVector.fromArray(S, a, i + L).sub(m);
                FloatVector d2 = FloatVector.fromArray(S, a, i + 2 * L).sub(m);
                FloatVector d3 = FloatVector.fromArray(S, a, i + 3 * L).sub(m);
                s0 = d0.fma(d0, s0);
                s1 = d1.fma(d1, s1);
                s2 = d2.fma(d2, s2);
                s3 = d3.fma(d3, s3);
            }
            store(partial, s0, s1, s2, s3);
        }

        static float max(float[] a, int whole) {
            FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < whole; i += S.length()) {
                m = m.max(FloatVector.fromArray(S, a, i));
            }
            float[] lanes = new float[S.length()];
            m.intoArray(lanes, 0);
            float r = Float.NEGATIVE_INFINITY;
            for (float x : lanes) {
                r = Math.max(r, x);
            }
            return r;
        }

        /** {@link VectorMath#geluGradient}'s quick form over whole vectors, op for op as the scalar loop. */
        static int quickGeluGradient(float[] x, float[] y, float[] dout, float[] d, int n) {
            int i = 0;
            for (int end = S.loopBound(n); i < end; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, i);
                FloatVector s = FloatVector.fromArray(S, y, i).div(v).blend(0.5f, v.eq(0f));
                FloatVector slope = v.mul(1.702f).mul(s).mul(ONE.sub(s));
                FloatVector.fromArray(S, dout, i).mul(s.add(slope)).intoArray(d, i);
            }
            return i;
        }

        /** The tanh form, likewise. */
        static int tanhGeluGradient(float[] x, float[] y, float[] dout, float[] d, int n) {
            int i = 0;
            for (int end = S.loopBound(n); i < end; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, i);
                FloatVector t = FloatVector.fromArray(S, y, i).mul(2f).div(v).sub(1f).blend(0f, v.eq(0f));
                FloatVector du = ONE.add(v.mul(GELU_TANH_CUBIC).mul(v)).mul(GELU_TANH_SLOPE);
                FloatVector g = ONE.add(t).mul(0.5f).add(v.mul(0.5f).mul(ONE.sub(t.mul(t))).mul(du));
                FloatVector.fromArray(S, dout, i).mul(g).intoArray(d, i);
            }
            return i;
        }

        private static void store(float[] partial, FloatVector s0, FloatVector s1, FloatVector s2, FloatVector s3) {
            int L = S.length();
            s0.intoArray(partial, 0);
            s1.intoArray(partial, L);
            s2.intoArray(partial, 2 * L);
            s3.intoArray(partial, 3 * L);
        }

        /** The whole vectors of {@code a[from .. to)}; returns where the rest begins. */
        static int exp(float[] a, int from, int to) {
            int i = from;
            for (int end = from + S.loopBound(to - from); i < end; i += S.length()) {
                FloatVector x = FloatVector.fromArray(S, a, i).max(LO).min(HI);
                FloatVector r = x.mul(LOG2E).add(ROUND);
                FloatVector k = r.sub(ROUND);
                FloatVector f = k.fma(NEG_LN2_HI, x);
                f = k.fma(NEG_LN2_LO, f);
                FloatVector p = f.fma(P0, P1);      // P0 · f + P1, as the scalar form's fma(P0, f, P1)
                p = p.fma(f, V2);
                p = p.fma(f, V3);
                p = p.fma(f, V4);
                p = p.fma(f, V5);
                FloatVector y = p.fma(f.mul(f), f).add(1f);
                // Not k.convert(F2I): Java 17 does not compile that conversion to one instruction (measured 4x slower).
                IntVector scale = r.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23);
                y.reinterpretAsInts().add(scale).reinterpretAsFloats().intoArray(a, i);
            }
            return i;
        }
    }
}
