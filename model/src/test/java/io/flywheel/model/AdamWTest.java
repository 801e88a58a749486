package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The fused update against the formula written out in doubles, on views of one block and on arrays of their own. */
class AdamWTest {

    @Test
    void twoStepsFollowTheFormulaOnViewsAndOnPlainArrays() {
        OptimizerConfig config = new OptimizerConfig(0.05, 0.05, 0, OptimizerConfig.Schedule.CONSTANT, 1, 0.1, 0.9, 0.99, 1e-8, 1.0);
        Floats block = Floats.zeros(20);
        Map<String, INDArray> params = new LinkedHashMap<>();
        params.put("bias", block.view(3, 4));                      // a view at an offset, no decay
        params.put("matrix", block.view(7, 2, 3));                 // a view with decay
        params.put("own", Nd4j.rand(DataType.FLOAT, 3, 2));        // an array of its own
        params.values().forEach(p -> p.assign(Nd4j.rand(DataType.FLOAT, p.shape())));
        Map<String, double[]> expected = new LinkedHashMap<>();
        Map<String, double[]> m = new LinkedHashMap<>();
        Map<String, double[]> v = new LinkedHashMap<>();
        params.forEach((name, p) -> {
            expected.put(name, p.reshape(-1).toDoubleVector());
            m.put(name, new double[(int) p.length()]);
            v.put(name, new double[(int) p.length()]);
        });
        AdamW adam = new AdamW(config);
        for (int t = 1; t <= 2; t++) {
            Map<String, INDArray> grads = new LinkedHashMap<>();
            params.forEach((name, p) -> grads.put(name, Nd4j.rand(DataType.FLOAT, p.shape()).subi(0.5).muli(3)));
            double norm = 0;
            for (INDArray g : grads.values()) {
                norm += Math.pow(g.norm2Number().doubleValue(), 2);
            }
            double clip = Math.min(1, 1.0 / Math.sqrt(norm));
            assertTrue(clip < 1, "the gradients are large enough to be clipped");
            for (String name : params.keySet()) {
                double[] p = expected.get(name);
                double[] g = grads.get(name).reshape(-1).toDoubleVector();
                double decay = params.get(name).rank() >= 2 ? 0.1 : 0;
                for (int i = 0; i < p.length; i++) {
                    double gi = g[i] * clip;
                    m.get(name)[i] = 0.9 * m.get(name)[i] + 0.1 * gi;
                    v.get(name)[i] = 0.99 * v.get(name)[i] + 0.01 * gi * gi;
                    double mHat = m.get(name)[i] / (1 - Math.pow(0.9, t));
                    double vHat = v.get(name)[i] / (1 - Math.pow(0.99, t));
                    p[i] = p[i] * (1 - 0.05 * decay) - 0.05 * mHat / (Math.sqrt(vHat) + 1e-8);
                }
            }
            adam.apply(params, grads);
            for (String name : params.keySet()) {
                double[] actual = params.get(name).reshape(-1).toDoubleVector();
                for (int i = 0; i < actual.length; i++) {
                    assertEquals(expected.get(name)[i], actual[i], 1e-5, name + "[" + i + "] after step " + t);
                }
            }
        }
        assertEquals(0f, block.get(0), "nothing outside the views is touched");
        assertEquals(0f, block.get(19));
    }

    @Test
    void aNonFiniteGradientSkipsTheStep() {
        AdamW adam = new AdamW(OptimizerConfig.defaults());
        INDArray p = Nd4j.ones(DataType.FLOAT, 3);
        INDArray g = Nd4j.createFromArray(1f, Float.NaN, 0f);
        assertThrows(IllegalStateException.class, () -> adam.apply(Map.of("p", p), Map.of("p", g)));
        assertEquals(3.0, p.sumNumber().doubleValue(), 1e-6);
        assertEquals(0, adam.steps());
    }
}
