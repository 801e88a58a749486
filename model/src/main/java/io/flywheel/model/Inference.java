package io.flywheel.model;

import java.util.Arrays;
import java.util.Map;

/**
 * Scores and sessions on one model, for evaluation, the gate and generation: a thin front over a
 * {@link Decoder} (the engine's forward with a key/value cache), so that what is evaluated is what
 * serving runs, and dropout never applies.
 */
public final class Inference implements AutoCloseable {

    private final Decoder decoder;
    private final KvCacheDtype kvDtype;
    private Decoder.Cache scoring;     // one slot for whole-sequence scores, reused

    /** Over a training model's live weights. */
    public Inference(Gpt model) {
        this(Decoder.of(model));
    }

    /** Over its own copy of {@code weights} (a frozen model); the arrays may be freed afterwards. */
    public Inference(GptConfig config, Map<String, org.nd4j.linalg.api.ndarray.INDArray> weights) {
        this(Decoder.copyOf(config, weights));
    }

    /** Over {@code decoder}, which it then owns: {@link #close} closes it. */
    public Inference(Decoder decoder) {
        this(decoder, KvCacheDtype.FLOAT32);
    }

    /** Over {@code decoder}, which it then owns, with caches that hold {@code kvDtype} (as serving's batcher holds them). */
    public Inference(Decoder decoder, KvCacheDtype kvDtype) {
        this.decoder = decoder;
        this.kvDtype = kvDtype;
    }

    public GptConfig config() {
        return decoder.config();
    }

    public Decoder decoder() {
        return decoder;
    }

    /** A new, empty sequence with a cache of its own; close it when done. */
    public Session session() {
        return new Session();
    }

    /** Logits at every position of {@code tokens}, [T][vocab], from an empty cache. */
    public float[][] logits(int[] tokens) {
        float[] all = score(tokens).logits()[0];
        int v = config().vocabSize();
        float[][] rows = new float[tokens.length][];
        for (int t = 0; t < tokens.length; t++) {
            rows[t] = Arrays.copyOfRange(all, t * v, (t + 1) * v);
        }
        return rows;
    }

    private synchronized Decoder.Output score(int[] tokens) {
        if (scoring == null) {
            scoring = decoder.cache(1, kvDtype);
        }
        scoring.clear(0);
        return decoder.forward(scoring, new int[] {0}, new int[][] {tokens}, true);
    }

    /**
     * The summed next-token negative log-likelihood (nats) of a window: position {@code i} predicts
     * {@code window[i + 1]}, for every {@code i < window.length - 1}.
     */
    public double negativeLogLikelihood(int[] window) {
        if (window.length < 2) {
            throw new IllegalArgumentException("a window needs at least two tokens");
        }
        float[] logits = score(Arrays.copyOf(window, window.length - 1)).logits()[0];
        int v = config().vocabSize();
        double total = 0;
        for (int i = 0; i < window.length - 1; i++) {
            total += crossEntropy(logits, i * v, v, window[i + 1]);
        }
        return total;
    }

    /**
     * The reward head's score of a whole sequence (a prompt and its answer): the final hidden state
     * at its last token, projected to one number. Higher is preferred.
     */
    public double reward(int[] tokens) {
        return score(tokens).rewards()[0];
    }

    /** The summed log-probability (nats) of a sequence's answer tokens given everything before them. */
    public double answerLogProbability(Gpt.Sequence sequence) {
        int[] tokens = sequence.tokens();
        float[] logits = score(Arrays.copyOf(tokens, tokens.length - 1)).logits()[0];
        int v = config().vocabSize();
        double total = 0;
        for (int i = sequence.promptLength() - 1; i < tokens.length - 1; i++) {
            total -= crossEntropy(logits, i * v, v, tokens[i + 1]);
        }
        return total;
    }

    private static double crossEntropy(float[] logits, int from, int v, int target) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = from; i < from + v; i++) {
            max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = from; i < from + v; i++) {
            sum += Math.exp(logits[i] - max);
        }
        return max + Math.log(sum) - logits[from + target];
    }

    /** Frees the scratch and caches, and the weights when they are this inference's own copy. */
    @Override
    public synchronized void close() {
        if (scoring != null) {
            scoring.close();
            scoring = null;
        }
        decoder.close();
    }

    /** One sequence being generated: its own one-slot cache. Not thread-safe. */
    public final class Session implements AutoCloseable {
        private final Decoder.Cache cache = decoder.cache(1, kvDtype);

        private Session() {}

        /** Tokens in the cache so far. */
        public int length() {
            return cache.length(0);
        }

        /** Positions left before the context is full. */
        public int remaining() {
            return cache.remaining(0);
        }

        /** Appends tokens (a prompt, or one sampled token) and returns the logits that follow the last [vocab]. */
        public float[] append(int... tokens) {
            return decoder.forward(cache, new int[] {0}, new int[][] {tokens}, false).logits()[0];
        }

        @Override
        public void close() {
            cache.close();
        }
    }
}
