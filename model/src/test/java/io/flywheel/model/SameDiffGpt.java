package io.flywheel.model;

import java.io.OutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.scatter.ScatterAdd;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The SameDiff implementation the engine replaced, kept as the tests' reference: the same step
 * on the same weights must give the same loss and gradients ({@code EngineParityTest}).
 *
 * <p>A GPT-2-style decoder, read top to bottom like nanoGPT's {@code model.py}: token and learned
 * position embeddings, {@code layers} pre-layer-norm blocks of causal multi-head self-attention and
 * a GELU MLP, a final layer norm, and an output projection tied to the token embedding (or its own).
 * A reward head (one linear unit on the final hidden state at a sequence's last token) shares the
 * body: the same network is the policy and the reward model.
 *
 * <p>One graph, one loss with three terms, so that a step can mix them:
 * <ul>
 *   <li>next-token cross-entropy over the counted targets (pre-training windows, or the answer
 *       tokens of supervised examples);</li>
 *   <li>Bradley-Terry on preference pairs: {@code -log σ(r(chosen) - r(rejected))};</li>
 *   <li>DPO on the same pairs: {@code -log σ(β · ((log π(c) - log π_ref(c)) - (log π(r) - log π_ref(r))))},
 *       the reference's log-ratio computed outside the graph by the frozen reference model.</li>
 * </ul>
 *
 * <p>The weights live in {@link #parameters()}, one array per name, shared by the SameDiff training
 * graph built here and by the eager {@link Inference} path: an optimizer that updates them in place
 * updates both.
 *
 * <p>Two DL4J 1.0.0-M2.1 defects shape the graph (see ../shared/DL4J-NOTES.md): {@code gather} has
 * a wrong gradient, so the token lookup happens outside the graph, whose input is the embedded
 * sequence, and its gradient is scattered back into the table; {@code sparseSoftmaxCrossEntropy}
 * ignores the gradient that flows into it, so the loss is written as a log-softmax picked by a
 * one-hot, which makes the padding mask and the mean exact.
 */
final class SameDiffGpt {

    /** Name of the graph's input: the embedded tokens, [batch, context, width]. */
    private static final String EMBEDDED = "embedded";
    /** The reward head's parameters; language-model steps leave them alone. */
    static final String REWARD_PREFIX = Gpt.REWARD_PREFIX;

    private final GptConfig config;
    private final Map<String, INDArray> parameters;
    private final SameDiff graph;

    SameDiffGpt(GptConfig config, Map<String, INDArray> weights) {
        this.config = config;
        this.graph = SameDiff.create();
        this.parameters = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> p : Gpt.shapes(config).entrySet()) {
            INDArray w = weights.get(p.getKey());
            if (w == null && p.getKey().startsWith(REWARD_PREFIX)) {
                w = Nd4j.zeros(DataType.FLOAT, p.getValue());    // a checkpoint from before the reward head
            }
            if (w == null) {
                throw new IllegalArgumentException("missing parameter " + p.getKey());
            }
            if (!Arrays.equals(w.shape(), p.getValue())) {
                throw new IllegalArgumentException("parameter " + p.getKey() + " has shape "
                        + Arrays.toString(w.shape()) + ", the config needs " + Arrays.toString(p.getValue()));
            }
            graph.var(p.getKey(), w.castTo(DataType.FLOAT).dup());
            parameters.put(p.getKey(), graph.getArrForVarName(p.getKey()));
        }
        if (!parameters.keySet().containsAll(weights.keySet())) {
            throw new IllegalArgumentException("unexpected parameters: " + weights.keySet());
        }
        buildTrainingGraph();
    }

    public GptConfig config() {
        return config;
    }

    /** The live weights, by name; updating them in place changes the model. */
    public Map<String, INDArray> parameters() {
        return parameters;
    }

    // --- the training graph ----------------------------------------------------------------------

    private void buildTrainingGraph() {
        SameDiff sd = graph;
        int T = config.contextLength();
        int C = config.width();
        int H = config.heads();
        int hd = config.headSize();

        SDVariable embedded = sd.placeHolder(EMBEDDED, DataType.FLOAT, -1, T, C);
        SDVariable targets = sd.placeHolder("targets", DataType.INT32, -1);   // [batch * T]
        SDVariable mask = sd.placeHolder("mask", DataType.FLOAT, -1);         // 1 = counts, 0 = padding
        SDVariable scale = sd.placeHolder("scale", DataType.FLOAT);           // 1 / number of counted tokens
        // Preferences: rows of the batch are whole sequences (prompt + answer, padded).
        SDVariable lastToken = sd.placeHolder("lastToken", DataType.FLOAT, -1);   // [batch * T], 1 at each row's last token
        SDVariable answer = sd.placeHolder("answer", DataType.FLOAT, -1);         // [batch * T], 1 where the target is an answer token
        SDVariable pairing = sd.placeHolder("pairing", DataType.FLOAT, -1, -1);   // [pairs, batch]: +1 the chosen row, -1 the rejected
        SDVariable referenceMargin = sd.placeHolder("referenceMargin", DataType.FLOAT, -1);  // [pairs]
        SDVariable rewardWeight = sd.placeHolder("rewardWeight", DataType.FLOAT); // 1 / pairs, or 0
        SDVariable dpoWeight = sd.placeHolder("dpoWeight", DataType.FLOAT);       // 1 / pairs, or 0
        SDVariable beta = sd.placeHolder("beta", DataType.FLOAT);

        // Position j may attend to positions <= j: a constant added to the scores before softmax.
        INDArray causal = Nd4j.zeros(DataType.FLOAT, T, T);
        for (int i = 0; i < T; i++) {
            for (int j = i + 1; j < T; j++) {
                causal.putScalar(i, j, -1e9f);
            }
        }
        SDVariable future = sd.constant("causal", causal);

        SDVariable x = embedded.add(sd.getVariable("wpe"));
        for (int l = 0; l < config.layers(); l++) {
            String b = "h" + l + ".";
            // attention: x + Wo · softmax(q kᵀ / √hd + causal) v
            SDVariable h = sd.reshape(layerNorm(x, b + "ln1"), -1, C);
            SDVariable q = splitHeads(linear(h, b + "attn.wq", b + "attn.bq"), T, H, hd);
            SDVariable k = splitHeads(linear(h, b + "attn.wk", b + "attn.bk"), T, H, hd);
            SDVariable v = splitHeads(linear(h, b + "attn.wv", b + "attn.bv"), T, H, hd);
            SDVariable scores = sd.mmul(q, k, false, true, false).mul(1.0 / Math.sqrt(hd)).add(future);
            SDVariable attention = dropout(sd.nn.softmax(scores));
            SDVariable heads = sd.reshape(sd.permute(sd.mmul(attention, v), 0, 2, 1, 3), -1, C);
            x = x.add(sd.reshape(dropout(linear(heads, b + "attn.wo", b + "attn.bo")), -1, T, C));
            // MLP: x + Wproj · gelu(Wfc · ln(x))
            SDVariable m = sd.reshape(layerNorm(x, b + "ln2"), -1, C);
            SDVariable up = sd.nn.gelu(linear(m, b + "mlp.wfc", b + "mlp.bfc"));
            x = x.add(sd.reshape(dropout(linear(up, b + "mlp.wproj", b + "mlp.bproj")), -1, T, C));
        }
        SDVariable hidden = sd.reshape(layerNorm(x, "lnf"), -1, C);
        SDVariable logits = config.tiedEmbeddings()
                ? sd.mmul(hidden, sd.getVariable("wte"), false, true, false)
                : sd.mmul(hidden, sd.getVariable("head"));

        // Mean next-token cross-entropy over the counted positions.
        // Over the last axis (an explicit axis breaks createGradFunction in M2.1). M2.1 computes it as
        // log(softmax), which is -inf for a logit ~100 below the largest, and -inf times the one-hot's
        // zeros is NaN: clip at -80 nats (a target that unlikely gets no gradient, nothing else changes).
        // DPO drives rejected answers there within a few hundred steps.
        SDVariable logProbs = sd.math.clipByValue(sd.nn.logSoftmax(logits), -80, 0);
        SDVariable picked = sd.sum(logProbs.mul(sd.oneHot(targets, config.vocabSize())), 1);
        SDVariable languageLoss = sd.sum(picked.mul(mask)).mul(scale).neg("languageLoss");

        // Reward of each row: the head on the final hidden state at its last token.
        SDVariable tokenRewards = sd.reshape(sd.mmul(hidden, sd.getVariable(REWARD_PREFIX + "w")), -1);
        SDVariable rewards = sd.sum(sd.reshape(tokenRewards.mul(lastToken), -1, T), 1)
                .add("rewards", sd.getVariable(REWARD_PREFIX + "b"));
        // pairing · rewards, written as a broadcast product and a sum: M2.1's matmul_bp fails on a [1, 1] result.
        SDVariable rewardMargins = sd.sum("rewardMargins", pairing.mul(sd.reshape(rewards, 1, -1)), 1);
        SDVariable rewardLoss = sd.sum(softplus(rewardMargins.neg())).mul("rewardLoss", rewardWeight);

        // DPO: the policy's log-probability of each row's answer, compared with the reference's.
        SDVariable answerLogProbs = sd.sum("answerLogProbs", sd.reshape(picked.mul(answer), -1, T), 1);
        SDVariable policyMargins = sd.sum("policyMargins", pairing.mul(sd.reshape(answerLogProbs, 1, -1)), 1);
        SDVariable dpoLoss = sd.sum(softplus(policyMargins.sub(referenceMargin).mul(beta).neg())).mul("dpoLoss", dpoWeight);

        languageLoss.add(rewardLoss).add("loss", dpoLoss);
        sd.setLossVariables("loss");

        // The embedded input needs a gradient of its own (it is scattered into the table).
        // Building the gradient function prints a line per op to stdout; keep stdout clean.
        PrintStream out = System.out;
        try {
            System.setOut(new PrintStream(OutputStream.nullOutputStream()));
            sd.createGradFunction(EMBEDDED);
        } finally {
            System.setOut(out);
        }
    }

    /**
     * Layer norm over the last axis of [batch, T, C], computed on the [batch * T, C] rows: M2.1's
     * {@code layer_norm} backward pass takes twice as long on the rank-3 array (32 vs 16 ms per call
     * at width 256, measured); written out in elementary ops it is no faster, because broadcast
     * multiplications have a slow backward pass too.
     */
    private SDVariable layerNorm(SDVariable x, String name) {
        SDVariable rows = graph.reshape(x, -1, config.width());
        SDVariable normalized = graph.nn.layerNorm(rows, graph.getVariable(name + ".gain"), graph.getVariable(name + ".bias"), false, 1);
        return graph.reshape(normalized, -1, config.contextLength(), config.width());
    }

    /**
     * {@code log(1 + e^x)} as {@code max(x, 0) + log(1 + e^-|x|)}: M2.1's softplus overflows to a NaN
     * gradient once a margin passes ~90, which a reward head fitting a few pairs reaches.
     */
    private SDVariable softplus(SDVariable x) {
        return graph.nn.relu(x, 0).add(graph.math.log1p(graph.math.exp(graph.math.abs(x).neg())));
    }

    private SDVariable linear(SDVariable x, String weight, String bias) {
        return graph.mmul(x, graph.getVariable(weight)).add(graph.getVariable(bias));
    }

    /** [batch * T, C] to [batch, heads, T, headSize]. */
    private SDVariable splitHeads(SDVariable x, int T, int H, int hd) {
        return graph.permute(graph.reshape(x, -1, T, H, hd), 0, 2, 1, 3);
    }

    private SDVariable dropout(SDVariable x) {
        return config.dropout() > 0 ? graph.nn.dropoutInverted(x, 1 - config.dropout()) : x;
    }

    // --- one training step's loss and gradients --------------------------------------------------

    /**
     * Forward and backward over a batch of language-model windows. The reward head gets no
     * gradient (it is absent from the result), so an optimizer leaves it as it is.
     *
     * @param inputs  token ids [batch, context]
     * @param targets next tokens [batch, context]
     * @param mask    1 where the target counts, 0 for padding [batch, context]; {@code null}: all count
     */
    Gpt.Gradients gradients(int[][] inputs, int[][] targets, float[][] mask) {
        int batch = inputs.length;
        int T = config.contextLength();
        float[] flatMask = new float[batch * T];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < T; t++) {
                flatMask[b * T + t] = mask == null ? 1f : mask[b][t];
            }
        }
        Feed feed = new Feed(flatten(inputs, T), flatten(targets, T), flatMask, batch);
        if (feed.counted == 0) {
            throw new IllegalArgumentException("the batch has no counted target");
        }
        Result r = run(feed);
        r.grads.keySet().removeIf(name -> name.startsWith(REWARD_PREFIX));
        return new Gpt.Gradients(r.loss, feed.counted, r.grads);
    }

    /**
     * Forward and backward over preference pairs and supervised examples in one batch.
     *
     * @param chosen           the preferred answer of each pair
     * @param rejected         the other answer of each pair, same order
     * @param referenceMargins per pair, {@code log π_ref(chosen) - log π_ref(rejected)} of the answers
     * @param supervised       liked answers, trained with next-token loss on the answer tokens
     * @param rewardWeight     weight of the mean Bradley-Terry loss (0: no reward learning)
     * @param dpoWeight        weight of the mean DPO loss (0: no policy tuning from pairs)
     * @param beta             DPO's inverse temperature
     */
    Gpt.PreferenceGradients preferenceGradients(List<Gpt.Sequence> chosen, List<Gpt.Sequence> rejected, float[] referenceMargins,
                                                   List<Gpt.Sequence> supervised, double rewardWeight, double dpoWeight, double beta) {
        int pairs = chosen.size();
        if (rejected.size() != pairs || referenceMargins.length != pairs) {
            throw new IllegalArgumentException("chosen, rejected and reference margins differ in length");
        }
        List<Gpt.Sequence> rows = new ArrayList<>(chosen);
        rows.addAll(rejected);
        rows.addAll(supervised);
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("no examples");
        }
        int batch = rows.size();
        int T = config.contextLength();
        int[] inputs = new int[batch * T];
        int[] targets = new int[batch * T];
        float[] languageMask = new float[batch * T];
        float[] lastToken = new float[batch * T];
        float[] answer = new float[batch * T];
        for (int b = 0; b < batch; b++) {
            Gpt.Sequence seq = rows.get(b);
            int[] tokens = seq.tokens();
            if (tokens.length > T) {
                throw new IllegalArgumentException("sequence of " + tokens.length + " tokens exceeds the context " + T);
            }
            System.arraycopy(tokens, 0, inputs, b * T, tokens.length);
            for (int t = 0; t + 1 < tokens.length; t++) {
                targets[b * T + t] = tokens[t + 1];
                if (t + 1 >= seq.promptLength()) {
                    answer[b * T + t] = 1f;
                    languageMask[b * T + t] = b >= 2 * pairs ? 1f : 0f;   // supervised rows only
                }
            }
            lastToken[b * T + tokens.length - 1] = 1f;
        }
        Feed feed = new Feed(inputs, targets, languageMask, batch);
        feed.lastToken = lastToken;
        feed.answer = answer;
        if (pairs > 0) {
            feed.pairing = new float[pairs][batch];
            for (int p = 0; p < pairs; p++) {
                feed.pairing[p][p] = 1f;
                feed.pairing[p][pairs + p] = -1f;
            }
            feed.referenceMargin = referenceMargins.clone();
            feed.rewardWeight = (float) (rewardWeight / pairs);
            feed.dpoWeight = (float) (dpoWeight / pairs);
            feed.beta = (float) beta;
        }
        Result r = run(feed);
        if (pairs == 0 || rewardWeight == 0) {
            r.grads.keySet().removeIf(name -> name.startsWith(REWARD_PREFIX));
        }
        float[] rewardMargins = pairs == 0 ? new float[0] : r.outputs.get("rewardMargins").toFloatVector();
        float[] policyMargins = pairs == 0 ? new float[0] : r.outputs.get("policyMargins").toFloatVector();
        return new Gpt.PreferenceGradients(r.loss, r.outputs.get("languageLoss").getDouble(0), r.outputs.get("rewardLoss").getDouble(0),
                r.outputs.get("dpoLoss").getDouble(0), rewardMargins, policyMargins, r.grads);
    }

    /** The graph's placeholders; the preference ones default to "no pairs". */
    private static final class Feed {
        final int[] inputs;
        final int[] targets;
        final float[] languageMask;
        final int batch;
        final long counted;
        float[] lastToken;
        float[] answer;
        float[][] pairing;
        float[] referenceMargin = {0f};
        float rewardWeight;
        float dpoWeight;
        float beta = 1f;

        Feed(int[] inputs, int[] targets, float[] languageMask, int batch) {
            this.inputs = inputs;
            this.targets = targets;
            this.languageMask = languageMask;
            this.batch = batch;
            long n = 0;
            for (float m : languageMask) {
                n += m > 0 ? 1 : 0;
            }
            this.counted = n;
            this.lastToken = new float[inputs.length];
            this.answer = new float[inputs.length];
            this.pairing = new float[1][batch];
        }
    }

    private record Result(double loss, Map<String, INDArray> outputs, Map<String, INDArray> grads) {}

    private Result run(Feed f) {
        int T = config.contextLength();
        for (int id : f.inputs) {
            if (id < 0 || id >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + config.vocabSize());
            }
        }
        INDArray wte = parameters.get("wte");
        INDArray embedded = Nd4j.pullRows(wte, 1, f.inputs).reshape(f.batch, T, config.width());
        Map<String, INDArray> feed = new LinkedHashMap<>();
        feed.put(EMBEDDED, embedded);
        feed.put("targets", Nd4j.createFromArray(f.targets));
        feed.put("mask", Nd4j.createFromArray(f.languageMask));
        feed.put("scale", Nd4j.scalar(DataType.FLOAT, f.counted == 0 ? 0f : 1f / f.counted));
        feed.put("lastToken", Nd4j.createFromArray(f.lastToken));
        feed.put("answer", Nd4j.createFromArray(f.answer));
        feed.put("pairing", Nd4j.createFromArray(f.pairing));
        feed.put("referenceMargin", Nd4j.createFromArray(f.referenceMargin));
        feed.put("rewardWeight", Nd4j.scalar(DataType.FLOAT, f.rewardWeight));
        feed.put("dpoWeight", Nd4j.scalar(DataType.FLOAT, f.dpoWeight));
        feed.put("beta", Nd4j.scalar(DataType.FLOAT, f.beta));
        List<String> wanted = new ArrayList<>(parameters.keySet());
        wanted.add(EMBEDDED);
        OutAndGrad result = graph.calculateGradientsAndOutputs(feed,
                List.of("loss", "languageLoss", "rewardLoss", "dpoLoss", "rewardMargins", "policyMargins"), wanted);
        Map<String, INDArray> grads = new LinkedHashMap<>();
        for (String name : parameters.keySet()) {
            grads.put(name, result.getGradients().get(name));
        }
        // d loss / d wte[id] += d loss / d embedded[b, t] for every position holding id; the lock
        // flag makes repeated ids add up correctly when the op runs on several threads.
        INDArray tableGrad = grads.get("wte");
        if (tableGrad == null) {     // untied: the table is used only outside the graph
            tableGrad = Nd4j.zeros(DataType.FLOAT, wte.shape());
            grads.put("wte", tableGrad);
        }
        INDArray embeddedGrad = result.getGradients().get(EMBEDDED).reshape((long) f.batch * T, config.width());
        ScatterAdd scatter = new ScatterAdd(tableGrad, Nd4j.createFromArray(f.inputs), embeddedGrad);
        scatter.addBArgument(true);
        scatter.addOutputArgument(tableGrad);
        Nd4j.exec(scatter);
        return new Result(result.getOutputs().get("loss").getDouble(0), result.getOutputs(), grads);
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
