package io.flywheel.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A key/value cache's memory in bfloat16 ({@code serving.kv-cache-dtype=bfloat16}), and the one
 * attention it runs itself: a single new row (a decode step) against every position its slot has
 * seen. Half the bytes of a float32 cache, and a decode step with many slots spends a third of its
 * time reading their caches (docs/benchmarks.md, "Decode"); llama.cpp and vLLM keep theirs in 16
 * bits by default. bfloat16 is float32's upper half, so a value unpacks with a shift or a mask and
 * rounds (to nearest even) with an add; what it costs in loss is measured there too.
 *
 * <p>Two bfloat16 share an int, so that one {@link IntVector} load unpacks into two float vectors,
 * the even and the odd halves, with a shift and a mask (Java 17's Vector API compiles both to one
 * instruction; a short-to-int conversion it does not). Per layer, slot and head:
 * <ul>
 *   <li>keys, transposed in blocks of 32 positions: a block is [hd][16 ints], the int at
 *       (d, j) holding dimension d of positions 2j and 2j + 1 of the block. A row's scores for a
 *       block are then 16-lane multiply-adds down d, into an even and an odd vector, with no
 *       horizontal sums;</li>
 *   <li>values, a position per row: [T][hd / 2 ints], the int at (t, j) holding dimensions 2j
 *       and 2j + 1. A row's output is then the probabilities' multiply-adds down t.</li>
 * </ul>
 * Every lane adds its terms in the same order in the scalar form, which runs where the Vector API
 * is absent or the head too narrow for its lanes, so a result does not depend on the path.
 *
 * <p>Several rows at once (a prompt's prefill, an evaluation) {@link #unpack} a head to float32
 * and go through sgemm as a float32 cache does: that work grows with the rows, the unpacking only
 * with the positions.
 */
final class Bf16KeyValues {

    /** Positions per key block: 16 ints of two. */
    static final int BLOCK = 32;
    private static final int PAIRS = BLOCK / 2;

    private final int heads;
    private final int hd;
    private final int context;
    private final int keyInts;     // per head: blocks · hd · 16
    private final int valueInts;   // per head: context · hd / 2
    private final int[][] keys;    // per layer: [slot][head][keyInts]
    private final int[][] values;  // per layer: [slot][head][valueInts]

    Bf16KeyValues(int layers, int slots, int heads, int hd, int context) {
        if (hd % 2 != 0) {
            throw new IllegalArgumentException("a bfloat16 key/value cache needs an even head size, found " + hd);
        }
        this.heads = heads;
        this.hd = hd;
        this.context = context;
        this.keyInts = (context + BLOCK - 1) / BLOCK * hd * PAIRS;
        this.valueInts = context * hd / 2;
        long perLayer = (long) slots * heads * Math.max(keyInts, valueInts);
        if (perLayer > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("a bfloat16 cache layer of " + perLayer + " ints is larger than a Java array");
        }
        this.keys = new int[layers][slots * heads * keyInts];
        this.values = new int[layers][slots * heads * valueInts];
    }

    /** Bytes held: two per key and per value. */
    long bytes() {
        return 4L * keys.length * (keys[0].length + values[0].length);
    }

    private int keyBase(int slot, int head) {
        return (slot * heads + head) * keyInts;
    }

    /** The int holding position {@code t}'s dimension 0 of the head's keys (dimension d lies d · 16 ints on). */
    private int keyAt(int slot, int head, int t) {
        return keyBase(slot, head) + t / BLOCK * hd * PAIRS + t % BLOCK / 2;
    }

    private int valueBase(int slot, int head) {
        return (slot * heads + head) * valueInts;
    }

    /** float32 to bfloat16, rounded to nearest even (NaN stays NaN: a quiet bit is kept). */
    static int round(float x) {
        int bits = Float.floatToRawIntBits(x);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (bits >>> 16) | 0x40;
        }
        return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
    }

    private static float low(int pair) {
        return Float.intBitsToFloat(pair << 16);
    }

    private static float high(int pair) {
        return Float.intBitsToFloat(pair & 0xffff0000);
    }

    private static int withHalf(int pair, int half, int bf16) {
        return half == 0 ? (pair & 0xffff0000) | bf16 : (pair & 0xffff) | (bf16 << 16);
    }

    /** Stores position {@code t}'s key {@code k[kOff .. + hd)} and value {@code v[vOff .. + hd)}, rounded. */
    void put(int layer, int slot, int head, int t, float[] k, int kOff, float[] v, int vOff) {
        int[] kl = keys[layer];
        int first = keyAt(slot, head, t);
        int half = t % 2;
        for (int d = 0; d < hd; d++) {
            int at = first + d * PAIRS;
            kl[at] = withHalf(kl[at], half, round(k[kOff + d]));
        }
        int[] vl = values[layer];
        int row = valueBase(slot, head) + t * hd / 2;
        for (int j = 0; j < hd / 2; j++) {
            vl[row + j] = round(v[vOff + 2 * j]) | round(v[vOff + 2 * j + 1]) << 16;
        }
    }

    /**
     * {@code keysOut} and {@code valuesOut} ([seen, hd] each, row-major) = the first {@code seen}
     * positions of the head as float32.
     */
    void unpack(int layer, int slot, int head, int seen, float[] keysOut, float[] valuesOut) {
        int[] kl = keys[layer];
        for (int t = 0; t < seen; t++) {
            int at = keyAt(slot, head, t);
            boolean odd = t % 2 == 1;
            for (int d = 0; d < hd; d++) {
                int pair = kl[at + d * PAIRS];
                keysOut[t * hd + d] = odd ? high(pair) : low(pair);
            }
        }
        int[] vl = values[layer];
        int vb = valueBase(slot, head);
        for (int t = 0; t < seen; t++) {
            for (int j = 0; j < hd / 2; j++) {
                int pair = vl[vb + t * hd / 2 + j];
                valuesOut[t * hd + 2 * j] = low(pair);
                valuesOut[t * hd + 2 * j + 1] = high(pair);
            }
        }
    }

    /**
     * One row's attention over the head's first {@code seen} positions:
     * {@code out[outOff .. + hd) = softmax(scale · q kᵀ) v}. {@code work} holds at least
     * {@link #workSize} floats for this cache's context and head size.
     */
    void attend(int layer, int slot, int head, int seen, float[] q, int qOff, float scale, float[] out, int outOff, float[] work) {
        attend(layer, slot, head, seen, q, qOff, scale, out, outOff, work, VectorMath.AVAILABLE && Simd.fits(hd));
    }

    /** {@link #attend} on the Vector API or in the scalar form (the test compares their bits). */
    void attend(int layer, int slot, int head, int seen, float[] q, int qOff, float scale, float[] out, int outOff, float[] work,
                boolean simd) {
        int blocks = (seen + BLOCK - 1) / BLOCK;
        // work: the blocks' even scores, their odd ones, the scores in position order, the output's halves.
        int odd = (context + BLOCK - 1) / BLOCK * PAIRS;
        int scores = 2 * odd;
        int halves = scores + context;
        int[] kl = keys[layer];
        int kb = keyBase(slot, head);
        for (int b = 0; b < blocks; b++) {    // a block's scores: its [hd][16] pairs weighted by q
            weightedRows(kl, kb + b * hd * PAIRS, PAIRS, hd, q, qOff, work, b * PAIRS, odd + b * PAIRS, simd);
        }
        for (int t = 0; t < seen; t++) {     // positions past seen are another sequence's, or zeros: not read
            work[scores + t] = scale * work[(t % 2 == 0 ? 0 : odd) + t / 2];
        }
        // The softmax, as Kernels.causalSoftmax's last row.
        float max = Float.NEGATIVE_INFINITY;
        for (int t = 0; t < seen; t++) {
            max = Math.max(max, work[scores + t]);
        }
        for (int t = 0; t < seen; t++) {
            work[scores + t] -= max;
        }
        VectorMath.exp(work, scores, scores + seen);
        double sum = 0;
        for (int t = 0; t < seen; t++) {
            sum += work[scores + t];
        }
        float inv = (float) (1 / sum);
        for (int t = 0; t < seen; t++) {
            work[scores + t] *= inv;
        }
        // out = Σ_t p[t] · v[t]: the [seen][hd / 2] pairs weighted by p, even and odd dimensions apart, then interleaved.
        int half = hd / 2;
        weightedRows(values[layer], valueBase(slot, head), half, seen, work, scores, work, halves, halves + half, simd);
        for (int j = 0; j < half; j++) {
            out[outOff + 2 * j] = work[halves + j];
            out[outOff + 2 * j + 1] = work[halves + half + j];
        }
    }

    /**
     * For each of a [rows][width] block of pairs at {@code base}: {@code even[j] = Σ_i w[i] ·
     * low(pair[i][j])} into {@code out[evenAt + j]}, the high halves likewise into {@code
     * out[oddAt + j]}, each lane adding down i in order, on either path.
     */
    private static void weightedRows(int[] pairs, int base, int width, int rows, float[] w, int wAt, float[] out, int evenAt,
                                     int oddAt, boolean simd) {
        if (simd) {
            Simd.weightedRows(pairs, base, width, rows, w, wAt, out, evenAt, oddAt);
            return;
        }
        for (int j = 0; j < width; j++) {
            float e = 0, o = 0;
            for (int i = 0; i < rows; i++) {
                int pair = pairs[base + i * width + j];
                e = Math.fma(low(pair), w[wAt + i], e);
                o = Math.fma(high(pair), w[wAt + i], o);
            }
            out[evenAt + j] = e;
            out[oddAt + j] = o;
        }
    }

    /** Floats of {@code work} that {@link #attend} needs for heads of {@code hd} and up to {@code context} positions. */
    static int workSize(int context, int hd) {
        return 2 * ((context + BLOCK - 1) / BLOCK * PAIRS) + context + hd;
    }

    /** Loaded only where the module is present. */
    static final class Simd {
        private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
        private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
        private static final int HIGH = 0xffff0000;

        /** Whether a head of {@code hd} fills whole vectors: a key block's 16 ints and the value row's hd / 2. */
        static boolean fits(int hd) {
            int lanes = I.length();
            return I.length() == F.length() && PAIRS % lanes == 0 && (hd / 2) % lanes == 0;
        }

        /** {@link Bf16KeyValues#weightedRows} a vector of pairs at a time ({@link #fits} says the width is whole vectors). */
        static void weightedRows(int[] pairs, int base, int width, int rows, float[] w, int wAt, float[] out, int evenAt, int oddAt) {
            int lanes = I.length();
            for (int c = 0; c < width; c += lanes) {
                FloatVector e = FloatVector.zero(F);
                FloatVector o = e;
                for (int i = 0; i < rows; i++) {
                    IntVector pair = IntVector.fromArray(I, pairs, base + i * width + c);
                    FloatVector wi = FloatVector.broadcast(F, w[wAt + i]);
                    e = pair.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(wi, e);
                    o = pair.and(HIGH).reinterpretAsFloats().fma(wi, o);
                }
                e.intoArray(out, evenAt + c);
                o.intoArray(out, oddAt + c);
            }
        }
    }
}
