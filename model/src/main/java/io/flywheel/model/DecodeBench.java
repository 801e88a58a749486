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
 * {@code tokens} greedy tokens; a warm-up round, then the median of the measured rounds. Beside it
 * the bound that memory bandwidth sets: a step reads every weight once (int8 ones a byte each).
 */
public final class DecodeBench {

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

    public static Result run(GptConfig config, Quantization quantization, KvCacheDtype kvDtype, int threads, int clients, int prompt,
                             int tokens, int rounds, long seed) throws Exception {
        if (clients < 1 || prompt < 1 || tokens < 1 || rounds < 1) {
            throw new IllegalArgumentException("need clients, prompt, tokens and rounds of at least 1");
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
        // Serving's decoder: its own copy of the weights, float32 tiles or int8, and a cache as serving's.
        try (Decoder decoder = Decoder.copyOf(config, model.parameters(), quantization);
             Batcher batcher = new Batcher(decoder, clients, kvDtype, "bench-decode", null)) {
            decoder.useThreads(threads);
            weightBytes = decoder.weightBytes();
            for (int r = -1; r < rounds; r++) {       // round -1 warms up
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
                long elapsed = System.nanoTime() - start;
                if (r < 0) {
                    continue;
                }
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
