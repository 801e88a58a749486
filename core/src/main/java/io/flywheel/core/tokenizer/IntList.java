package io.flywheel.core.tokenizer;

import java.util.Arrays;

/** A growable int array: the token ids of one encode call. */
final class IntList {
    private int[] data;
    private int size;

    IntList(int capacity) {
        data = new int[Math.max(4, capacity)];
    }

    void add(int v) {
        if (size == data.length) {
            data = Arrays.copyOf(data, data.length * 2);
        }
        data[size++] = v;
    }

    void addAll(int[] values) {
        if (size + values.length > data.length) {
            data = Arrays.copyOf(data, Math.max(data.length * 2, size + values.length));
        }
        System.arraycopy(values, 0, data, size, values.length);
        size += values.length;
    }

    int size() {
        return size;
    }

    int[] copyFrom(int from) {
        return Arrays.copyOfRange(data, from, size);
    }

    int[] toArray() {
        return Arrays.copyOf(data, size);
    }
}
