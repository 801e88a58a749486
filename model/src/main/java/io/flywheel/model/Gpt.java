package io.flywheel.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A GPT-2-style decoder, read top to bottom like nanoGPT's {@code model.py}: token and learned
 * position embeddings, {@code layers} pre-layer-norm blocks of causal multi-head self-attention and
 * a GELU MLP, a final layer norm, and an output projection tied to the token embedding (or its own).
 * A reward head (one linear unit on the final hidden state at a sequence's last token) shares the
 * body: the same network is the policy and the reward model.
 *
 * <p>One objective with three terms, so that a step can mix them:
 * <ul>
 *   <li>next-token cross-entropy over the counted targets (pre-training windows, or the answer
 *       tokens of supervised examples);</li>
 *   <li>Bradley-Terry on preference pairs: {@code -log σ(r(chosen) - r(rejected))};</li>
 *   <li>DPO on the same pairs: {@code -log σ(β · ((log π(c) - log π_ref(c)) - (log π(r) - log π_ref(r))))},
 *       the reference's log-ratio computed by the frozen reference model.</li>
 * </ul>
 * A target's log-probability is clipped at -80 nats: a target that unlikely gets no gradient (DPO
 * drives rejected answers there within a few hundred steps, and the SameDiff graph this replaced
 * turned them into NaN without the clip).
 *
 * <p>The forward and backward are {@link Transformer}'s; this class owns the weights (one block of
 * floats, {@link Layout}), turns the objective into per-target coefficients and per-row reward
 * gradients, and hands out the weights and gradients as named views ({@link #parameters()}), which
 * checkpoints, the optimizer and {@link Inference} use: an optimizer that updates them in place
 * updates the model.
 *
 * <p>Threads: a step splits its rows among as many workers as OpenBLAS has threads
 * ({@link Blas#threads()} when the model is made), as data-parallel training splits a batch among
 * devices: each worker runs forward and backward over its rows with a one-threaded BLAS and its own
 * gradient block, and the blocks are summed. Every loop runs on every thread that way, not only the
 * multiplies; OpenBLAS splitting each small per-head multiply across threads was slower than one
 * thread (docs/benchmarks.md). Not thread-safe itself: one step at a time.
 */
public final class Gpt {

    /** The reward head's parameters; language-model steps leave them alone. */
    static final String REWARD_PREFIX = "reward.";

    private final GptConfig config;
    private final Layout layout;
    private final Floats weights;
    private final Floats gradients;
    private final Map<String, INDArray> parameters;
    private final Map<String, INDArray> gradientViews;
    private final long seed;
    /** Worker i runs rows {@code split[i] .. split[i+1]} of the last forward; worker 0 is the caller. */
    private Transformer[] workers;
    /** Each worker's gradients: worker 0 writes into {@link #gradients}, the others into their own. */
    private Floats[] workerGradients;
    private int[] split = {0, 0};

    private Gpt(GptConfig config, Map<String, INDArray> initial, long seed) {
        this.config = config;
        this.layout = new Layout(config);
        this.weights = Floats.zeros(layout.size);
        this.gradients = Floats.zeros(layout.size);
        this.parameters = Collections.unmodifiableMap(layout.views(weights));
        this.gradientViews = layout.views(gradients);
        for (Map.Entry<String, INDArray> p : parameters.entrySet()) {
            INDArray w = initial.get(p.getKey());
            if (w == null && p.getKey().startsWith(REWARD_PREFIX)) {
                continue;    // a checkpoint from before the reward head: zeros
            }
            if (w == null) {
                throw new IllegalArgumentException("missing parameter " + p.getKey());
            }
            if (!Arrays.equals(w.shape(), p.getValue().shape())) {
                throw new IllegalArgumentException("parameter " + p.getKey() + " has shape "
                        + Arrays.toString(w.shape()) + ", the config needs " + Arrays.toString(p.getValue().shape()));
            }
            p.getValue().assign(w.castTo(DataType.FLOAT));
        }
        if (!parameters.keySet().containsAll(initial.keySet())) {
            throw new IllegalArgumentException("unexpected parameters: " + initial.keySet());
        }
        this.seed = seed;
        useThreads(Math.max(1, Blas.threads()));
    }

    /** Splits later steps' rows among {@code threads} workers (tests compare splits; the default is OpenBLAS's threads). */
    void useThreads(int threads) {
        workers = new Transformer[threads];
        workerGradients = new Floats[threads];
        for (int i = 0; i < threads; i++) {
            workers[i] = new Transformer(config, layout, weights, seed + i);   // dropout: each worker its own masks
        }
        workerGradients[0] = gradients;
    }

    /** A new model with GPT-2's initialisation, reproducible from {@code seed}. */
    public static Gpt initialize(GptConfig config, long seed) {
        Nd4j.getRandom().setSeed(seed);
        double residualStd = 0.02 / Math.sqrt(2.0 * config.layers());
        Map<String, INDArray> weights = new LinkedHashMap<>();
        shapes(config).forEach((name, shape) -> {
            INDArray w;
            if (name.endsWith(".gain")) {
                w = Nd4j.ones(DataType.FLOAT, shape);
            } else if (shape.length == 1) {
                w = Nd4j.zeros(DataType.FLOAT, shape);     // biases
            } else if (name.endsWith("attn.wo") || name.endsWith("mlp.wproj")) {
                w = Nd4j.randn(DataType.FLOAT, shape).muli(residualStd);
            } else {
                w = Nd4j.randn(DataType.FLOAT, shape).muli(0.02);
            }
            weights.put(name, w);
        });
        return new Gpt(config, weights, seed);
    }

    /** A model with the given weights (a checkpoint's); names and shapes must match the config. */
    public static Gpt withWeights(GptConfig config, Map<String, INDArray> weights) {
        return new Gpt(config, weights, 0x5EED_D50FL);   // dropout's masks: any fixed seed
    }

    /** Tests: later steps reuse the dropout masks of the last one, so that finite differences apply. */
    void freezeDropoutMasks() {
        for (Transformer t : workers) {
            t.freezeDropoutMasks();
        }
    }

    /** Every parameter's name and shape, in a fixed order (the checkpoint's order). */
    public static Map<String, long[]> shapes(GptConfig c) {
        long C = c.width();
        long hidden = (long) c.mlpRatio() * C;
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("wte", new long[] {c.vocabSize(), C});
        s.put("wpe", new long[] {c.contextLength(), C});
        for (int l = 0; l < c.layers(); l++) {
            String b = "h" + l + ".";
            s.put(b + "ln1.gain", new long[] {C});
            s.put(b + "ln1.bias", new long[] {C});
            for (String m : List.of("q", "k", "v", "o")) {
                s.put(b + "attn.w" + m, new long[] {C, C});
                s.put(b + "attn.b" + m, new long[] {C});
            }
            s.put(b + "ln2.gain", new long[] {C});
            s.put(b + "ln2.bias", new long[] {C});
            s.put(b + "mlp.wfc", new long[] {C, hidden});
            s.put(b + "mlp.bfc", new long[] {hidden});
            s.put(b + "mlp.wproj", new long[] {hidden, C});
            s.put(b + "mlp.bproj", new long[] {C});
        }
        s.put("lnf.gain", new long[] {C});
        s.put("lnf.bias", new long[] {C});
        if (!c.tiedEmbeddings()) {
            s.put("head", new long[] {C, c.vocabSize()});
        }
        s.put(REWARD_PREFIX + "w", new long[] {C, 1});
        s.put(REWARD_PREFIX + "b", new long[] {1});
        return s;
    }

    public GptConfig config() {
        return config;
    }

    Layout layout() {
        return layout;
    }

    /** The one block all parameters live in (what {@link #parameters} views). */
    Floats weightBlock() {
        return weights;
    }

    /** Tests: the training forward's logits for full rows of context tokens, [rows · T · V]. */
    float[] trainingLogits(int[][] rows) {
        int T = config.contextLength();
        int[] flat = new int[rows.length * T];
        for (int b = 0; b < rows.length; b++) {
            System.arraycopy(rows[b], 0, flat, b * T, T);
        }
        workers[0].forward(flat, rows.length);
        return workers[0].logits();
    }

    /** The live weights, by name, in checkpoint order; updating them in place changes the model. */
    public Map<String, INDArray> parameters() {
        return parameters;
    }

    // --- one training step's loss and gradients --------------------------------------------------

    /**
     * The loss of a batch and the gradient of every parameter, by name. The gradients are views of
     * the model's one gradient block: valid until the model's next step.
     */
    public record Gradients(double loss, long tokens, Map<String, INDArray> byParameter) {}

    /**
     * Forward and backward over a batch of language-model windows. The reward head gets no
     * gradient (it is absent from the result), so an optimizer leaves it as it is.
     *
     * @param inputs  token ids [batch, context]
     * @param targets next tokens [batch, context]
     * @param mask    1 where the target counts, 0 for padding [batch, context]; {@code null}: all count
     */
    public Gradients gradients(int[][] inputs, int[][] targets, float[][] mask) {
        int batch = inputs.length;
        int T = config.contextLength();
        int[] in = flatten(inputs, T);
        int[] out = flatten(targets, T);
        float[] weight = new float[batch * T];
        long counted = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < T; t++) {
                weight[b * T + t] = mask == null ? 1f : mask[b][t];
                counted += weight[b * T + t] > 0 ? 1 : 0;
            }
        }
        if (counted == 0) {
            throw new IllegalArgumentException("the batch has no counted target");
        }
        checkIds(in);
        checkIds(out);
        long countedTargets = counted;
        return oneThreadedBlas(batch, () -> {
            float[] picked = forward(in, out, batch);
            float[] coefficient = new float[picked.length];
            double loss = languageLoss(picked, weight, countedTargets, coefficient);
            backward(picked, coefficient, out, null, null);
            return new Gradients(loss, countedTargets, withoutRewardHead());
        });
    }

    /**
     * One example of preference training: a prompt then an answer, at most the context long. Too
     * long, the prompt loses its oldest tokens first; an answer that alone fills the context keeps
     * its beginning and the prompt's last token.
     */
    public record Sequence(int[] tokens, int promptLength) {
        public Sequence {
            if (promptLength < 1 || promptLength >= tokens.length) {
                throw new IllegalArgumentException("a sequence needs a prompt and an answer: " + promptLength + " of " + tokens.length);
            }
        }

        public static Sequence fit(int[] prompt, int[] answer, int context) {
            if (prompt.length == 0 || answer.length == 0) {
                throw new IllegalArgumentException("a sequence needs a prompt and an answer");
            }
            int answerLength = Math.min(answer.length, context - 1);
            int promptLength = Math.min(prompt.length, context - answerLength);
            int[] tokens = new int[promptLength + answerLength];
            System.arraycopy(prompt, prompt.length - promptLength, tokens, 0, promptLength);
            System.arraycopy(answer, 0, tokens, promptLength, answerLength);
            return new Sequence(tokens, promptLength);
        }

        /** The answer alone. */
        public int[] answer() {
            return Arrays.copyOfRange(tokens, promptLength, tokens.length);
        }
    }

    /** What a preference step measured, per pair, besides the gradients (views, as in {@link Gradients}). */
    public record PreferenceGradients(double loss, double languageLoss, double rewardLoss, double dpoLoss,
                                      float[] rewardMargins, float[] policyMargins, Map<String, INDArray> byParameter) {}

    /**
     * Forward and backward over preference pairs and supervised examples in one batch: the rows
     * are the chosen answers, then the rejected ones, then the supervised examples, each a whole
     * sequence padded to the context.
     *
     * @param chosen           the preferred answer of each pair
     * @param rejected         the other answer of each pair, same order
     * @param referenceMargins per pair, {@code log π_ref(chosen) - log π_ref(rejected)} of the answers
     * @param supervised       liked answers, trained with next-token loss on the answer tokens
     * @param rewardWeight     weight of the mean Bradley-Terry loss (0: no reward learning)
     * @param dpoWeight        weight of the mean DPO loss (0: no policy tuning from pairs)
     * @param beta             DPO's inverse temperature
     */
    public PreferenceGradients preferenceGradients(List<Sequence> chosen, List<Sequence> rejected, float[] referenceMargins,
                                                   List<Sequence> supervised, double rewardWeight, double dpoWeight, double beta) {
        int rows = chosen.size() + rejected.size() + supervised.size();
        return oneThreadedBlas(rows, () -> preferenceStep(chosen, rejected, referenceMargins, supervised, rewardWeight, dpoWeight, beta));
    }

    private PreferenceGradients preferenceStep(List<Sequence> chosen, List<Sequence> rejected, float[] referenceMargins,
                                               List<Sequence> supervised, double rewardWeight, double dpoWeight, double beta) {
        int pairs = chosen.size();
        if (rejected.size() != pairs || referenceMargins.length != pairs) {
            throw new IllegalArgumentException("chosen, rejected and reference margins differ in length");
        }
        List<Sequence> rows = new ArrayList<>(chosen);
        rows.addAll(rejected);
        rows.addAll(supervised);
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("no examples");
        }
        int batch = rows.size();
        int T = config.contextLength();
        int[] inputs = new int[batch * T];
        int[] targets = new int[batch * T];
        float[] languageMask = new float[batch * T];   // supervised rows' answer targets
        float[] answer = new float[batch * T];         // every row's answer targets
        int[] last = new int[batch];
        long counted = 0;
        for (int b = 0; b < batch; b++) {
            Sequence seq = rows.get(b);
            int[] tokens = seq.tokens();
            if (tokens.length > T) {
                throw new IllegalArgumentException("sequence of " + tokens.length + " tokens exceeds the context " + T);
            }
            System.arraycopy(tokens, 0, inputs, b * T, tokens.length);
            for (int t = 0; t + 1 < tokens.length; t++) {
                targets[b * T + t] = tokens[t + 1];
                if (t + 1 >= seq.promptLength()) {
                    answer[b * T + t] = 1f;
                    if (b >= 2 * pairs) {
                        languageMask[b * T + t] = 1f;
                        counted++;
                    }
                }
            }
            last[b] = tokens.length - 1;
        }
        checkIds(inputs);
        float[] picked = forward(inputs, targets, batch);

        // Next-token loss on the supervised answers.
        float[] coefficient = new float[picked.length];
        double languageLoss = languageLoss(picked, languageMask, counted, coefficient);
        // Bradley-Terry on the reward head, and DPO on the answers' log-probabilities.
        float[] rewardMargins = new float[pairs];
        float[] policyMargins = new float[pairs];
        float[] rewardGrad = new float[batch];
        double rewardLoss = 0;
        double dpoLoss = 0;
        double rw = pairs == 0 ? 0 : rewardWeight / pairs;
        double dw = pairs == 0 ? 0 : dpoWeight / pairs;
        for (int p = 0; p < pairs; p++) {
            int c = p;
            int r = pairs + p;
            rewardMargins[p] = reward(c, last[c]) - reward(r, last[r]);
            rewardLoss += rw * Kernels.softplus(-rewardMargins[p]);
            float dMargin = (float) (-rw * sigmoid(-rewardMargins[p]));      // d/dm softplus(-m) = -σ(-m)
            rewardGrad[c] += dMargin;
            rewardGrad[r] -= dMargin;

            policyMargins[p] = (float) (answerLogProb(picked, answer, c, T) - answerLogProb(picked, answer, r, T));
            double z = beta * (policyMargins[p] - referenceMargins[p]);
            dpoLoss += dw * Kernels.softplus(-z);
            float dPolicy = (float) (-dw * beta * sigmoid(-z));
            for (int t = 0; t < T; t++) {
                coefficient[c * T + t] += answer[c * T + t] * dPolicy;
                coefficient[r * T + t] -= answer[r * T + t] * dPolicy;
            }
        }
        boolean rewardHead = pairs > 0 && rewardWeight != 0;
        backward(picked, coefficient, targets, rewardHead ? rewardGrad : null, last);
        Map<String, INDArray> grads = rewardHead ? gradientViews : withoutRewardHead();
        return new PreferenceGradients(languageLoss + rewardLoss + dpoLoss, languageLoss, rewardLoss, dpoLoss,
                rewardMargins, policyMargins, grads);
    }

    // --- the rows split among the workers -----------------------------------------------------

    /** Runs the forward of {@code batch} rows, split among the workers; each position's target log-probability. */
    private float[] forward(int[] inputs, int[] targets, int batch) {
        int T = config.contextLength();
        int k = Math.min(workers.length, batch);
        split = new int[k + 1];
        for (int i = 0; i <= k; i++) {
            split[i] = (int) ((long) i * batch / k);
        }
        float[] picked = new float[batch * T];
        Parallel.run(k, i -> {
            int from = split[i] * T;
            int to = split[i + 1] * T;
            workers[i].forward(Arrays.copyOfRange(inputs, from, to), split[i + 1] - split[i]);
            float[] mine = workers[i].targetLogProbs(Arrays.copyOfRange(targets, from, to));
            System.arraycopy(mine, 0, picked, from, mine.length);
        });
        return picked;
    }

    /** The reward head at {@code position} of the last forward's {@code row}. */
    private float reward(int row, int position) {
        int i = 0;
        while (row >= split[i + 1]) {
            i++;
        }
        return workers[i].reward(row - split[i], position);
    }

    /** Each worker's backward over its rows into its gradient block, then the blocks summed into {@link #gradients}. */
    private void backward(float[] picked, float[] coefficient, int[] targets, float[] rewardGrad, int[] last) {
        int T = config.contextLength();
        int k = split.length - 1;
        for (int i = 1; i < k; i++) {
            if (workerGradients[i] == null) {
                workerGradients[i] = Floats.zeros(layout.size);
            }
        }
        Parallel.run(k, i -> {
            int from = split[i];
            int to = split[i + 1];
            Floats dw = workerGradients[i];
            dw.zero();
            workers[i].backward(Arrays.copyOfRange(picked, from * T, to * T), Arrays.copyOfRange(coefficient, from * T, to * T),
                    Arrays.copyOfRange(targets, from * T, to * T), rewardGrad == null ? null : Arrays.copyOfRange(rewardGrad, from, to),
                    last == null ? null : Arrays.copyOfRange(last, from, to), dw);
        });
        // Each worker sums one slice of the blocks.
        Parallel.run(k, i -> {
            int lo = (int) ((long) i * layout.size / k);
            int hi = (int) ((long) (i + 1) * layout.size / k);
            for (int j = 1; j < k; j++) {
                Kernels.accumulate(gradients, lo, workerGradients[j], lo, hi - lo);
            }
        });
    }

    /**
     * Runs a step with OpenBLAS held to one thread, when the step has several workers: each
     * worker's multiplies then run on its own thread. Once per step, not per phase: changing
     * OpenBLAS's thread count costs about a millisecond (measured).
     */
    private <R> R oneThreadedBlas(int rows, java.util.function.Supplier<R> step) {
        if (Math.min(workers.length, rows) == 1) {
            return step.get();
        }
        int blasThreads = Blas.threads();
        Blas.threads(1);
        try {
            return step.get();
        } finally {
            Blas.threads(blasThreads);
        }
    }

    /**
     * The mean next-token loss over the counted targets, {@code -(1/counted) Σ mask · log p(target)}
     * (0 when none counts); writes its derivative by each log-probability into {@code coefficient}.
     */
    private static double languageLoss(float[] picked, float[] mask, long counted, float[] coefficient) {
        float scale = counted == 0 ? 0f : 1f / counted;
        double loss = 0;
        for (int i = 0; i < picked.length; i++) {
            loss -= (double) scale * mask[i] * picked[i];
            coefficient[i] = -scale * mask[i];
        }
        return loss;
    }

    private static double answerLogProb(float[] picked, float[] answer, int row, int T) {
        double sum = 0;
        for (int t = 0; t < T; t++) {
            sum += answer[row * T + t] * picked[row * T + t];
        }
        return sum;
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    private Map<String, INDArray> withoutRewardHead() {
        Map<String, INDArray> out = new LinkedHashMap<>(gradientViews);
        out.keySet().removeIf(name -> name.startsWith(REWARD_PREFIX));
        return out;
    }

    private void checkIds(int[] ids) {
        for (int id : ids) {
            if (id < 0 || id >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + config.vocabSize());
            }
        }
    }

    private static int[] flatten(int[][] rows, int width) {
        int[] flat = new int[rows.length * width];
        for (int b = 0; b < rows.length; b++) {
            if (rows[b].length != width) {
                throw new IllegalArgumentException("row " + b + " has " + rows[b].length + " tokens, expected " + width);
            }
            System.arraycopy(rows[b], 0, flat, b * width, width);
        }
        return flat;
    }
}
