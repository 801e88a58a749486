package io.flywheel.model;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where every parameter lives in the engine's one block of parameters (and, at the same offsets,
 * of gradients and optimizer moments): typed offsets for the hot path, and the checkpoint's names
 * mapped to them once. The order is {@link Gpt#shapes}, the checkpoint's order; every matrix is
 * stored as the checkpoint stores it, [in, out] row-major, and BLAS's transpose flags do the rest.
 */
final class Layout {

    /** One transformer block's parameters: offsets into the block of parameters. */
    record Block(int ln1Gain, int ln1Bias, int wq, int bq, int wk, int bk, int wv, int bv, int wo, int bo,
                 int ln2Gain, int ln2Bias, int wfc, int bfc, int wproj, int bproj) {}

    final int wte;        // [vocab, C]
    final int wpe;        // [context, C]
    final Block[] blocks;
    final int lnfGain;    // [C]
    final int lnfBias;    // [C]
    /** [C, vocab], or -1 when the output projection is the token embedding (or is not kept here). */
    final int head;
    final int rewardW;    // [C, 1]
    final int rewardB;    // [1]
    /** Floats in the whole block. */
    final int size;

    private final Map<String, Integer> offsets;
    private final Map<String, long[]> shapes;

    Layout(GptConfig config) {
        this(config, name -> true);
    }

    /**
     * A block of only the parameters {@code kept} names (a quantized decoder keeps its matrices
     * elsewhere); the others' offsets are -1 and {@link #offsets} leaves them out.
     */
    Layout(GptConfig config, java.util.function.Predicate<String> kept) {
        Map<String, Integer> at = new LinkedHashMap<>();
        long next = 0;
        Map<String, long[]> s = Gpt.shapes(config);
        for (Map.Entry<String, long[]> e : s.entrySet()) {
            if (!kept.test(e.getKey())) {
                continue;
            }
            at.put(e.getKey(), Math.toIntExact(next));
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            next += n;
        }
        this.size = Math.toIntExact(next);
        this.offsets = Collections.unmodifiableMap(new LinkedHashMap<>(at));
        this.shapes = s;
        s.keySet().forEach(name -> at.putIfAbsent(name, -1));
        wte = at.get("wte");
        wpe = at.get("wpe");
        blocks = new Block[config.layers()];
        for (int l = 0; l < blocks.length; l++) {
            String b = "h" + l + ".";
            blocks[l] = new Block(at.get(b + "ln1.gain"), at.get(b + "ln1.bias"),
                    at.get(b + "attn.wq"), at.get(b + "attn.bq"), at.get(b + "attn.wk"), at.get(b + "attn.bk"),
                    at.get(b + "attn.wv"), at.get(b + "attn.bv"), at.get(b + "attn.wo"), at.get(b + "attn.bo"),
                    at.get(b + "ln2.gain"), at.get(b + "ln2.bias"),
                    at.get(b + "mlp.wfc"), at.get(b + "mlp.bfc"), at.get(b + "mlp.wproj"), at.get(b + "mlp.bproj"));
        }
        lnfGain = at.get("lnf.gain");
        lnfBias = at.get("lnf.bias");
        head = config.tiedEmbeddings() ? -1 : at.get("head");
        rewardW = at.get(Gpt.REWARD_PREFIX + "w");
        rewardB = at.get(Gpt.REWARD_PREFIX + "b");
    }

    /** Parameter names in checkpoint order, with their offsets. */
    Map<String, Integer> offsets() {
        return offsets;
    }

    long[] shape(String name) {
        return shapes.get(name);
    }

    /** Every parameter as a named view of {@code block} (parameters, gradients or moments). */
    Map<String, org.nd4j.linalg.api.ndarray.INDArray> views(Floats block) {
        Map<String, org.nd4j.linalg.api.ndarray.INDArray> out = new LinkedHashMap<>();
        offsets.forEach((name, offset) -> out.put(name, block.view(offset, shapes.get(name))));
        return out;
    }
}
