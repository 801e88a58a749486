package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class Bf16KeyValuesTest {

    private static float bf16(float x) {
        return Float.intBitsToFloat(Bf16KeyValues.round(x) << 16);
    }

    @Test
    void roundingIsToTheNearestBfloat16AndTiesGoToEven() {
        assertEquals(1f, bf16(1f));
        assertEquals(-2.5f, bf16(-2.5f));
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the tie goes to 1 (even); a hair above goes up.
        assertEquals(1f, bf16(1f + 0x1p-8f));
        assertEquals(1f + 0x1p-7f, bf16(Math.nextUp(1f + 0x1p-8f)));
        // 1 + 3 · 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to the even one above.
        assertEquals(1f + 0x1p-6f, bf16(1f + 3 * 0x1p-8f));
        assertEquals(Float.POSITIVE_INFINITY, bf16(Float.POSITIVE_INFINITY));
        assertEquals(Float.NEGATIVE_INFINITY, bf16(-Float.MAX_VALUE), "past bfloat16's largest finite value");
        assertTrue(Float.isNaN(bf16(Float.NaN)));
        assertTrue(Float.isNaN(bf16(Float.intBitsToFloat(0x7f800001))), "a NaN whose payload sits in the dropped bits stays NaN");
        Random random = new Random(3);
        for (int i = 0; i < 100_000; i++) {
            float x = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(10) - 5));
            float r = bf16(x);
            // Half a bfloat16 step of x's binade: float32's step there times 2^16, halved.
            assertTrue(Math.abs(r - x) <= Math.ulp(x) * 0x1p15f, x + " rounded to " + r);
            assertEquals(0, Float.floatToRawIntBits(r) & 0xffff, "nothing left in the dropped bits");
        }
    }

    @Test
    void oneRowsAttentionIsSoftmaxOfTheRoundedKeysTimesTheRoundedValuesAndItsVectorLanesAddAsItsScalarForm() {
        assertTrue(VectorMath.AVAILABLE, "the tests run with --add-modules jdk.incubator.vector");
        int heads = 2;
        int context = 70;                    // three key blocks, the last one part full
        for (int hd : new int[] {32, 64, 6}) {
            Bf16KeyValues cache = new Bf16KeyValues(2, 3, heads, hd, context);
            Random random = new Random(hd);
            float[][] k = new float[context][hd];
            float[][] v = new float[context][hd];
            for (int t = 0; t < context; t++) {
                for (int d = 0; d < hd; d++) {
                    k[t][d] = (float) random.nextGaussian() * 2;
                    v[t][d] = (float) random.nextGaussian();
                }
                cache.put(1, 2, 1, t, k[t], 0, v[t], 0);
                // Another layer, slot and head hold other numbers: none of them may leak in.
                cache.put(1, 1, 1, t, v[t], 0, k[t], 0);
                cache.put(0, 2, 1, t, v[t], 0, k[t], 0);
                cache.put(1, 2, 0, t, v[t], 0, k[t], 0);
            }
            float[] q = new float[hd];
            for (int d = 0; d < hd; d++) {
                q[d] = (float) random.nextGaussian();
            }
            float scale = (float) (1 / Math.sqrt(hd));
            float[] work = new float[Bf16KeyValues.workSize(context, hd)];
            float[] keys = new float[context * hd];
            float[] values = new float[context * hd];
            for (int seen : new int[] {1, 31, 32, 33, 70}) {
                cache.unpack(1, 2, 1, seen, keys, values);
                for (int t = 0; t < seen; t++) {
                    for (int d = 0; d < hd; d++) {
                        assertEquals(bf16(k[t][d]), keys[t * hd + d], "key " + t + ", " + d);
                        assertEquals(bf16(v[t][d]), values[t * hd + d], "value " + t + ", " + d);
                    }
                }
                // In double, from the rounded keys and values.
                double[] p = new double[seen];
                double max = Double.NEGATIVE_INFINITY;
                for (int t = 0; t < seen; t++) {
                    for (int d = 0; d < hd; d++) {
                        p[t] += (double) q[d] * keys[t * hd + d];
                    }
                    p[t] *= scale;
                    max = Math.max(max, p[t]);
                }
                double sum = 0;
                for (int t = 0; t < seen; t++) {
                    p[t] = Math.exp(p[t] - max);
                    sum += p[t];
                }
                float[] scalar = new float[hd + 3];
                float[] simd = new float[hd + 3];
                cache.attend(1, 2, 1, seen, q, 0, scale, scalar, 3, work, false);
                boolean vector = Bf16KeyValues.Simd.fits(hd);
                assertEquals(hd != 6, vector, "head size " + hd + " fills whole vectors");
                cache.attend(1, 2, 1, seen, q, 0, scale, simd, 3, work, vector);
                for (int d = 0; d < hd; d++) {
                    double expected = 0;
                    for (int t = 0; t < seen; t++) {
                        expected += p[t] / sum * values[t * hd + d];
                    }
                    assertEquals(expected, scalar[3 + d], 1e-5, "head size " + hd + ", " + seen + " seen, dimension " + d);
                    assertEquals(Float.floatToRawIntBits(scalar[3 + d]), Float.floatToRawIntBits(simd[3 + d]),
                            "head size " + hd + ", " + seen + " seen, dimension " + d + ": the same bits on both paths");
                }
            }
        }
    }
}
