package io.flywheel.model;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Adam with decoupled weight decay (Loshchilov and Hutter), written out so that every term is
 * visible and its state (two moments per parameter and the step count) can be checkpointed:
 * <pre>
 *   m = β1·m + (1-β1)·g          v = β2·v + (1-β2)·g²
 *   p = p - lr·( m/(1-β1^t) / (√(v/(1-β2^t)) + ε) + wd·p )     (wd for matrices only)
 * </pre>
 * Gradients are first clipped to a global L2 norm.
 */
public final class AdamW {

    private final OptimizerConfig config;
    private final Map<String, INDArray> firstMoments = new LinkedHashMap<>();
    private final Map<String, INDArray> secondMoments = new LinkedHashMap<>();
    private long step;

    public AdamW(OptimizerConfig config) {
        this.config = config;
    }

    /** An optimizer resumed from a checkpoint: its moments by parameter name and its step count. */
    public static AdamW resume(OptimizerConfig config, Map<String, INDArray> first, Map<String, INDArray> second, long step) {
        AdamW adam = new AdamW(config);
        adam.firstMoments.putAll(first);
        adam.secondMoments.putAll(second);
        adam.step = step;
        return adam;
    }

    public OptimizerConfig config() {
        return config;
    }

    /** Steps applied so far; the next step's learning rate is {@code config.learningRate(steps())}. */
    public long steps() {
        return step;
    }

    public Map<String, INDArray> firstMoments() {
        return firstMoments;
    }

    public Map<String, INDArray> secondMoments() {
        return secondMoments;
    }

    /** What one update did. */
    public record Update(double learningRate, double gradientNorm, boolean clipped) {}

    /**
     * Updates {@code parameters} in place from {@code gradients}, clipped to the global norm on the
     * way (the gradients themselves are left as they were). A parameter without a gradient is left
     * as it is: no decay, no momentum step.
     */
    public Update apply(Map<String, INDArray> parameters, Map<String, INDArray> gradients) {
        return apply(parameters, gradients, name -> 1.0);
    }

    /**
     * As {@link #apply(Map, Map)}, with each parameter's learning rate scaled by
     * {@code learningRateScale} (preference tuning moves the body gently and a new head at full speed).
     */
    public Update apply(Map<String, INDArray> parameters, Map<String, INDArray> gradients,
                        java.util.function.ToDoubleFunction<String> learningRateScale) {
        double norm = globalNorm(gradients);
        if (!Double.isFinite(norm)) {
            throw new IllegalStateException("gradient norm is " + norm + "; the step is skipped");
        }
        boolean clipped = config.gradientClip() > 0 && norm > config.gradientClip();
        double clipScale = clipped ? config.gradientClip() / norm : 1.0;
        double lr = config.learningRate(step);
        step++;
        double b1 = config.beta1();
        double b2 = config.beta2();
        double firstCorrection = 1 - Math.pow(b1, step);
        double secondCorrection = 1 - Math.pow(b2, step);
        List<Tensor> tensors = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : parameters.entrySet()) {
            String name = e.getKey();
            INDArray p = e.getValue();
            INDArray g = gradients.get(name);
            if (g == null) {
                continue;    // not part of this step's objective (the reward head in a language step)
            }
            INDArray m = firstMoments.computeIfAbsent(name, n -> Nd4j.zerosLike(p));
            INDArray v = secondMoments.computeIfAbsent(name, n -> Nd4j.zerosLike(p));
            double rate = lr * learningRateScale.applyAsDouble(name);
            double decay = p.rank() >= 2 ? config.weightDecay() : 0;
            tensors.add(new Tensor(Floats.of(p), Floats.of(g), Floats.of(m), Floats.of(v),
                    (float) (1 - rate * decay), (float) (rate / firstCorrection)));
        }
        // Element by element, so the threads (as many as OpenBLAS has, as the model's workers)
        // each take a slice of every tensor.
        int k = Math.max(1, Blas.threads());
        float clip = (float) clipScale;
        float vCorrection = (float) (1 / secondCorrection);
        float epsilon = (float) config.epsilon();
        Parallel.run(k, i -> {
            for (Tensor t : tensors) {
                int n = t.p().limit();
                update(t, (int) ((long) i * n / k), (int) ((long) (i + 1) * n / k), clip, (float) b1, (float) b2, vCorrection, epsilon);
            }
        });
        return new Update(lr, norm, clipped);
    }

    /** A parameter with its gradient and moments, and its step's {@code keep = 1 - lr·wd} and {@code stepSize = lr / (1-β1^t)}. */
    private record Tensor(FloatBuffer p, FloatBuffer g, FloatBuffer m, FloatBuffer v, float keep, float stepSize) {}

    /**
     * One fused pass over elements {@code from .. to} of a tensor: clip, both moments, decay and the
     * step, reading each element of the four tensors once and writing three of them
     * ({@code vCorrection = 1 / (1-β2^t)}); the clipped gradient is not written back, as nothing
     * reads it. In chunks copied to arrays, where the JIT vectorizes the loop (a direct buffer's
     * element accesses it does not).
     */
    private static void update(Tensor t, int from, int to, float clip, float b1, float b2, float vCorrection, float epsilon) {
        int chunk = Math.min(to - from, 1024);
        float[] pc = new float[chunk];
        float[] gc = new float[chunk];
        float[] mc = new float[chunk];
        float[] vc = new float[chunk];
        float keep = t.keep();
        float stepSize = t.stepSize();
        for (int o = from; o < to; o += chunk) {
            int k = Math.min(chunk, to - o);
            t.p().get(o, pc, 0, k);
            t.g().get(o, gc, 0, k);
            t.m().get(o, mc, 0, k);
            t.v().get(o, vc, 0, k);
            for (int i = 0; i < k; i++) {
                float grad = gc[i] * clip;
                float mi = b1 * mc[i] + (1 - b1) * grad;
                float vi = b2 * vc[i] + (1 - b2) * grad * grad;
                mc[i] = mi;
                vc[i] = vi;
                pc[i] = keep * pc[i] - stepSize * mi / ((float) Math.sqrt(vi * vCorrection) + epsilon);
            }
            t.p().put(o, pc, 0, k);
            t.m().put(o, mc, 0, k);
            t.v().put(o, vc, 0, k);
        }
    }

    /**
     * {@code √(Σ g²)} over every gradient, in Java on the same threads as the update (an ND4J
     * reduction per tensor leaves OpenMP's threads spinning on the cores the next step needs).
     */
    static double globalNorm(Map<String, INDArray> gradients) {
        List<FloatBuffer> tensors = new ArrayList<>();
        for (INDArray g : gradients.values()) {
            tensors.add(Floats.of(g));
        }
        int k = Math.max(1, Blas.threads());
        double[] sums = new double[k];
        Parallel.run(k, i -> {
            float[] chunk = new float[1024];
            double s = 0;
            for (FloatBuffer g : tensors) {
                int n = g.limit();
                int to = (int) ((long) (i + 1) * n / k);
                for (int o = (int) ((long) i * n / k); o < to; o += chunk.length) {
                    int len = Math.min(chunk.length, to - o);
                    g.get(o, chunk, 0, len);
                    s += VectorMath.dot(chunk, chunk, len);
                }
            }
            sums[i] = s;
        });
        double sum = 0;
        for (double s : sums) {
            sum += s;
        }
        return Math.sqrt(sum);
    }
}
