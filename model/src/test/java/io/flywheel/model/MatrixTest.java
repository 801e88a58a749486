package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The tiled and float32-panel layouts multiply as the row-major matrix they were made from, and the
 * int8 one as its dequantized weights, whatever the shape.
 */
class MatrixTest {

    @Test
    void float32PanelsMultiplyAsRowMajorAndGiveEachRowTheSameBitsInAnyBatchAndOnAnyThreads() {
        // Columns not a multiple of a panel, one and two panels' worth, row counts below, at and past the four-row loop.
        int[][] shapes = {{16, 64}, {1100, 45}, {512, 33}, {7, 1000}, {600, 31}};
        SplittableRandom random = new SplittableRandom(7);
        for (int[] shape : shapes) {
            int rows = shape[0];
            int cols = shape[1];
            float[] w = new float[rows * cols];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) random.nextGaussian();
            }
            Float32Matrix panels = Float32Matrix.of(w, rows, cols);
            try (Floats original = Floats.zeros((long) rows * cols)) {
                original.copyFrom(w, 0, 0, w.length);
                Matrix rowMajor = new Matrix.RowMajor(original, 0, rows, cols);
                int m = 6;
                try (Floats x = Floats.zeros((long) m * rows + 2); Floats expected = Floats.zeros((long) m * cols);
                     Floats all = Floats.zeros((long) m * cols + 1); Floats one = Floats.zeros(cols + 1L)) {
                    for (int i = 0; i < x.size(); i++) {
                        x.set(i, (float) random.nextGaussian());
                    }
                    rowMajor.multiply(x, 2, m, expected, 0);
                    for (int threads : new int[] {1, 2, 3}) {
                        all.set(0, 42f);
                        panels.multiply(x, 2, m, all, 1, threads);
                        assertEquals(42f, all.get(0), "floats before the output are left alone");
                        for (int i = 0; i < m * cols; i++) {
                            float e = expected.get(i);
                            assertEquals(e, all.get(1 + i), 1e-4f * Math.max(1, Math.abs(e)),
                                    rows + "x" + cols + " times " + m + " rows on " + threads + " threads, element " + i);
                        }
                        for (int r = 0; r < m; r++) {
                            panels.multiply(x, 2 + r * rows, 1, one, 1, threads);
                            for (int n = 0; n < cols; n++) {
                                assertEquals(Float.floatToRawIntBits(all.get(1 + r * cols + n)), Float.floatToRawIntBits(one.get(1 + n)),
                                        rows + "x" + cols + ": row " + r + " alone, column " + n + ", " + threads + " threads");
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void tiledMultipliesAsRowMajorForAnyShapeAndRowCount() {
        // Rows past one tile's 512 (so chunks accumulate), columns not a multiple of 32, a lone row (matrix-vector).
        int[][] shapes = {{16, 64}, {1100, 45}, {512, 33}, {7, 1000}, {600, 31}};
        SplittableRandom random = new SplittableRandom(5);
        for (int[] shape : shapes) {
            int rows = shape[0];
            int cols = shape[1];
            Floats w = Floats.zeros(3 + (long) rows * cols);          // at an offset, as in a decoder's block
            for (int i = 0; i < w.size(); i++) {
                w.set(i, (float) random.nextGaussian());
            }
            try (Floats original = Floats.zeros(w.size()); Floats scratch = Floats.zeros((long) rows * cols)) {
                original.copy(w, 0, 0, w.size());
                Matrix rowMajor = new Matrix.RowMajor(original, 3, rows, cols);
                Matrix tiled = Matrix.Tiled.pack(w, 3, rows, cols, scratch);
                assertEquals(original.get(0), w.get(0), "floats before the matrix are left alone");
                for (int m : new int[] {1, 3, 40}) {
                    try (Floats x = Floats.zeros((long) m * rows + 2); Floats a = Floats.zeros((long) m * cols + 1);
                         Floats b = Floats.zeros((long) m * cols + 1)) {
                        for (int i = 0; i < x.size(); i++) {
                            x.set(i, (float) random.nextGaussian());
                        }
                        rowMajor.multiply(x, 2, m, a, 1);
                        tiled.multiply(x, 2, m, b, 1);
                        for (int i = 0; i < m * cols; i++) {
                            float e = a.get(1 + i);
                            assertEquals(e, b.get(1 + i), 1e-4f * Math.max(1, Math.abs(e)),
                                    rows + "x" + cols + " times " + m + " rows, element " + i);
                        }
                    }
                }
            }
            w.close();
        }
    }

    @Test
    void int8RoundsEachWeightToWithinHalfItsColumnsScaleAndMultipliesAsTheWeightsItHolds() {
        // Columns not a multiple of a panel, a zero column, row counts below, at and past the four-row kernel.
        int[][] shapes = {{16, 64}, {1100, 45}, {7, 1000}, {300, 3}};
        SplittableRandom random = new SplittableRandom(9);
        for (int[] shape : shapes) {
            int rows = shape[0];
            int cols = shape[1];
            float[] w = new float[rows * cols];
            for (int i = 0; i < w.length; i++) {
                w[i] = i % cols == 1 ? 0f : (float) (random.nextGaussian() * (1 + i % 7));
            }
            Int8Matrix q = Int8Matrix.quantize(w, rows, cols);
            for (int n = 0; n < cols; n++) {
                float max = 0;
                for (int k = 0; k < rows; k++) {
                    max = Math.max(max, Math.abs(w[k * cols + n]));
                }
                float scale = max / 127;
                for (int k = 0; k < rows; k++) {
                    assertEquals(w[k * cols + n], q.weight(k, n), scale / 2 * 1.0001f + 1e-30f, "weight " + k + ", " + n);
                }
            }
            for (int m : new int[] {1, 3, 4, 6, 40}) {
                try (Floats x = Floats.zeros((long) m * rows + 2); Floats y = Floats.zeros((long) m * cols + 1)) {
                    for (int i = 0; i < x.size(); i++) {
                        x.set(i, (float) random.nextGaussian());
                    }
                    y.set(0, 42f);
                    q.multiply(x, 2, m, y, 1);
                    assertEquals(42f, y.get(0), "floats before the output are left alone");
                    for (int r = 0; r < m; r++) {
                        for (int n = 0; n < cols; n++) {
                            double e = 0;
                            double size = 0;
                            for (int k = 0; k < rows; k++) {
                                double t = (double) x.get(2 + r * rows + k) * q.weight(k, n);
                                e += t;
                                size += Math.abs(t);
                            }
                            assertEquals(e, y.get(1 + r * cols + n), 1e-5 * Math.max(1, size),
                                    rows + "x" + cols + " times " + m + " rows, row " + r + ", column " + n);
                        }
                    }
                }
            }
        }
    }
}
