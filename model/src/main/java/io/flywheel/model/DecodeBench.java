package io.flywheel.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * How fast this machine decodes a model of a given shape, as llama.cpp's {@code llama-bench}
 * measures token generation: random weights (speed does not depend on them), {@code clients}
 * completions submitted at once to the {@link Batcher} serving uses, each a random prompt then
 * {@code tokens} greedy tokens; warm-up rounds for at least 5 s, then the median of the measured rounds. Beside it
 * the bound that memory bandwidth sets: a step reads every weight once (int8 ones a byte each).
 */
public final class DecodeBench {

    /** How long the warm-up rounds run, at least, unless there are none. */
    static final long WARMUP_NANOS = 5_000_000_000L;

    private DecodeBench() {}

    /**
     * @param tokensPerSecond  generated tokens of all clients over the round's wall time
     * @param stepsPerSecond   decode steps per second (one token for every running client)
     * @param ttftP50Ms        submit to first token, median over the round's clients (includes the prompt's prefill)
     * @param ttftP99Ms        the same, 99th percentile
     * @param weightBytes      bytes of weights one step reads
     * @param bandwidth        measured copy bandwidth, bytes read per second
     * @param boundStepsPerSecond bandwidth / weightBytes
     */
    public record Result(double tokensPerSecond, double stepsPerSecond, double ttftP50Ms, double ttftP99Ms,
                         long weightBytes, double bandwidth, double boundStepsPerSecond) {
        /** Steps per second against the bandwidth bound. */
        public double ofBound() {
            return stepsPerSecond / boundStepsPerSecond;
        }
    }

    /**
     * What to run: the engine as serving would hold it ({@code quantization}, {@code kvDtype},
     * {@code threads}), {@code clients} completions of a {@code prompt}-token prompt and
     * {@code tokens} generated tokens each, {@code warmup} rounds and more until 5 s have passed
     * (0: none), then {@code rounds} measured rounds.
     */
    public record Setup(GptConfig config, Quantization quantization, KvCacheDtype kvDtype, int threads, int clients, int prompt,
                        int tokens, int warmup, int rounds) {}

    public static Result run(Setup setup, long seed) throws Exception {
        GptConfig config = setup.config();
        int clients = setup.clients();
        int prompt = setup.prompt();
        int tokens = setup.tokens();
        int rounds = setup.rounds();
        if (clients < 1 || prompt < 1 || tokens < 1 || rounds < 1 || setup.warmup() < 0) {
            throw new IllegalArgumentException("need clients, prompt, tokens and rounds of at least 1, and warm-up rounds of at least 0");
        }
        if (prompt + tokens > config.contextLength() + 1) {
            throw new IllegalArgumentException("a prompt of " + prompt + " and " + tokens + " tokens do not fit the context of "
                    + config.contextLength());
        }
        Gpt model = Gpt.initialize(config, seed);
        SplittableRandom random = new SplittableRandom(seed);
        double[] perSecond = new double[rounds];
        double[] steps = new double[rounds];
        double[] p50 = new double[rounds];
        double[] p99 = new double[rounds];
        long weightBytes;
        // Serving's decoder: its own copy of the weights (float32 or int8 panels), and a cache as serving's.
        try (Decoder decoder = Decoder.copyOf(config, model.parameters(), setup.quantization());
             Batcher batcher = new Batcher(decoder, clients, setup.kvDtype(), "bench-decode", null)) {
            decoder.useThreads(setup.threads());
            weightBytes = decoder.weightBytes();
            // Warm-up rounds, and more until WARMUP_NANOS have passed: the JIT compiles the Vector
            // API loops late, and until it has they run many times slower (L4 d128, one client:
            // 815 tokens/s after one warm-up round, 3,068 after nine).
            long warmUntil = System.nanoTime() + WARMUP_NANOS;
            for (int w = 0; w < setup.warmup() || (setup.warmup() > 0 && System.nanoTime() < warmUntil); w++) {
                round(batcher, config, random, clients, prompt, tokens);
            }
            for (int r = 0; r < rounds; r++) {
                long start = System.nanoTime();
                List<Greedy> runs = round(batcher, config, random, clients, prompt, tokens);
                long elapsed = System.nanoTime() - start;
                perSecond[r] = (double) clients * tokens / (elapsed / 1e9);
                steps[r] = tokens / (elapsed / 1e9);     // every client advances once per step
                double[] ttft = runs.stream().mapToDouble(g -> g.firstToken / 1e6).sorted().toArray();
                p50[r] = ttft[(ttft.length - 1) / 2];
                p99[r] = ttft[(int) Math.ceil(0.99 * ttft.length) - 1];
            }
        }
        double bandwidth = MemoryBandwidth.measure();
        return new Result(median(perSecond), median(steps), median(p50), median(p99), weightBytes, bandwidth, bandwidth / weightBytes);
    }

    /** {@code clients} completions of random prompts submitted at once, and waited for. */
    private static List<Greedy> round(Batcher batcher, GptConfig config, SplittableRandom random, int clients, int prompt, int tokens)
            throws Exception {
        List<Greedy> runs = new ArrayList<>();
        List<Batcher.Job> jobs = new ArrayList<>();
        long start = System.nanoTime();
        for (int c = 0; c < clients; c++) {
            int[] ids = random.ints(prompt, 0, config.vocabSize()).toArray();
            Greedy g = new Greedy(tokens, start);
            runs.add(g);
            jobs.add(batcher.submit(ids, g));
        }
        for (Batcher.Job job : jobs) {
            job.result().get(10, TimeUnit.MINUTES);
        }
        return runs;
    }

    private static double median(double[] x) {
        double[] s = x.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** Argmax for a fixed number of tokens, noting when the first came. */
    private static final class Greedy implements Batcher.Sequence {
        private final int[] out;
        private final long submitted;
        private int count;
        long firstToken;

        Greedy(int tokens, long submitted) {
            this.out = new int[tokens];
            this.submitted = submitted;
        }

        @Override
        public Generator.Completion next(float[] logits, int remaining) {
            int best = 0;
            for (int i = 1; i < logits.length; i++) {
                if (logits[i] > logits[best]) {
                    best = i;
                }
            }
            if (count == 0) {
                firstToken = System.nanoTime() - submitted;
            }
            out[count++] = best;
            return count == out.length || remaining == 0 ? new Generator.Completion(out, "", Generator.Finish.LENGTH) : null;
        }

        @Override
        public int last() {
            return out[count - 1];
        }
    }
}
