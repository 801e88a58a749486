package io.flywheel.model;

import java.util.Arrays;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.LayerNorm;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.strict.GELU;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The same network as {@link Gpt}'s training graph, run eagerly with ND4J for serving: one
 * sequence at a time, with a key/value cache so that each new token costs one position instead of
 * a re-run of the whole context. It reads the model's weight arrays directly (no copy) and uses the
 * graph's own ops (layer norm, softmax, GELU), so its logits match the graph's.
 */
public final class Inference {

    private final GptConfig config;
    private final Map<String, INDArray> w;
    private final INDArray outputProjection;   // [C, V]

    public Inference(Gpt model) {
        this(model.config(), model.parameters());
    }

    /** Inference over weights held outside a {@link Gpt} (a frozen copy: no training graph needed). */
    public Inference(GptConfig config, Map<String, INDArray> weights) {
        this.config = config;
        Map<String, INDArray> all = new java.util.HashMap<>(weights);
        Gpt.shapes(config).forEach((name, shape) -> {
            if (name.startsWith(Gpt.REWARD_PREFIX)) {
                all.computeIfAbsent(name, n -> Nd4j.zeros(DataType.FLOAT, shape));   // a checkpoint from before the reward head
            }
        });
        this.w = Map.copyOf(all);
        for (String name : Gpt.shapes(config).keySet()) {
            if (!w.containsKey(name)) {
                throw new IllegalArgumentException("missing parameter " + name);
            }
        }
        this.outputProjection = config.tiedEmbeddings() ? w.get("wte").transpose() : w.get("head");
    }

    public GptConfig config() {
        return config;
    }

    /** A new, empty sequence. Not thread-safe: one session per request. */
    public Session session() {
        return new Session();
    }

    /** Logits at every position of {@code tokens} [T, vocab], without a cache (for evaluation and tests). */
    public INDArray logits(int[] tokens) {
        return session().forward(tokens, true);
    }

    /**
     * The summed next-token negative log-likelihood (nats) of a window: position {@code i} predicts
     * {@code window[i + 1]}, for every {@code i < window.length - 1}. Evaluation runs here, not in
     * the training graph, so dropout never applies and the number is what serving's model scores.
     */
    public double negativeLogLikelihood(int[] window) {
        if (window.length < 2) {
            throw new IllegalArgumentException("a window needs at least two tokens");
        }
        float[][] logits = logits(Arrays.copyOf(window, window.length - 1)).toFloatMatrix();
        double total = 0;
        for (int i = 0; i < logits.length; i++) {
            total += crossEntropy(logits[i], window[i + 1]);
        }
        return total;
    }

    /**
     * The reward head's score of a whole sequence (a prompt and its answer): the final hidden state
     * at its last token, projected to one number. Higher is preferred.
     */
    public double reward(int[] tokens) {
        INDArray last = session().residual(tokens).get(NDArrayIndex.interval(tokens.length - 1, tokens.length), NDArrayIndex.all());
        return Nd4j.gemm(layerNorm(last, "lnf"), w.get("reward.w"), false, false).getDouble(0) + w.get("reward.b").getDouble(0);
    }

    /** The summed log-probability (nats) of a sequence's answer tokens given everything before them. */
    public double answerLogProbability(Gpt.Sequence sequence) {
        int[] tokens = sequence.tokens();
        float[][] logits = logits(Arrays.copyOf(tokens, tokens.length - 1)).toFloatMatrix();
        double total = 0;
        for (int i = sequence.promptLength() - 1; i < logits.length; i++) {
            total -= crossEntropy(logits[i], tokens[i + 1]);
        }
        return total;
    }

    private static double crossEntropy(float[] row, int target) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        return max + Math.log(sum) - row[target];
    }

    /** One sequence being generated: its cache and position. */
    public final class Session {
        private final INDArray[] keys = new INDArray[config.layers()];     // [heads, context, headSize]
        private final INDArray[] values = new INDArray[config.layers()];
        private int length;

        private Session() {
            for (int l = 0; l < config.layers(); l++) {
                keys[l] = Nd4j.zeros(DataType.FLOAT, config.heads(), config.contextLength(), config.headSize());
                values[l] = Nd4j.zeros(DataType.FLOAT, config.heads(), config.contextLength(), config.headSize());
            }
        }

        /** Tokens in the cache so far. */
        public int length() {
            return length;
        }

        /** Positions left before the context is full. */
        public int remaining() {
            return config.contextLength() - length;
        }

        /** Appends tokens (a prompt, or one sampled token) and returns the logits that follow the last [vocab]. */
        public float[] append(int... tokens) {
            INDArray logits = forward(tokens, false);
            return logits.toFloatVector();
        }

        /**
         * Runs {@code tokens} at positions {@code length ..}, filling the cache.
         *
         * @param all logits for every new position [n, vocab], or only the last [1, vocab]
         */
        private INDArray forward(int[] tokens, boolean all) {
            int n = tokens.length;
            INDArray x = residual(tokens);
            INDArray last = all ? x : x.get(NDArrayIndex.interval(n - 1, n), NDArrayIndex.all());
            return config.tiedEmbeddings()
                    ? Nd4j.gemm(layerNorm(last, "lnf"), w.get("wte"), false, true)
                    : Nd4j.gemm(layerNorm(last, "lnf"), w.get("head"), false, false);
        }

        /** The residual stream after the last block at every new position [n, C], filling the cache. */
        private INDArray residual(int[] tokens) {
            int n = tokens.length;
            if (n == 0) {
                throw new IllegalArgumentException("no tokens");
            }
            if (n > remaining()) {
                throw new IllegalArgumentException("context of " + config.contextLength() + " tokens is full: "
                        + length + " used, " + n + " more asked");
            }
            for (int id : tokens) {
                if (id < 0 || id >= config.vocabSize()) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + config.vocabSize());
                }
            }
            int start = length;
            int end = start + n;
            int C = config.width();
            int H = config.heads();
            int hd = config.headSize();

            INDArray x = Nd4j.pullRows(w.get("wte"), 1, tokens)
                    .addi(w.get("wpe").get(NDArrayIndex.interval(start, end), NDArrayIndex.all()));
            // Row i (position start + i) may see positions <= start + i. A single new token sees
            // the whole cache, so decoding needs no mask.
            INDArray future = null;
            if (n > 1) {
                INDArray mask = Nd4j.zeros(DataType.FLOAT, n, end);
                for (int i = 0; i < n - 1; i++) {
                    for (int j = start + i + 1; j < end; j++) {
                        mask.putScalar(i, j, -1e9f);
                    }
                }
                future = mask.reshape(1, n, end).broadcast(H, n, end);   // the same for every head
            }
            for (int l = 0; l < config.layers(); l++) {
                String b = "h" + l + ".";
                INDArray h = layerNorm(x, b + "ln1");
                INDArray q = linear(h, b + "attn.wq", b + "attn.bq");
                INDArray k = linear(h, b + "attn.wk", b + "attn.bk");
                INDArray v = linear(h, b + "attn.wv", b + "attn.bv");
                // All heads at once: [n, C] -> [H, n, hd], one batched matmul for the scores and one
                // for the mix (a loop over heads cost ~8 small ops per head per token).
                keys[l].get(NDArrayIndex.all(), NDArrayIndex.interval(start, end), NDArrayIndex.all()).assign(byHead(k, n, H, hd));
                values[l].get(NDArrayIndex.all(), NDArrayIndex.interval(start, end), NDArrayIndex.all()).assign(byHead(v, n, H, hd));
                INDArray seenKeys = keys[l].get(NDArrayIndex.all(), NDArrayIndex.interval(0, end), NDArrayIndex.all());
                INDArray seenValues = values[l].get(NDArrayIndex.all(), NDArrayIndex.interval(0, end), NDArrayIndex.all());
                INDArray scores = Nd4j.matmul(byHead(q, n, H, hd), seenKeys, false, true, false).muli(1.0 / Math.sqrt(hd));
                if (future != null) {
                    scores.addi(future);
                }
                Nd4j.exec(new SoftMax(scores, scores, 2));
                INDArray heads = Nd4j.matmul(scores, seenValues).permute(1, 0, 2).dup('c').reshape(n, C);
                x.addi(linear(heads, b + "attn.wo", b + "attn.bo"));
                INDArray up = linear(layerNorm(x, b + "ln2"), b + "mlp.wfc", b + "mlp.bfc");
                Nd4j.exec(new GELU(up, up));
                x.addi(linear(up, b + "mlp.wproj", b + "mlp.bproj"));
            }
            length = end;
            return x;
        }
    }

    /** [n, H * hd] to [H, n, hd] (a contiguous copy). */
    private static INDArray byHead(INDArray x, int n, int H, int hd) {
        return x.reshape(n, H, hd).permute(1, 0, 2).dup('c');
    }

    private INDArray layerNorm(INDArray x, String name) {
        INDArray out = Nd4j.create(DataType.FLOAT, x.shape());
        Nd4j.exec(new LayerNorm(x, w.get(name + ".gain"), w.get(name + ".bias"), out, false, 1));
        return out;
    }

    private INDArray linear(INDArray x, String weight, String bias) {
        return Nd4j.gemm(x, w.get(weight), false, false).addiRowVector(w.get(bias));
    }
}
