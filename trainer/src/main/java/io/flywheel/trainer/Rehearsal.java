package io.flywheel.trainer;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A uniform sample of every window trained so far (reservoir sampling, Vitter's algorithm R), mixed
 * back into each batch so that new data does not erase what the model learned from old data.
 */
final class Rehearsal {

    private final int capacity;
    private final List<int[]> windows;
    private long seen;

    Rehearsal(int capacity) {
        this(capacity, new ArrayList<>(), 0);
    }

    private Rehearsal(int capacity, List<int[]> windows, long seen) {
        this.capacity = capacity;
        this.windows = windows;
        this.seen = seen;
    }

    static Rehearsal restore(int capacity, List<int[]> windows, long seen) {
        List<int[]> kept = new ArrayList<>(windows.subList(0, Math.min(capacity, windows.size())));
        return new Rehearsal(capacity, kept, seen);
    }

    /** Offers a freshly trained window: kept with probability capacity / seen. */
    void offer(int[] window, SplittableRandom random) {
        seen++;
        if (capacity == 0) {
            return;
        }
        if (windows.size() < capacity) {
            windows.add(window);
        } else {
            long slot = random.nextLong(seen);
            if (slot < capacity) {
                windows.set((int) slot, window);
            }
        }
    }

    /** A window drawn uniformly from the sample; the sample must not be empty. */
    int[] draw(SplittableRandom random) {
        return windows.get(random.nextInt(windows.size()));
    }

    int size() {
        return windows.size();
    }

    long seen() {
        return seen;
    }

    List<int[]> windows() {
        return List.copyOf(windows);
    }
}
