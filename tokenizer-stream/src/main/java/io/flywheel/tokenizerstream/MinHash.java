package io.flywheel.tokenizerstream;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * MinHash signatures over word shingles, and their LSH bands.
 *
 * <p>A document's shingles are its runs of {@code shingleWords} consecutive words (lower-cased
 * letters and digits; everything else separates words). Each of the {@code bands * rows} hash
 * functions is a multiply-shift permutation of the 64-bit shingle hash; the signature keeps the
 * minimum of each. The share of equal positions in two signatures estimates the Jaccard
 * similarity of the two shingle sets. Two documents become candidates when all rows of at least
 * one band agree; with b bands of r rows that happens with probability {@code 1 - (1 - J^r)^b},
 * an S-curve whose midpoint {@code (1/b)^(1/r)} sits below the threshold, so near-duplicates
 * are rarely missed and candidates are then confirmed on the full signature.
 */
final class MinHash {

    private final int shingleWords;
    private final int bands;
    private final int rows;
    private final long[] multipliers;
    private final long[] offsets;

    MinHash(int shingleWords, int bands, int rows) {
        if (shingleWords < 1 || bands < 1 || rows < 1) {
            throw new IllegalArgumentException("shingle words, bands and rows must be positive");
        }
        this.shingleWords = shingleWords;
        this.bands = bands;
        this.rows = rows;
        // Fixed seed: signatures must agree across processes, restarts and versions.
        SplittableRandom random = new SplittableRandom(0x5EED_F1A7_0000_0001L);
        multipliers = new long[bands * rows];
        offsets = new long[bands * rows];
        for (int i = 0; i < multipliers.length; i++) {
            multipliers[i] = random.nextLong() | 1;
            offsets[i] = random.nextLong();
        }
    }

    int bands() {
        return bands;
    }

    int size() {
        return bands * rows;
    }

    /** The signature of the text; a text without words has the signature of one empty shingle. */
    int[] signature(String text) {
        int size = size();
        long[] min = new long[size];
        Arrays.fill(min, Long.MAX_VALUE);
        long[] window = new long[shingleWords];
        int words = 0;
        int n = text.length();
        int i = 0;
        while (i < n) {
            while (i < n && !Character.isLetterOrDigit(text.charAt(i))) {
                i++;
            }
            if (i >= n) {
                break;
            }
            long h = 0xcbf29ce484222325L;
            while (i < n && Character.isLetterOrDigit(text.charAt(i))) {
                h = (h ^ Character.toLowerCase(text.charAt(i))) * 0x100000001b3L;
                i++;
            }
            window[words % shingleWords] = h;
            words++;
            if (words >= shingleWords) {
                add(min, shingleHash(window, words));
            }
        }
        if (words < shingleWords) {
            add(min, shingleHash(window, words));
        }
        int[] signature = new int[size];
        for (int k = 0; k < size; k++) {
            signature[k] = (int) (min[k] >>> 32);
        }
        return signature;
    }

    /** The hash of the last {@code min(words, shingleWords)} words, in order. */
    private long shingleHash(long[] window, int words) {
        int count = Math.min(words, shingleWords);
        long h = 0;
        for (int k = words - count; k < words; k++) {
            h = h * 0x9E3779B97F4A7C15L + window[k % shingleWords];
        }
        return mix(h);
    }

    private void add(long[] min, long shingle) {
        for (int k = 0; k < min.length; k++) {
            // Unsigned order through the sign flip: a multiply-shift permutation's high bits.
            long v = (multipliers[k] * shingle + offsets[k]) ^ Long.MIN_VALUE;
            if (v < min[k]) {
                min[k] = v;
            }
        }
    }

    /** The key of band {@code band}: the band index and a hash of its rows. */
    long bandHash(int[] signature, int band) {
        long h = band;
        for (int r = band * rows; r < (band + 1) * rows; r++) {
            h = h * 0x9E3779B97F4A7C15L + signature[r];
        }
        return mix(h);
    }

    /** Share of equal positions: an estimate of the Jaccard similarity of the shingle sets. */
    static double similarity(int[] a, int[] b) {
        if (a.length != b.length) {
            return 0;
        }
        int equal = 0;
        for (int k = 0; k < a.length; k++) {
            if (a[k] == b[k]) {
                equal++;
            }
        }
        return (double) equal / a.length;
    }

    /** Stafford's 64-bit finalizer (variant 13): every input bit affects every output bit. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
