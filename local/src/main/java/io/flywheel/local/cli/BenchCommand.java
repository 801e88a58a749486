package io.flywheel.local.cli;

import io.flywheel.core.cli.UsageError;
import io.flywheel.core.serde.Json;
import io.flywheel.model.Blas;
import io.flywheel.model.GptConfig;
import io.flywheel.model.TrainingBench;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code flywheel bench}: how fast this machine runs the engine, to compare machines and settings
 * (as llama.cpp's {@code llama-bench}). One JSON line on stdout per run.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure the engine on this machine: one JSON line on stdout.",
        subcommands = {BenchCommand.Train.class})
public final class BenchCommand implements Runnable {

    @Override
    public void run() {
        throw new UsageError("name what to measure: flywheel bench train");
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = {"Training steps (forward, backward, clipping, AdamW) on random weights and tokens:",
                    "warm-up, then the median step; tokens/s, model GFLOP/s, and MFU against a 2048^3",
                    "sgemm through the same BLAS and threads, measured in the same run."})
    static final class Train implements Callable<Integer> {
        @Option(names = "--layers", defaultValue = "4", description = "Transformer blocks (default ${DEFAULT-VALUE}).")
        int layers;
        @Option(names = "--heads", defaultValue = "4", description = "Attention heads (default ${DEFAULT-VALUE}).")
        int heads;
        @Option(names = "--width", defaultValue = "128", description = "Model width, a multiple of --heads (default ${DEFAULT-VALUE}).")
        int width;
        @Option(names = "--vocab", defaultValue = "1024", description = "Vocabulary size (default ${DEFAULT-VALUE}).")
        int vocab;
        @Option(names = "--context", defaultValue = "128", description = "Tokens per row (default ${DEFAULT-VALUE}).")
        int context;
        @Option(names = "--batch", defaultValue = "8", description = "Rows per step (default ${DEFAULT-VALUE}).")
        int batch;
        @Option(names = "--threads", description = "BLAS threads (default: the cores this process may use).")
        Integer threads;
        @Option(names = "--steps", defaultValue = "10", description = "Measured steps (default ${DEFAULT-VALUE}).")
        int steps;
        @Option(names = "--warmup", defaultValue = "3", description = "Steps before measuring (default ${DEFAULT-VALUE}).")
        int warmup;

        @Override
        public Integer call() {
            int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            GptConfig config;
            try {
                if (n < 1 || batch < 1 || steps < 1 || warmup < 0) {
                    throw new IllegalArgumentException("--threads, --batch and --steps must be at least 1, --warmup at least 0");
                }
                config = new GptConfig(vocab, context, layers, heads, width, 4, 0.0, true);
            } catch (IllegalArgumentException e) {
                throw new UsageError(e.getMessage(), e);
            }
            Blas.threads(n);
            TrainingBench.Result r = TrainingBench.run(config, batch, warmup, steps, 1);
            System.out.println(new String(Json.write(Json.object()
                    .put("layers", layers).put("heads", heads).put("width", width).put("vocab", vocab)
                    .put("context", context).put("batch", batch).put("threads", n)
                    .put("parameters", config.parameterCount())
                    .put("tokens_per_s", r.tokensPerSecond()).put("step_ms", r.stepMs()).put("gflops", r.gflops())
                    .put("mfu", r.mfu()).put("peak_gflops", r.peakGflops())), StandardCharsets.UTF_8));
            return 0;
        }
    }
}
