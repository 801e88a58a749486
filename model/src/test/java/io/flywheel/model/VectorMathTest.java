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
}
