package io.flywheel.model;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Single-precision matrix multiply through OpenBLAS (the build ND4J ships through JavaCPP), on
 * {@link Floats} with element offsets and leading dimensions, so that a head's slice of a
 * [rows, width] activation or a transposed weight is passed as it lies, never copied.
 *
 * <p>All matrices are row-major: {@code C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C},
 * where {@code op(X)} is X or its transpose, and {@code ldX} is the distance in elements between
 * two rows of X as stored.
 */
public final class Blas {

    private Blas() {}

    /**
     * Threads OpenBLAS may use for one multiply (its own pool, shared by the process). ND4J is
     * started first: starting it sets OpenBLAS's threads from {@code OMP_NUM_THREADS} (or the
     * cores), which would silently undo a setting made before.
     */
    public static void threads(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("threads must be at least 1, found " + n);
        }
        Nd4j.getBlasWrapper();
        openblas_nolapack.blas_set_num_threads(n);
    }

    public static int threads() {
        Nd4j.getBlasWrapper();
        return openblas_nolapack.blas_get_num_threads();
    }

    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             Floats a, long aOffset, int lda, Floats b, long bOffset, int ldb,
                             float beta, Floats c, long cOffset, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        // Bounds: the last element each operand's rows reach must lie inside its buffer.
        check(a, aOffset, transA ? k : m, transA ? m : k, lda, "A");
        check(b, bOffset, transB ? n : k, transB ? k : n, ldb, "B");
        check(c, cOffset, m, n, ldc, "C");
        FloatPointer pa = a.pointer(aOffset);
        FloatPointer pb = b.pointer(bOffset);
        FloatPointer pc = c.pointer(cOffset);
        if (m == 1) {
            // One row (a decode step): y = op(B)ᵀ x as a matrix-vector product. sgemm would pack
            // all of B into a buffer first, reading and writing the weights once more per token.
            int incx = transA ? lda : 1;
            if (transB) {   // B stored [n, k]
                openblas_nolapack.cblas_sgemv(openblas_nolapack.CblasRowMajor, openblas_nolapack.CblasNoTrans,
                        n, k, alpha, pb, ldb, pa, incx, beta, pc, 1);
            } else {        // B stored [k, n]
                openblas_nolapack.cblas_sgemv(openblas_nolapack.CblasRowMajor, openblas_nolapack.CblasTrans,
                        k, n, alpha, pb, ldb, pa, incx, beta, pc, 1);
            }
            return;
        }
        openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasRowMajor,
                transA ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans,
                transB ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans,
                m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    private static void check(Floats x, long offset, int rows, int cols, int ld, String name) {
        if (ld < cols || offset < 0 || (rows > 0 && cols > 0 && offset + (long) (rows - 1) * ld + cols > x.size())) {
            throw new IndexOutOfBoundsException(name + ": " + rows + "x" + cols + " with leading dimension " + ld
                    + " at " + offset + " does not fit in " + x.size() + " floats");
        }
    }
}
