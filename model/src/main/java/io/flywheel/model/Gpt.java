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
 * A GPT-2-style decoder, read top to bottom like nanoGPT's {@code model.py}: token and learned
 * position embeddings, {@code layers} pre-layer-norm blocks of causal multi-head self-attention and
 * a GELU MLP, a final layer norm, and an output projection tied to the token embedding (or its own).
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
public final class Gpt {

    /** Name of the graph's input: the embedded tokens, [batch, context, width]. */
    private static final String EMBEDDED = "embedded";

    private final GptConfig config;
    private final Map<String, INDArray> parameters;
    private final SameDiff graph;

    private Gpt(GptConfig config, Map<String, INDArray> weights) {
        this.config = config;
        this.graph = SameDiff.create();
        this.parameters = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> p : shapes(config).entrySet()) {
            INDArray w = weights.get(p.getKey());
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
        if (weights.size() != parameters.size()) {
            throw new IllegalArgumentException("unexpected parameters: " + weights.keySet());
        }
        buildTrainingGraph();
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
        return new Gpt(config, weights);
    }

    /** A model with the given weights (a checkpoint's); names and shapes must match the config. */
    public static Gpt withWeights(GptConfig config, Map<String, INDArray> weights) {
        return new Gpt(config, weights);
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
        return s;
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
        SDVariable last = sd.reshape(layerNorm(x, "lnf"), -1, C);
        SDVariable logits = config.tiedEmbeddings()
                ? sd.mmul(last, sd.getVariable("wte"), false, true, false)
                : sd.mmul(last, sd.getVariable("head"));

        // Mean next-token cross-entropy over the counted positions.
        SDVariable logProbs = sd.nn.logSoftmax(logits);   // over the last axis; an explicit axis breaks createGradFunction in M2.1
        SDVariable picked = sd.sum(logProbs.mul(sd.oneHot(targets, config.vocabSize())), 1);
        sd.sum(picked.mul(mask)).mul(scale).neg("loss");
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

    /** The loss of a batch and the gradient of every parameter, by name. */
    public record Gradients(double loss, long tokens, Map<String, INDArray> byParameter) {}

    /**
     * Forward and backward over a batch of windows.
     *
     * @param inputs  token ids [batch, context]
     * @param targets next tokens [batch, context]
     * @param mask    1 where the target counts, 0 for padding [batch, context]; {@code null}: all count
     */
    public Gradients gradients(int[][] inputs, int[][] targets, float[][] mask) {
        int batch = inputs.length;
        int T = config.contextLength();
        int[] flatInputs = flatten(inputs, T);
        for (int id : flatInputs) {
            if (id < 0 || id >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + config.vocabSize());
            }
        }
        float[] flatMask = new float[batch * T];
        long counted = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < T; t++) {
                float m = mask == null ? 1f : mask[b][t];
                flatMask[b * T + t] = m;
                counted += m > 0 ? 1 : 0;
            }
        }
        if (counted == 0) {
            throw new IllegalArgumentException("the batch has no counted target");
        }
        INDArray wte = parameters.get("wte");
        INDArray embedded = Nd4j.pullRows(wte, 1, flatInputs).reshape(batch, T, config.width());
        Map<String, INDArray> feed = Map.of(
                EMBEDDED, embedded,
                "targets", Nd4j.createFromArray(flatten(targets, T)),
                "mask", Nd4j.createFromArray(flatMask),
                "scale", Nd4j.scalar(DataType.FLOAT, 1.0 / counted));
        List<String> wanted = new ArrayList<>(parameters.keySet());
        wanted.add(EMBEDDED);
        OutAndGrad result = graph.calculateGradientsAndOutputs(feed, List.of("loss"), wanted);
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
        INDArray embeddedGrad = result.getGradients().get(EMBEDDED).reshape((long) batch * T, config.width());
        ScatterAdd scatter = new ScatterAdd(tableGrad, Nd4j.createFromArray(flatInputs), embeddedGrad);
        scatter.addBArgument(true);
        scatter.addOutputArgument(tableGrad);
        Nd4j.exec(scatter);
        return new Gradients(result.getOutputs().get("loss").getDouble(0), counted, grads);
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
