package io.flywheel.model;

/**
 * A weight matrix W [rows, cols] as the decoder multiplies by it: {@code y[m, cols] = x[m, rows] · W}.
 * Where it lies and who multiplies decide how fast that is for a handful of rows, so the forms the
 * decoder uses are behind one call: {@link RowMajor} (training's own layout, shared with a live
 * model), {@link TransposeOf} (a live model's tied head), the panels of a decoder's own copy
 * ({@link Float32Matrix}, {@link Int8Matrix}) and, on a JVM without the Vector API, {@link Tiled}.
 */
interface Matrix {

    int rows();

    int cols();

    /** {@code y[yOffset ..][m, cols] = x[xOffset ..][m, rows] · W}, both row-major and contiguous. */
    void multiply(Floats x, int xOffset, int m, Floats y, int yOffset);

    /**
     * The same, on up to {@code threads} threads where the matrix splits a multiply itself (ours do;
     * the ones OpenBLAS multiplies take the threads OpenBLAS has).
     */
    default void multiply(Floats x, int xOffset, int m, Floats y, int yOffset, int threads) {
        multiply(x, xOffset, m, y, yOffset);
    }

    /** W stored row-major at {@code offset} of {@code w}, as training keeps it. */
    record RowMajor(Floats w, int offset, int rows, int cols) implements Matrix {
        @Override
        public void multiply(Floats x, int xOffset, int m, Floats y, int yOffset) {
            Blas.sgemm(false, false, m, cols, rows, 1f, x, xOffset, rows, w, offset, cols, 0f, y, yOffset, cols);
        }
    }

    /** W whose transpose [cols, rows] is stored row-major at {@code offset} (the tied output head: W = wteᵀ). */
    record TransposeOf(Floats w, int offset, int rows, int cols) implements Matrix {
        @Override
        public void multiply(Floats x, int xOffset, int m, Floats y, int yOffset) {
            Blas.sgemm(false, true, m, cols, rows, 1f, x, xOffset, rows, w, offset, rows, 0f, y, yOffset, cols);
        }
    }

    /**
     * W cut into tiles of at most {@link #TILE_ROWS} x {@link #TILE_COLS}, each contiguous: column
     * panel by column panel, and within a panel its row chunks in order, so the matrix takes the same
     * floats as row-major W and can replace it in place ({@link #pack}).
     *
     * <p>Why: for a few rows OpenBLAS's sgemm spends its time packing W, which it reads with one
     * stream per row of W; measured here, 16 rows times a row-major 512 x 2048 matrix from memory ran at
     * 3 GB/s of weights, one sgemm per contiguous 512 x 32 tile at 10 GB/s (close to the arithmetic
     * peak at 16 rows), and a single row, as a matrix-vector product per tile, as fast as over
     * row-major W. For hundreds of rows (a long prompt) the tiles cost about 15% against one sgemm
     * (docs/benchmarks.md, "Decode").
     */
    record Tiled(Floats w, int offset, int rows, int cols) implements Matrix {
        static final int TILE_ROWS = 512;
        static final int TILE_COLS = 32;

        /**
         * Rearranges row-major W [rows, cols] at {@code offset} of {@code w} into tiles, in place
         * ({@code scratch} holds at least rows · cols floats while it works), and returns it.
         */
        static Tiled pack(Floats w, int offset, int rows, int cols, Floats scratch) {
            scratch.copy(w, offset, 0, rows * cols);
            for (int j = 0; j < cols; j += TILE_COLS) {
                int width = Math.min(TILE_COLS, cols - j);
                for (int r = 0; r < rows; r++) {       // panel j's rows follow each other: its row chunks are its tiles
                    w.copy(scratch, r * cols + j, offset + j * rows + r * width, width);
                }
            }
            return new Tiled(w, offset, rows, cols);
        }

        @Override
        public void multiply(Floats x, int xOffset, int m, Floats y, int yOffset) {
            for (int j = 0; j < cols; j += TILE_COLS) {
                int width = Math.min(TILE_COLS, cols - j);
                int panel = offset + j * rows;
                for (int k = 0; k < rows; k += TILE_ROWS) {
                    int depth = Math.min(TILE_ROWS, rows - k);
                    Blas.sgemm(false, false, m, width, depth, 1f, x, xOffset + k, rows, w, panel + k * width, width,
                            k == 0 ? 0f : 1f, y, yOffset + j, cols);
                }
            }
        }
    }
}
