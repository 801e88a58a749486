package io.flywheel.core.tokenizer;

import java.util.Arrays;

/**
 * The merges of a byte-level BPE vocabulary: a pair of adjacent token ids to the id of their
 * concatenation, the lookup BPE makes for every adjacent pair of every chunk that misses the
 * chunk cache.
 *
 * <p>An open-addressing table of single longs, each holding the two ids of the pair and the merged
 * id (21 bits each), so a probe reads one array element: a hit costs one cache miss, not two as
 * with separate key and value arrays. It is sized for a load of at most a half: for cl100k_base
 * 4 MiB, against 12 MiB for the earlier map of long keys and int values. In a stream thread that
 * shares the caches with the broker, the lookups were a quarter of the thread's time.
 */
final class MergeTable {

    /** What {@link #get} returns for a pair that does not merge: above every id, so it never wins a rank comparison. */
    static final int NONE = Integer.MAX_VALUE;
    private static final int BITS = 21;
    /** Ids must be below this: the all-ones entry marks an empty slot. */
    static final int MAX_ID = (1 << BITS) - 2;
    private static final long ID_MASK = (1L << BITS) - 1;
    private static final long EMPTY = -1L;

    private final long[] slots;
    private final int mask;

    /** The table of {@code count} merges: {@code left[i]} then {@code right[i]} gives {@code merged[i]}. */
    MergeTable(int[] left, int[] right, int[] merged, int count) {
        int capacity = Integer.highestOneBit(Math.max(8, 2 * count - 1)) << 1;
        slots = new long[capacity];
        Arrays.fill(slots, EMPTY);
        mask = capacity - 1;
        for (int i = 0; i < count; i++) {
            put(left[i], right[i], merged[i]);
        }
    }

    /** The id that {@code left} followed by {@code right} merge into, or {@link #NONE}. */
    int get(int left, int right) {
        long pair = pairBits(left, right);
        int i = slot(pair);
        while (true) {
            long entry = slots[i];
            if ((entry & ~ID_MASK) == pair && entry != EMPTY) {
                return (int) (entry & ID_MASK);
            }
            if (entry == EMPTY) {
                return NONE;
            }
            i = (i + 1) & mask;
        }
    }

    private void put(int left, int right, int merged) {
        for (int id : new int[] {left, right, merged}) {
            if (id < 0 || id > MAX_ID) {
                throw new IllegalArgumentException("token id " + id + " is beyond the " + MAX_ID + " a merge table holds");
            }
        }
        long pair = pairBits(left, right);
        int i = slot(pair);
        while (slots[i] != EMPTY && (slots[i] & ~ID_MASK) != pair) {
            i = (i + 1) & mask;
        }
        slots[i] = pair | merged;
    }

    /** The pair in the upper 42 bits, the low 21 left for the merged id. */
    private static long pairBits(int left, int right) {
        return ((long) left << (2 * BITS)) | ((long) right << BITS);
    }

    private int slot(long pair) {
        long h = pair * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29)) & mask;
    }
}
