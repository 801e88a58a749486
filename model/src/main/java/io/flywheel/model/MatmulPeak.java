package io.flywheel.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine's float32 matrix-multiply peak as ND4J reaches it: the denominator of model FLOPs
 * utilisation (MFU). Measured, not looked up, because it depends on the BLAS build, the thread
 * count ({@code OMP_NUM_THREADS}) and whatever else the machine is running.
 */
public final class MatmulPeak {

    private MatmulPeak() {}

    /**
     * The best FLOP/s of {@code repeats} square multiplications of size {@code n} (after one warm-up).
     * n = 2048 takes about 0.13 s per repeat at 130 GFLOP/s.
     */
    public static double measure(int n, int repeats) {
        INDArray a = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray b = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray c = Nd4j.create(DataType.FLOAT, n, n);
        a.mmul(b, c);
        double flops = 2.0 * n * n * n;
        long best = Long.MAX_VALUE;
        for (int i = 0; i < repeats; i++) {
            long start = System.nanoTime();
            a.mmul(b, c);
            best = Math.min(best, System.nanoTime() - start);
        }
        a.close();
        b.close();
        c.close();
        return flops / (best / 1e9);
    }
}
