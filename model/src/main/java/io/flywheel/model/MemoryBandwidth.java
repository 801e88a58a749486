package io.flywheel.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * This machine's memory bandwidth as decode sees it: the bytes read per second by a copy of a
 * 256 MB off-heap array (ND4J's assign), best of five. Decode reads every weight once per step, so
 * weight bytes over this is the fastest a step can be.
 */
public final class MemoryBandwidth {

    private MemoryBandwidth() {}

    /** Bytes read per second. */
    public static double measure() {
        long n = 64L << 20;
        INDArray a = Nd4j.rand(DataType.FLOAT, n);
        INDArray b = Nd4j.create(DataType.FLOAT, n);
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            long start = System.nanoTime();
            b.assign(a);
            best = Math.min(best, System.nanoTime() - start);
        }
        a.close();
        b.close();
        return 4.0 * n / (best / 1e9);
    }
}
