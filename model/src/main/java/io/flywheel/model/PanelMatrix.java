package io.flywheel.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix W [rows, cols] that we multiply ourselves, on Java's Vector API: held on the
 * heap in panels of {@link #PANEL} columns, [cols / PANEL][rows][PANEL] (the last padded with zero
 * columns), so that a multiply reads the weights once, front to back. What is shared by its two
 * forms, {@link Float32Matrix} and {@link Int8Matrix}: the panels, the copy of the rows in and out
 * of the decoder's block, and the split of the panels among threads. Each form has its own loops
 * (an abstract load in the innermost loop would cost the JIT's inlining there).
 */
abstract sealed class PanelMatrix implements Matrix permits Float32Matrix, Int8Matrix {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Columns per panel: four registers of accumulators for one row, two for each of four rows. */
    static final int PANEL = 4 * L;

    final int rows;
    final int cols;
    final int padded;      // cols rounded up to whole panels

    PanelMatrix(int rows, int cols) {
        this.rows = rows;
        this.cols = cols;
        this.padded = padded(cols);
    }

    static int padded(int cols) {
        return (cols + PANEL - 1) / PANEL * PANEL;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    /** Bytes this matrix holds. */
    abstract long bytes();

    @Override
    public void multiply(Floats x, int xOffset, int m, Floats y, int yOffset) {
        multiply(x, xOffset, m, y, yOffset, 1);
    }

    @Override
    public void multiply(Floats x, int xOffset, int m, Floats y, int yOffset, int threads) {
        float[] in = new float[m * rows];
        x.read(xOffset, in, 0, in.length);
        float[] out = new float[m * padded];
        // Even a lone row gains from a second thread: two cores read memory faster than one.
        Parallel.ranges(threads, padded / PANEL, (part, from, to) -> {
            if (m == 1) {
                row(in, out, from, to);
            } else {
                rows(in, m, out, from, to);
            }
        });
        for (int r = 0; r < m; r++) {
            y.write(yOffset + r * cols, out, r * padded, cols);
        }
    }

    /** {@code y[.. padded] = x[.. rows] · W} over panels {@code from .. to}. */
    abstract void row(float[] x, float[] y, int from, int to);

    /** {@code y[m, padded] = x[m, rows] · W} over panels {@code from .. to}, for m of at least 2. */
    abstract void rows(float[] x, int m, float[] y, int from, int to);
}
