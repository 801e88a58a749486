package io.flywheel.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * How fast this machine trains a model of a given shape, as llama.cpp's {@code llama-bench} answers
 * it for inference: random weights and random tokens (speed does not depend on them), a few
 * warm-up steps, then the median of full steps (forward, backward, clipping, AdamW), and the
 * FLOP/s they reach against the multiply peak measured in the same run.
 */
public final class TrainingBench {

    private TrainingBench() {}

    /**
     * @param tokensPerSecond tokens of one step over its median time
     * @param gflops          model FLOP/s ({@link GptConfig#trainingFlopsPerToken} x tokens/s), in GFLOP/s
     * @param peakGflops      a 2048^3 sgemm through the same BLAS and threads, in GFLOP/s
     * @param mfu             gflops / peakGflops
     */
    public record Result(double stepMs, double tokensPerSecond, double gflops, double peakGflops, double mfu) {}

    public static Result run(GptConfig config, int batch, int warmup, int steps, long seed) {
        if (batch < 1 || warmup < 0 || steps < 1) {
            throw new IllegalArgumentException("need batch >= 1, warm-up >= 0 and steps >= 1");
        }
        Gpt model = Gpt.initialize(config, seed);
        AdamW adam = new AdamW(OptimizerConfig.defaults());
        SplittableRandom random = new SplittableRandom(seed);
        int T = config.contextLength();
        long[] nanos = new long[steps];
        long warmUp = System.nanoTime();
        // Warm-up: the steps asked for, and (unless none is) at least 5 s, as the JIT compiles the
        // fused loops in the first seconds (on two threads, the compiler threads take cores from the step).
        int warm = 0;
        while (warm < warmup || (warmup > 0 && System.nanoTime() - warmUp < 5_000_000_000L)) {
            warm++;
            step(model, adam, random, batch, T, config.vocabSize());
        }
        for (int s = 0; s < steps; s++) {
            long start = System.nanoTime();
            step(model, adam, random, batch, T, config.vocabSize());
            nanos[s] = System.nanoTime() - start;
        }
        Arrays.sort(nanos);
        double median = steps % 2 == 1 ? nanos[steps / 2] : (nanos[steps / 2 - 1] + nanos[steps / 2]) / 2.0;
        double tokensPerSecond = (double) batch * T / (median / 1e9);
        double gflops = config.trainingFlopsPerToken() * tokensPerSecond / 1e9;
        double peak = MatmulPeak.measure(2048, 3) / 1e9;
        return new Result(median / 1e6, tokensPerSecond, gflops, peak, gflops / peak);
    }

    /** One full step on random tokens (speed does not depend on them). */
    private static void step(Gpt model, AdamW adam, SplittableRandom random, int batch, int T, int vocab) {
        int[][] inputs = new int[batch][T];
        int[][] targets = new int[batch][T];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < T; t++) {
                inputs[b][t] = random.nextInt(vocab);
                targets[b][t] = random.nextInt(vocab);
            }
        }
        adam.apply(model.parameters(), model.gradients(inputs, targets, null).byParameter());
    }
}
