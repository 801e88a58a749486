package io.flywheel.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Json;

/**
 * AdamW and its learning-rate schedule, every knob visible (nanoGPT's train.py defaults, scaled
 * for online fine-tuning).
 *
 * @param learningRate    peak learning rate, reached after the warm-up
 * @param minLearningRate floor of the cosine schedule
 * @param warmupSteps     linear warm-up from 0 to the peak
 * @param schedule        after the warm-up: {@code cosine} down to the floor over {@code decaySteps}, or {@code constant}
 * @param decaySteps      length of the cosine decay, counted from step 0; beyond it the floor holds
 * @param weightDecay     decoupled decay, applied to matrices only (not to biases and layer-norm gains)
 * @param beta1           Adam's first-moment decay
 * @param beta2           Adam's second-moment decay
 * @param epsilon         Adam's denominator floor
 * @param gradientClip    clip gradients to this global L2 norm; 0 = off
 */
public record OptimizerConfig(double learningRate, double minLearningRate, long warmupSteps, Schedule schedule,
                              long decaySteps, double weightDecay, double beta1, double beta2, double epsilon,
                              double gradientClip) {

    public enum Schedule { COSINE, CONSTANT }

    public OptimizerConfig {
        if (!(learningRate > 0) || minLearningRate < 0 || minLearningRate > learningRate) {
            throw new IllegalArgumentException("need 0 <= min learning rate <= learning rate, learning rate > 0");
        }
        if (warmupSteps < 0 || decaySteps < 0 || weightDecay < 0 || gradientClip < 0) {
            throw new IllegalArgumentException("warm-up, decay steps, weight decay and clip must be >= 0");
        }
        if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && epsilon > 0)) {
            throw new IllegalArgumentException("need 0 <= beta < 1 and epsilon > 0");
        }
    }

    /** nanoGPT's small-model settings: lr 1e-3 with 100 warm-up steps, cosine to 1e-4, decay 0.1, clip 1. */
    public static OptimizerConfig defaults() {
        return new OptimizerConfig(1e-3, 1e-4, 100, Schedule.COSINE, 5000, 0.1, 0.9, 0.99, 1e-8, 1.0);
    }

    /** The learning rate for a step (0-based). */
    public double learningRate(long step) {
        if (step < warmupSteps) {
            return learningRate * (step + 1) / (warmupSteps + 1);
        }
        if (schedule == Schedule.CONSTANT) {
            return learningRate;
        }
        if (step >= decaySteps) {
            return minLearningRate;
        }
        double progress = (double) (step - warmupSteps) / Math.max(1, decaySteps - warmupSteps);
        return minLearningRate + 0.5 * (1 + Math.cos(Math.PI * progress)) * (learningRate - minLearningRate);
    }

    public byte[] toJson() {
        ObjectNode node = Json.object().put("learning_rate", learningRate).put("min_learning_rate", minLearningRate)
                .put("warmup_steps", warmupSteps).put("schedule", schedule.name().toLowerCase(java.util.Locale.ROOT))
                .put("decay_steps", decaySteps).put("weight_decay", weightDecay).put("beta1", beta1)
                .put("beta2", beta2).put("epsilon", epsilon).put("gradient_clip", gradientClip);
        return Json.write(node);
    }

    public static OptimizerConfig fromJson(byte[] json) {
        Json.Fields f = Json.read(json);
        OptimizerConfig c = new OptimizerConfig(f.number("learning_rate"), f.number("min_learning_rate"),
                f.integer("warmup_steps"), Schedule.valueOf(f.string("schedule").toUpperCase(java.util.Locale.ROOT)),
                f.integer("decay_steps"), f.number("weight_decay"), f.number("beta1"), f.number("beta2"),
                f.number("epsilon"), f.number("gradient_clip"));
        f.done();
        return c;
    }
}
