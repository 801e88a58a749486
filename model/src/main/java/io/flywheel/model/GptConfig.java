package io.flywheel.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;

/**
 * Every hyper-parameter of the network, in one place (nanoGPT's {@code GPTConfig}).
 *
 * @param vocabSize      tokens the model reads and predicts (the tokenizer's vocabulary, specials included)
 * @param contextLength  longest sequence the model sees; learned positions cover exactly this many
 * @param layers         transformer blocks
 * @param heads          attention heads per block; {@code width} must divide by it
 * @param width          model dimension ({@code n_embd})
 * @param mlpRatio       hidden size of the MLP as a multiple of {@code width} (4 in GPT-2)
 * @param dropout        dropout on attention probabilities and residual branches while training; 0 = off
 * @param tiedEmbeddings the output projection is the transposed token embedding (GPT-2), or its own matrix
 * @param activation     the MLP's nonlinearity
 * @param layerNormEpsilon added to the variance in every layer norm
 */
public record GptConfig(int vocabSize, int contextLength, int layers, int heads, int width, int mlpRatio,
                        double dropout, boolean tiedEmbeddings, Activation activation, double layerNormEpsilon) {

    /** What every checkpoint from before these were settings was trained with (ND4J's ops). */
    public static final Activation DEFAULT_ACTIVATION = Activation.QUICK_GELU;
    /**
     * ND4J's layer norm adds no epsilon to the variance (measured: its output stays exactly ±1
     * for rows of ±1e-8), so the checkpoints trained with it get one too small to change any
     * variance that float32 can tell from zero, yet enough to keep a constant row finite. Serving now
     * runs the engine's layer norm too, so new models may take PyTorch's 1e-5; that switch is not made yet.
     */
    public static final double DEFAULT_LAYER_NORM_EPSILON = 1e-12;

    /** A config with the default activation and layer-norm epsilon. */
    public GptConfig(int vocabSize, int contextLength, int layers, int heads, int width, int mlpRatio,
                     double dropout, boolean tiedEmbeddings) {
        this(vocabSize, contextLength, layers, heads, width, mlpRatio, dropout, tiedEmbeddings,
                DEFAULT_ACTIVATION, DEFAULT_LAYER_NORM_EPSILON);
    }

    public GptConfig {
        positive("vocab_size", vocabSize);
        positive("context_length", contextLength);
        positive("layers", layers);
        positive("heads", heads);
        positive("width", width);
        positive("mlp_ratio", mlpRatio);
        if (width % heads != 0) {
            throw new IllegalArgumentException("width " + width + " must be a multiple of heads " + heads);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("dropout must be in [0, 1), found " + dropout);
        }
        if (activation == null) {
            throw new IllegalArgumentException("activation is missing");
        }
        if (!(layerNormEpsilon > 0 && layerNormEpsilon < 1)) {
            throw new IllegalArgumentException("layer_norm_epsilon must be in (0, 1), found " + layerNormEpsilon);
        }
    }

    /** nanoGPT's small CPU configuration (4 layers, 4 heads, 128 wide), for a given vocabulary and context. */
    public static GptConfig small(int vocabSize, int contextLength) {
        return new GptConfig(vocabSize, contextLength, 4, 4, 128, 4, 0.0, true);
    }

    public int headSize() {
        return width / heads;
    }

    /** Trainable parameters, counting a tied embedding once. */
    public long parameterCount() {
        long c = width;
        long perBlock = 2 * 2 * c                 // two layer norms
                + 4 * (c * c + c)                 // q, k, v, output projection
                + c * (mlpRatio * c) + mlpRatio * c // MLP up
                + (mlpRatio * c) * c + c;         // MLP down
        long embeddings = (long) vocabSize * c + (long) contextLength * c;
        long head = tiedEmbeddings ? 0 : (long) vocabSize * c;
        return embeddings + layers * perBlock + 2 * c + head;
    }

    /**
     * Training FLOPs per token (forward and backward), PaLM's estimate: 6 per weight of the
     * matrices a token passes through, plus attention over the context, {@code 12 * L * T * C}.
     */
    public double trainingFlopsPerToken() {
        long c = width;
        double matrices = layers * (4.0 * c * c + 2.0 * mlpRatio * c * c) + (double) vocabSize * c;
        return 6 * matrices + 12.0 * layers * contextLength * c;
    }

    public byte[] toJson() {
        ObjectNode node = Json.object()
                .put("vocab_size", vocabSize).put("context_length", contextLength).put("layers", layers)
                .put("heads", heads).put("width", width).put("mlp_ratio", mlpRatio).put("dropout", dropout)
                .put("tied_embeddings", tiedEmbeddings).put("activation", activation.id())
                .put("layer_norm_epsilon", layerNormEpsilon);
        return Json.write(node);
    }

    public static GptConfig fromJson(byte[] json) {
        Json.Fields f = Json.read(json);
        String activation = f.optionalString("activation");
        Double epsilon = f.optionalNumber("layer_norm_epsilon");
        GptConfig config = new GptConfig((int) f.integer("vocab_size"), (int) f.integer("context_length"),
                (int) f.integer("layers"), (int) f.integer("heads"), (int) f.integer("width"),
                (int) f.integer("mlp_ratio"), f.number("dropout"), f.bool("tied_embeddings"),
                // Absent in checkpoints written before they were settings: those used the defaults.
                activation == null ? DEFAULT_ACTIVATION : Activation.of(activation),
                epsilon == null ? DEFAULT_LAYER_NORM_EPSILON : epsilon);
        f.done();
        return config;
    }

    private static void positive(String name, int value) {
        if (value <= 0) {
            throw new RecordFormatException(name, "must be > 0, found " + value);
        }
    }
}
