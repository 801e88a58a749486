package io.flywheel.model;

import java.util.LinkedHashMap;
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
     * Clips {@code gradients} in place, then updates {@code parameters} in place. A parameter without
     * a gradient is left as it is: no decay, no momentum step.
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
            update(Floats.of(p), Floats.of(g), Floats.of(m), Floats.of(v), (float) clipScale, (float) b1, (float) b2,
                    (float) (1 - rate * decay), (float) (rate / firstCorrection), (float) (1 / secondCorrection), (float) config.epsilon());
        }
        return new Update(lr, norm, clipped);
    }

    /**
     * One fused pass over a tensor: clip, both moments, decay and the step, reading each element of
     * the four tensors once ({@code keep = 1 - lr·wd}, {@code stepSize = lr / (1-β1^t)},
     * {@code vCorrection = 1 / (1-β2^t)}). The clipped gradient is written back, as before.
     */
    private static void update(java.nio.FloatBuffer p, java.nio.FloatBuffer g, java.nio.FloatBuffer m, java.nio.FloatBuffer v,
                               float clip, float b1, float b2, float keep, float stepSize, float vCorrection, float epsilon) {
        int n = p.limit();
        for (int i = 0; i < n; i++) {
            float grad = g.get(i) * clip;
            float mi = b1 * m.get(i) + (1 - b1) * grad;
            float vi = b2 * v.get(i) + (1 - b2) * grad * grad;
            g.put(i, grad);
            m.put(i, mi);
            v.put(i, vi);
            p.put(i, keep * p.get(i) - stepSize * mi / ((float) Math.sqrt(vi * vCorrection) + epsilon));
        }
    }

    static double globalNorm(Map<String, INDArray> gradients) {
        double sum = 0;
        for (INDArray g : gradients.values()) {
            double n = g.norm2Number().doubleValue();
            sum += n * n;
        }
        return Math.sqrt(sum);
    }
}
