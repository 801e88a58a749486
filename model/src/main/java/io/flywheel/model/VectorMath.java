package io.flywheel.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code exp} over an array, the one transcendental function the engine's fused loops need (GELU,
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

    /** Loaded only where the module is present: nothing outside refers to the Vector API's types. */
    private static final class Simd {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        private static final FloatVector NEG_LN2_HI = FloatVector.broadcast(S, -LN2_HI);
        private static final FloatVector NEG_LN2_LO = FloatVector.broadcast(S, -LN2_LO);
        private static final FloatVector V2 = FloatVector.broadcast(S, P2);
        private static final FloatVector V3 = FloatVector.broadcast(S, P3);
        private static final FloatVector V4 = FloatVector.broadcast(S, P4);
        private static final FloatVector V5 = FloatVector.broadcast(S, P5);

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
