package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class VectorMathTest {

    @Test
    void expIsWithinTwoUlpsOfMathExpAndTheSameBitsWhereverAnElementLies() {
        assertTrue(VectorMath.AVAILABLE, "the tests run with --add-modules jdk.incubator.vector");
        Random random = new Random(5);
        float[] x = new float[10_000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (random.nextGaussian() * 25);
        }
        x[0] = 0f;
        x[1] = -86.9f;
        x[2] = 87.9f;
        float[] whole = x.clone();
        VectorMath.exp(whole, 0, whole.length);
        for (int i = 0; i < x.length; i++) {
            double expected = Math.exp(x[i]);
            if (x[i] >= -87 && x[i] <= 88) {
                assertEquals(expected, whole[i], 2 * Math.ulp((float) expected), "exp(" + x[i] + ")");
            } else if (x[i] < -87) {
                assertEquals((float) Math.exp(-87), whole[i], 1e-44, "below the clamp");
            }
            // One element alone (the scalar path) and the vector lanes give the same bits.
            assertEquals(Float.floatToRawIntBits(VectorMath.exp(x[i])), Float.floatToRawIntBits(whole[i]), "exp(" + x[i] + ")");
        }
        // A slice that starts and ends off the vector width: the same bits again.
        for (int from = 0; from < 20; from++) {
            float[] part = x.clone();
            VectorMath.exp(part, from, from + 101);
            for (int i = from; i < from + 101; i++) {
                assertEquals(Float.floatToRawIntBits(whole[i]), Float.floatToRawIntBits(part[i]));
            }
            assertEquals(x[from + 101], part[from + 101]);
        }
        assertEquals(1f, VectorMath.exp(0f));
        assertTrue(Float.isNaN(VectorMath.exp(Float.NaN)));
    }

    @Test
    void reductionsAreAccurateAndTheirLanesAddAsTheScalarFormAdds() {
        assertTrue(VectorMath.AVAILABLE, "the tests run with --add-modules jdk.incubator.vector");
        Random random = new Random(6);
        int block = VectorMath.BLOCK;
        for (int n : new int[] {0, 1, 63, block, block + 5, 512, 1000, 4096 + 17}) {
            float[] a = new float[n];
            float[] b = new float[n];
            for (int i = 0; i < n; i++) {
                a[i] = (float) (random.nextGaussian() * 3 + 1);
                b[i] = (float) random.nextGaussian();
            }
            double sum = 0, dot = 0, dev = 0;
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) {
                sum += a[i];
                dot += (double) a[i] * b[i];
                dev += (a[i] - 0.5) * (a[i] - 0.5);
                max = Math.max(max, a[i]);
            }
            // float partial sums of at most n / BLOCK terms each: relative error a few float ulps times that
            double tolerance = 1e-6 * (1 + n / (double) block);
            assertEquals(sum, VectorMath.sum(a, n), tolerance * (1 + Math.abs(sum)) * 10, "sum of " + n);
            assertEquals(dot, VectorMath.dot(a, b, n), tolerance * 10 * Math.sqrt(1 + n), "dot of " + n);
            assertEquals(dev, VectorMath.squaredDeviations(a, 0.5f, n), tolerance * (1 + dev), "deviations of " + n);
            assertEquals(max, VectorMath.max(a, n), "max of " + n);

            int whole = n - n % block;
            float[] lanes = new float[block];
            float[] scalar = new float[block];
            VectorMath.Simd.sum(a, whole, lanes);
            VectorMath.Scalar.sum(a, whole, scalar);
            assertBits(scalar, lanes, "sum's partials, " + n);
            lanes = new float[block];
            scalar = new float[block];
            VectorMath.Simd.dot(a, b, whole, lanes);
            VectorMath.Scalar.dot(a, b, whole, scalar);
            assertBits(scalar, lanes, "dot's partials, " + n);
            lanes = new float[block];
            scalar = new float[block];
            VectorMath.Simd.squaredDeviations(a, 0.5f, whole, lanes);
            VectorMath.Scalar.squaredDeviations(a, 0.5f, whole, scalar);
            assertBits(scalar, lanes, "squared deviations' partials, " + n);
        }
        float[] withNaN = new float[200];
        withNaN[77] = Float.NaN;
        assertTrue(Float.isNaN(VectorMath.max(withNaN, 200)), "a NaN is never lost by max");
    }

    @Test
    void geluGradientsOnLanesAreTheScalarFormsBits() {
        Random random = new Random(7);
        int n = 1000;
        float[] x = new float[n];
        float[] y = new float[n];
        float[] up = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = i % 97 == 0 ? 0f : (float) (random.nextGaussian() * 3);
            y[i] = (float) (x[i] / (1 + Math.exp(-1.702 * x[i])));
            up[i] = (float) random.nextGaussian();
        }
        for (Activation form : Activation.values()) {
            float[] lanes = new float[n];
            float[] scalar = new float[n];
            int done = form == Activation.QUICK_GELU
                    ? VectorMath.Simd.quickGeluGradient(x, y, up, lanes, n)
                    : VectorMath.Simd.tanhGeluGradient(x, y, up, lanes, n);
            assertTrue(done > n - 64, "the vector form did the whole vectors");
            VectorMath.Scalar.geluGradient(form == Activation.QUICK_GELU, x, y, up, scalar, 0, done);
            float[] head = java.util.Arrays.copyOf(lanes, done);
            assertBits(java.util.Arrays.copyOf(scalar, done), head, form.id());
        }
    }

    private static void assertBits(float[] expected, float[] actual, String what) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]), what + " at " + i);
        }
    }
}
