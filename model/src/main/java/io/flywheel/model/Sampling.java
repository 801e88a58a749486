package io.flywheel.model;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * How the next token is chosen from the logits, with OpenAI's parameters.
 *
 * @param temperature 0 = greedy (argmax); otherwise logits are divided by it (OpenAI allows 0 to 2)
 * @param topP        nucleus sampling: keep the most likely tokens whose probabilities add up to
 *                    {@code topP} (1 = all)
 * @param topK        keep only the {@code topK} most likely tokens (0 = no limit)
 * @param seed        makes sampling repeatable; {@code null} = a fresh random seed
 * @param maxTokens   most tokens to generate
 * @param stop        strings that end the completion (not included in it); at most 4, as in OpenAI's API
 */
public record Sampling(double temperature, double topP, int topK, Long seed, int maxTokens, List<String> stop) {

    public Sampling {
        if (!(temperature >= 0 && temperature <= 2)) {
            throw new IllegalArgumentException("temperature must be between 0 and 2");
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1]");
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("max_tokens must be >= 1");
        }
        stop = List.copyOf(stop);
        if (stop.size() > 4 || stop.stream().anyMatch(String::isEmpty)) {
            throw new IllegalArgumentException("stop takes at most 4 non-empty strings");
        }
    }

    public static Sampling greedy(int maxTokens) {
        return new Sampling(0, 1, 0, null, maxTokens, List.of());
    }

    /** A sampler for one sequence: it owns the random state. */
    public Sampler sampler() {
        return new Sampler(this, seed == null ? new SplittableRandom() : new SplittableRandom(seed));
    }

    /** Draws token ids from logits; not thread-safe. */
    public static final class Sampler {
        private final Sampling p;
        private final SplittableRandom random;

        private Sampler(Sampling p, SplittableRandom random) {
            this.p = p;
            this.random = random;
        }

        public int next(float[] logits) {
            if (p.temperature == 0) {
                return argmax(logits);
            }
            // Only top-k and top-p need the tokens in order; plain sampling takes them as they come.
            int[] candidates = p.topK > 0 || p.topP < 1 ? byLogitDescending(logits) : null;
            int keep = candidates == null ? logits.length : p.topK > 0 ? Math.min(p.topK, logits.length) : logits.length;
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < keep; i++) {
                max = Math.max(max, logits[candidates == null ? i : candidates[i]]);
            }
            double[] weights = new double[keep];
            double total = 0;
            for (int i = 0; i < keep; i++) {
                weights[i] = Math.exp((logits[candidates == null ? i : candidates[i]] - max) / p.temperature);
                total += weights[i];
            }
            if (p.topP < 1) {
                double cumulative = 0;
                for (int i = 0; i < keep; i++) {
                    cumulative += weights[i];
                    if (cumulative >= p.topP * total) {
                        keep = i + 1;
                        total = cumulative;
                        break;
                    }
                }
            }
            double u = random.nextDouble() * total;
            for (int i = 0; i < keep; i++) {
                u -= weights[i];
                if (u <= 0) {
                    return candidates == null ? i : candidates[i];
                }
            }
            return candidates == null ? keep - 1 : candidates[keep - 1];
        }

        /** Token ids from the highest logit down, sorted as primitive longs (no boxing of a 100k vocabulary). */
        private static int[] byLogitDescending(float[] logits) {
            long[] keys = new long[logits.length];
            for (int i = 0; i < logits.length; i++) {
                int bits = Float.floatToIntBits(-logits[i]);
                bits ^= (bits >> 31) & 0x7fffffff;          // float order as signed int order
                keys[i] = ((long) bits << 32) | i;
            }
            java.util.Arrays.sort(keys);
            int[] ids = new int[logits.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = (int) keys[i];
            }
            return ids;
        }

        private static int argmax(float[] logits) {
            int best = 0;
            for (int i = 1; i < logits.length; i++) {
                if (logits[i] > logits[best]) {
                    best = i;
                }
            }
            return best;
        }
    }
}
