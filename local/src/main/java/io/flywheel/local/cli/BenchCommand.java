package io.flywheel.local.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.cli.UsageError;
import io.flywheel.core.serde.Json;
import io.flywheel.model.Blas;
import io.flywheel.model.DecodeBench;
import io.flywheel.model.GptConfig;
import io.flywheel.model.KvCacheDtype;
import io.flywheel.model.Quantization;
import io.flywheel.model.TrainingBench;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code flywheel bench}: how fast this machine runs the engine, to compare machines and settings
 * (as llama.cpp's {@code llama-bench}). One JSON line on stdout per run.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure the engine on this machine: one JSON line on stdout.",
        subcommands = {BenchCommand.Train.class, BenchCommand.Decode.class})
public final class BenchCommand implements Runnable {

    @Override
    public void run() {
        throw new UsageError("name what to measure: flywheel bench train | decode");
    }

    /** The model shape and threads both measurements take. */
    static final class Shape {
        @Option(names = "--layers", defaultValue = "4", description = "Transformer blocks (default ${DEFAULT-VALUE}).")
        int layers;
        @Option(names = "--heads", defaultValue = "4", description = "Attention heads (default ${DEFAULT-VALUE}).")
        int heads;
        @Option(names = "--width", defaultValue = "128", description = "Model width, a multiple of --heads (default ${DEFAULT-VALUE}).")
        int width;
        @Option(names = "--vocab", defaultValue = "1024", description = "Vocabulary size (default ${DEFAULT-VALUE}).")
        int vocab;
        @Option(names = "--threads", description = "Threads: OpenBLAS's for train; for decode, those a step's weight multiplies are split among"
                + " (default: the cores this process may use).")
        Integer threads;

        /** The configuration with this context, or a usage error that names what is wrong. */
        GptConfig config(int context) {
            try {
                if (threads() < 1) {
                    throw new IllegalArgumentException("--threads must be at least 1");
                }
                return new GptConfig(vocab, context, layers, heads, width, 4, 0.0, true);
            } catch (IllegalArgumentException e) {
                throw new UsageError(e.getMessage(), e);
            }
        }

        int threads() {
            return threads != null ? threads : Runtime.getRuntime().availableProcessors();
        }

        /** The shape, and the threads OpenBLAS really ran with (read back, not the option). */
        ObjectNode json(GptConfig config) {
            return Json.object().put("layers", layers).put("heads", heads).put("width", width).put("vocab", vocab)
                    .put("context", config.contextLength()).put("threads", Blas.threads())
                    .put("parameters", config.parameterCount());
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = {"Training steps (forward, backward, clipping, AdamW) on random weights and tokens:",
                    "warm-up, then the median step; tokens/s, model GFLOP/s, and MFU against a 2048^3",
                    "sgemm through the same BLAS and threads, measured in the same run."})
    static final class Train implements Callable<Integer> {
        @Mixin
        Shape shape;
        @Option(names = "--context", defaultValue = "128", description = "Tokens per row (default ${DEFAULT-VALUE}).")
        int context;
        @Option(names = "--batch", defaultValue = "8", description = "Rows per step (default ${DEFAULT-VALUE}).")
        int batch;
        @Option(names = "--steps", defaultValue = "10", description = "Measured steps (default ${DEFAULT-VALUE}).")
        int steps;
        @Option(names = "--warmup", defaultValue = "3", description = "Steps before measuring, and more until 5 s have passed, while the JIT compiles (default ${DEFAULT-VALUE}; 0: none).")
        int warmup;

        @Override
        public Integer call() {
            if (batch < 1 || steps < 1 || warmup < 0) {
                throw new UsageError("--batch and --steps must be at least 1, --warmup at least 0");
            }
            GptConfig config = shape.config(context);
            Blas.threads(shape.threads());
            TrainingBench.Result r = TrainingBench.run(config, batch, warmup, steps, 1);
            print(shape.json(config).put("batch", batch)
                    .put("tokens_per_s", r.tokensPerSecond()).put("step_ms", r.stepMs()).put("gflops", r.gflops())
                    .put("mfu", r.mfu()).put("peak_gflops", r.peakGflops()));
            return 0;
        }
    }

    @Command(name = "decode", mixinStandardHelpOptions = true,
            description = {"Token generation on random weights through serving's continuous batching: --clients",
                    "completions at once, each a random --prompt then --tokens greedy tokens; warm-up",
                    "rounds for at least 5 s, then the median round. Beside it the bound memory bandwidth sets (every weight",
                    "read once per step), from a copy measured in the same run."})
    static final class Decode implements Callable<Integer> {
        @Mixin
        Shape shape;
        @Option(names = "--context", defaultValue = "256", description = "Context length (default ${DEFAULT-VALUE}).")
        int context;
        @Option(names = "--clients", defaultValue = "1", description = "Completions decoded at once (default ${DEFAULT-VALUE}).")
        int clients;
        @Option(names = "--prompt", defaultValue = "16", description = "Prompt tokens per completion (default ${DEFAULT-VALUE}).")
        int prompt;
        @Option(names = "--tokens", defaultValue = "128", description = "Generated tokens per completion (default ${DEFAULT-VALUE}).")
        int tokens;
        @Option(names = "--warmup", defaultValue = "1",
                description = "Rounds before measuring, and more until 5 s have passed, while the JIT compiles (default ${DEFAULT-VALUE}; 0: none).")
        int warmup;
        @Option(names = "--rounds", defaultValue = "3", description = "Measured rounds (default ${DEFAULT-VALUE}).")
        int rounds;
        @Option(names = "--quantize", defaultValue = "none", description = "Weights as serving.quantize holds them: none or int8 (default ${DEFAULT-VALUE}).")
        String quantize;
        @Option(names = "--kv-cache-dtype", defaultValue = "float32",
                description = "The key/value cache as serving.kv-cache-dtype holds it: float32 or bfloat16 (default ${DEFAULT-VALUE}).")
        String kvCacheDtype;

        @Override
        public Integer call() throws Exception {
            GptConfig config = shape.config(context);
            if (clients < 1 || prompt < 1 || tokens < 1 || rounds < 1 || warmup < 0) {
                throw new UsageError("--clients, --prompt, --tokens and --rounds must be at least 1, --warmup at least 0");
            }
            if (prompt + tokens > context + 1) {
                throw new UsageError("--prompt " + prompt + " and --tokens " + tokens + " do not fit --context " + context);
            }
            Quantization quantization;
            try {
                quantization = Quantization.of(quantize);
            } catch (IllegalArgumentException e) {
                throw new UsageError("--quantize: " + e.getMessage(), e);
            }
            KvCacheDtype kvDtype;
            try {
                kvDtype = KvCacheDtype.of(kvCacheDtype);
            } catch (IllegalArgumentException e) {
                throw new UsageError("--kv-cache-dtype: " + e.getMessage(), e);
            }
            // As serving runs it: OpenBLAS (attention's small multiplies) on one thread, the weight
            // multiplies split among --threads.
            Blas.threads(1);
            DecodeBench.Result r = DecodeBench.run(new DecodeBench.Setup(config, quantization, kvDtype, shape.threads(), clients, prompt,
                    tokens, warmup, rounds), 1);
            print(shape.json(config).put("threads", shape.threads()).put("clients", clients).put("prompt", prompt).put("tokens", tokens).put("quantize", quantization.toString())
                    .put("kv_cache_dtype", kvDtype.toString())
                    .put("tokens_per_s", r.tokensPerSecond()).put("steps_per_s", r.stepsPerSecond())
                    .put("bound_tokens_per_s", r.boundStepsPerSecond()).put("of_bound", r.ofBound())
                    .put("bandwidth_gb_s", r.bandwidth() / 1e9).put("weight_mb", r.weightBytes() / 1e6)
                    .put("p50_ttft_ms", r.ttftP50Ms()).put("p99_ttft_ms", r.ttftP99Ms()));
            return 0;
        }
    }

    private static void print(ObjectNode line) {
        System.out.println(new String(Json.write(line), StandardCharsets.UTF_8));
    }
}
