package io.flywheel.model;

/**
 * The machine's float32 matrix-multiply peak as the engine reaches it ({@link Blas#sgemm}, the
 * OpenBLAS the training step calls): the denominator of model FLOPs utilisation (MFU). Measured,
 * not looked up, because it depends on the BLAS build and the kernels it picked for this CPU
 * ({@code OPENBLAS_CORETYPE}), the thread count and whatever else the machine is running.
 */
public final class MatmulPeak {

    private MatmulPeak() {}

    /**
     * The best FLOP/s of {@code repeats} square multiplications of size {@code n} (after one warm-up).
     * n = 2048 takes about 0.1 s per repeat at 170 GFLOP/s.
     */
    public static double measure(int n, int repeats) {
        Floats a = Floats.zeros((long) n * n);
        Floats b = Floats.zeros((long) n * n);
        Floats c = Floats.zeros((long) n * n);
        java.util.SplittableRandom random = new java.util.SplittableRandom(1);
        for (int i = 0; i < n * n; i++) {
            a.set(i, (float) random.nextDouble());
            b.set(i, (float) random.nextDouble());
        }
        Blas.sgemm(false, false, n, n, n, 1f, a, 0, n, b, 0, n, 0f, c, 0, n);
        double flops = 2.0 * n * n * n;
        long best = Long.MAX_VALUE;
        for (int i = 0; i < repeats; i++) {
            long start = System.nanoTime();
            Blas.sgemm(false, false, n, n, n, 1f, a, 0, n, b, 0, n, 0f, c, 0, n);
            best = Math.min(best, System.nanoTime() - start);
        }
        return flops / (best / 1e9);
    }
}
