package io.flywheel.model;

import java.util.Arrays;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The network's forward for generation and evaluation, on the kernels and the parameter layout
 * that training's {@link Transformer} uses, so the two cannot drift: for many sequences at once,
 * each with its own slot in a key/value {@link Cache}.
 *
 * <p>One call to {@link #forward} appends new tokens to any number of sequences (a prompt of many
 * tokens, or the one token just sampled) and runs them as one batch of rows: the embedding, layer
 * norms, every weight multiply and the MLP see all rows together, so the weights are read once per
 * step however many sequences run; only attention, which reads each sequence's own cache, goes
 * sequence by sequence and head by head. With a single row a weight multiply reads every weight
 * once for two flops each, which is what bounds decode by memory bandwidth. A decoder's own copy of
 * the weights holds its matrices as panels that our own loops multiply ({@link Float32Matrix},
 * {@link Int8Matrix}): for a few rows as fast as for one, and split, with the sequences' attention,
 * among {@link #useThreads} threads. A decoder over a live model multiplies by the weights as they
 * lie, through OpenBLAS.
 *
 * <p>{@link #forward} is synchronized: the serving batcher, evaluations and reward scores may share
 * one decoder, its scratch memory is one block.
 */
public final class Decoder implements AutoCloseable {

    private final GptConfig config;
    private final Layout layout;
    private final Floats w;
    private final boolean ownsWeights;
    private final int C;
    private final int T;
    private final int H;
    private final int hd;
    private final int V;
    private final int F;
    private final float eps;
    private final float scale;
    /** Each block's weight matrices, and the output head, as this decoder multiplies by them. */
    private final BlockMatrices[] matrices;
    private final Matrix head;

    private Scratch s;
    private int threads = 1;

    /** A block's six matrices: attention's query, key, value and output, the MLP's two. */
    private record BlockMatrices(Matrix q, Matrix k, Matrix v, Matrix o, Matrix fc, Matrix proj) {}

    /** Makes the matrix that the parameter {@code name} ([rows, cols], at {@code offset} of the block if it is there) stands for. */
    private interface Matrices {
        Matrix of(String name, int offset, int rows, int cols);

        /** A tied head, W = wteᵀ [width, vocab]: by default multiplied by as the embedding lies in the block. */
        default Matrix tiedHead(Floats w, int wte, int width, int vocab) {
            return new Matrix.TransposeOf(w, wte, width, vocab);
        }
    }

    private Decoder(GptConfig config, Layout layout, Floats weights, boolean ownsWeights, Matrices matrix) {
        this.config = config;
        this.layout = layout;
        this.w = weights;
        this.ownsWeights = ownsWeights;
        this.C = config.width();
        this.T = config.contextLength();
        this.H = config.heads();
        this.hd = config.headSize();
        this.V = config.vocabSize();
        this.F = config.mlpRatio() * config.width();
        this.eps = (float) config.layerNormEpsilon();
        this.scale = (float) (1 / Math.sqrt(hd));
        this.matrices = new BlockMatrices[config.layers()];
        for (int l = 0; l < matrices.length; l++) {
            Layout.Block p = layout.blocks[l];
            String b = "h" + l + ".";
            matrices[l] = new BlockMatrices(matrix.of(b + "attn.wq", p.wq(), C, C), matrix.of(b + "attn.wk", p.wk(), C, C),
                    matrix.of(b + "attn.wv", p.wv(), C, C), matrix.of(b + "attn.wo", p.wo(), C, C),
                    matrix.of(b + "mlp.wfc", p.wfc(), C, F), matrix.of(b + "mlp.wproj", p.wproj(), F, C));
        }
        this.head = config.tiedEmbeddings() ? matrix.tiedHead(w, layout.wte, C, V) : matrix.of("head", layout.head, C, V);
    }

    /** The parameters a decoder multiplies by (not the embeddings, norms, biases or reward head). */
    static boolean isMatrix(String name) {
        return name.equals("head") || name.matches("h\\d+\\.(attn\\.w[qkvo]|mlp\\.w(fc|proj))");
    }

    /**
     * A decoder over a training model's live weights (shared: the next step changes its answers),
     * multiplying by them as they lie.
     */
    public static Decoder of(Gpt model) {
        Floats w = model.weightBlock();
        return new Decoder(model.config(), model.layout(), w, false, (name, offset, rows, cols) -> new Matrix.RowMajor(w, offset, rows, cols));
    }

    /** A float32 copy: {@link #copyOf(GptConfig, Map, Quantization)} without quantization. */
    public static Decoder copyOf(GptConfig config, Map<String, INDArray> weights) {
        return copyOf(config, weights, Quantization.NONE);
    }

    /**
     * A decoder over its own copy of {@code weights} (a checkpoint's; named and shaped as
     * {@link Gpt#shapes}): what serving runs. Its matrices are float32 ({@link Float32Matrix}) or
     * int8 ({@link Int8Matrix}) panels on the heap, outside the float block; without the Vector API,
     * float32 tiles in the block that OpenBLAS multiplies ({@link Matrix.Tiled}).
     * A reward head missing from an older checkpoint is zeros; anything else missing or misshapen
     * is refused before anything is allocated. The arrays may be freed once this returns;
     * {@link #close} frees the copy.
     */
    public static Decoder copyOf(GptConfig config, Map<String, INDArray> weights, Quantization quantization) {
        Map<String, long[]> shapes = Gpt.shapes(config);
        shapes.forEach((name, shape) -> {
            INDArray source = weights.get(name);
            if (source == null && !name.startsWith(Gpt.REWARD_PREFIX)) {
                throw new IllegalArgumentException("missing parameter " + name);
            }
            if (source != null && !Arrays.equals(source.shape(), shape)) {
                throw new IllegalArgumentException("parameter " + name + " has shape " + Arrays.toString(source.shape())
                        + ", the config needs " + Arrays.toString(shape));
            }
        });
        quantization.checkAvailable();
        boolean int8 = quantization == Quantization.INT8;
        // Our own multiplies hold the matrices on the heap; without the Vector API, float32 tiles
        // in the block go to OpenBLAS (slower for a few rows, docs/benchmarks.md).
        boolean ours = int8 || VectorMath.AVAILABLE;
        Layout layout = ours ? new Layout(config, name -> !isMatrix(name)) : new Layout(config);
        Floats block = Floats.zeros(layout.size);
        // Only tiles need room to rearrange a matrix in (a null resource is not closed).
        try (Floats scratch = ours ? null : Floats.zeros((long) config.width() * Math.max(config.mlpRatio() * config.width(), config.vocabSize()))) {
            layout.offsets().forEach((name, offset) -> {
                INDArray source = weights.get(name);
                if (source != null) {
                    block.view(offset, shapes.get(name)).assign(source.castTo(DataType.FLOAT));
                }
            });
            Matrices matrix;
            if (int8) {
                matrix = (name, offset, rows, cols) -> Int8Matrix.quantize(rowMajor(weights.get(name)), rows, cols);
            } else if (ours) {
                matrix = new Matrices() {
                    @Override
                    public Matrix of(String name, int offset, int rows, int cols) {
                        return Float32Matrix.of(rowMajor(weights.get(name)), rows, cols);
                    }

                    // Panels of its own (width x vocab floats more), so that the logits too are
                    // summed alike in any batch; the lookup reads the embedding in the block.
                    @Override
                    public Matrix tiedHead(Floats w, int wte, int width, int vocab) {
                        return Float32Matrix.of(rowMajor(weights.get("wte").transpose()), width, vocab);
                    }
                };
            } else {
                matrix = (name, offset, rows, cols) -> Matrix.Tiled.pack(block, offset, rows, cols, scratch);
            }
            return new Decoder(config, layout, block, true, matrix);
        } catch (RuntimeException e) {
            block.close();
            throw e;
        }
    }

    private static float[] rowMajor(INDArray a) {
        return a.castTo(DataType.FLOAT).dup('c').data().asFloat();
    }

    /**
     * Splits each step among {@code threads} threads: the weight multiplies, where the matrices are
     * our own (a float32 or int8 copy on the Vector API), and the sequences' attention. One by default.
     */
    public synchronized void useThreads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, found " + threads);
        }
        this.threads = threads;
    }

    public GptConfig config() {
        return config;
    }

    /** Bytes of weights this decoder holds, all of which a decode step reads once. */
    public long weightBytes() {
        long bytes = 4L * w.size();
        for (BlockMatrices m : matrices) {
            for (Matrix x : new Matrix[] {m.q(), m.k(), m.v(), m.o(), m.fc(), m.proj()}) {
                bytes += heapBytes(x);
            }
        }
        return bytes + heapBytes(head);
    }

    private static long heapBytes(Matrix m) {
        return m instanceof PanelMatrix p ? p.bytes() : 0;
    }

    /** A float32 key/value cache with room for {@code slots} sequences of up to the context length each. */
    public Cache cache(int slots) {
        return new Cache(slots, KvCacheDtype.FLOAT32);
    }

    /** A key/value cache with room for {@code slots} sequences of up to the context length each, held as {@code dtype}. */
    public Cache cache(int slots, KvCacheDtype dtype) {
        return new Cache(slots, dtype);
    }

    /** Frees the scratch memory, and the weights when they are this decoder's own copy. */
    @Override
    public synchronized void close() {
        if (s != null) {
            s.f.close();
            s = null;
        }
        if (ownsWeights) {
            w.close();
        }
    }

    /**
     * Room for sequences: per layer, slot and head, the keys and values of every position the slot
     * has seen, [position, hd] each, so that one head's attention reads one contiguous block. (Laid
     * out as training's [position, C], a head's keys were hd floats of every C: a 16-slot step of
     * L8 d512 took 23 ms against 19 ms now.) In bfloat16, {@link Bf16KeyValues} holds them instead,
     * on the Java heap.
     */
    public final class Cache implements AutoCloseable {
        private final int slots;
        private final Floats keys;             // float32: [layer][slot][head][position][hd]; else null
        private final Floats values;
        private final Bf16KeyValues bf16;      // bfloat16; else null
        private final int[] length;

        private Cache(int slots, KvCacheDtype dtype) {
            if (slots < 1) {
                throw new IllegalArgumentException("a cache needs at least one slot, found " + slots);
            }
            this.slots = slots;
            if (dtype == KvCacheDtype.BFLOAT16) {
                this.bf16 = new Bf16KeyValues(config.layers(), slots, H, hd, T);
                this.keys = null;
                this.values = null;
            } else {
                long size = (long) config.layers() * slots * T * C;
                this.bf16 = null;
                this.keys = Floats.zeros(size);
                this.values = Floats.zeros(size);
            }
            this.length = new int[slots];
        }

        public int slots() {
            return slots;
        }

        public KvCacheDtype dtype() {
            return bf16 != null ? KvCacheDtype.BFLOAT16 : KvCacheDtype.FLOAT32;
        }

        /** Bytes of keys and values it holds. */
        public long bytes() {
            return bf16 != null ? bf16.bytes() : 4L * (keys.size() + values.size());
        }

        /** Tokens in {@code slot} so far. */
        public int length(int slot) {
            return length[slot];
        }

        /** Positions left in {@code slot} before the context is full. */
        public int remaining(int slot) {
            return T - length[slot];
        }

        /** Empties {@code slot} for a new sequence. */
        public void clear(int slot) {
            length[slot] = 0;
        }

        /** Where position {@code position} of {@code slot}'s head {@code head} starts in layer {@code layer}'s keys (and values). */
        private int at(int layer, int slot, int head, int position) {
            return (((layer * slots + slot) * H + head) * T + position) * hd;
        }

        @Override
        public void close() {
            if (keys != null) {
                keys.close();
                values.close();
            }
        }
    }

    /**
     * What one forward returns, per sequence given: its logits ([V] for its last new position, or
     * [n · V] for each of its n new positions) and the reward head's score at its last position.
     */
    public record Output(float[][] logits, float[] rewards) {}

    /**
     * Appends {@code tokens[i]} to the sequence in {@code slots[i]}, for every i, in one batch.
     *
     * @param everyPosition logits for every new position (evaluation), or only for the last (decoding)
     */
    public synchronized Output forward(Cache cache, int[] slots, int[][] tokens, boolean everyPosition) {
        int count = check(cache, slots, tokens);
        int[] first = new int[count + 1];          // sequence i's new rows are first[i] .. first[i + 1]
        for (int i = 0; i < count; i++) {
            first[i + 1] = first[i] + tokens[i].length;
        }
        int n = first[count];
        int out = everyPosition ? n : count;
        int widest = 0;                            // the largest [new rows, seen positions] score block
        for (int i = 0; i < count; i++) {
            widest = Math.max(widest, tokens[i].length * (cache.length[slots[i]] + tokens[i].length));
        }
        if (s == null || s.rows < n || s.outputs < out || s.scoreSize < widest || s.lanes.length < threads) {
            if (s != null) {
                s.f.close();
            }
            s = new Scratch(Math.max(n, s == null ? 0 : s.rows), Math.max(out, s == null ? 0 : s.outputs),
                    Math.max(widest, s == null ? 0 : s.scoreSize), threads);
        }
        Floats f = s.f;
        for (int i = 0; i < count; i++) {
            Kernels.embed(f, s.x + first[i] * C, w, layout.wte, layout.wpe, tokens[i], 0, tokens[i].length, cache.length[slots[i]], C);
        }
        for (int l = 0; l < config.layers(); l++) {
            Layout.Block p = layout.blocks[l];
            BlockMatrices m = matrices[l];

            // Attention: x += softmax(q kᵀ / √hd over the cache and the new rows) v Wo + bo.
            Kernels.layerNorm(f, s.ln, f, s.mean, s.rstd, f, s.x, w, p.ln1Gain(), p.ln1Bias(), n, C, eps);
            // One multiply each for every sequence's rows; k and v are then copied into the slots.
            linear(s.q, s.ln, n, m.q(), p.bq());
            linear(s.k, s.ln, n, m.k(), p.bk());
            linear(s.v, s.ln, n, m.v(), p.bv());
            // Each sequence attends over its own cache: the sequences are shared among the threads.
            int layer = l;
            Parallel.ranges(threads, count, (lane, from, to) -> {
                for (int i = from; i < to; i++) {
                    attend(cache, layer, slots[i], first[i], tokens[i].length, s.lanes[lane]);
                }
            });
            linear(s.branch, s.atty, n, m.o(), p.bo());
            Kernels.accumulate(f, s.x, f, s.branch, n * C);

            // MLP: x += gelu(ln2(x) Wfc + bfc) Wproj + bproj.
            Kernels.layerNorm(f, s.ln, f, s.mean, s.rstd, f, s.x, w, p.ln2Gain(), p.ln2Bias(), n, C, eps);
            linear(s.fc, s.ln, n, m.fc(), p.bfc());
            Kernels.gelu(config.activation(), f, s.fc, f, s.fc, n * F);
            linear(s.branch, s.fc, n, m.proj(), p.bproj());
            Kernels.accumulate(f, s.x, f, s.branch, n * C);
        }
        for (int i = 0; i < count; i++) {
            cache.length[slots[i]] += tokens[i].length;
        }

        // The final layer norm and the output projection, on the rows asked for.
        int[] last = new int[count];               // each sequence's last row among the outputs
        if (everyPosition) {
            Kernels.layerNorm(f, s.lnf, f, s.mean, s.rstd, f, s.x, w, layout.lnfGain, layout.lnfBias, n, C, eps);
            for (int i = 0; i < count; i++) {
                last[i] = first[i + 1] - 1;
            }
        } else {
            for (int i = 0; i < count; i++) {
                f.copy(f, s.x + (first[i + 1] - 1) * C, s.ln + i * C, C);
                last[i] = i;
            }
            Kernels.layerNorm(f, s.lnf, f, s.mean, s.rstd, f, s.ln, w, layout.lnfGain, layout.lnfBias, count, C, eps);
        }
        head.multiply(f, s.lnf, out, f, s.logits, threads);
        float[][] logits = new float[count][];
        float[] rewards = new float[count];
        for (int i = 0; i < count; i++) {
            int from = everyPosition ? first[i] : i;
            int rows = everyPosition ? tokens[i].length : 1;
            logits[i] = new float[rows * V];
            f.copyTo(logits[i], s.logits + from * V);
            rewards[i] = reward(f, s.lnf + last[i] * C);
        }
        return new Output(logits, rewards);
    }

    /**
     * Attention for one sequence's {@code rows} new rows (from row {@code first} of the scratch) in
     * {@code slot}: their keys and values are stored in the cache, then softmax(q kᵀ / √hd) v over
     * every position seen, head by head, into the heads' outputs. {@code lane} is the calling
     * thread's own scratch.
     */
    private void attend(Cache cache, int layer, int slot, int first, int rows, Lane lane) {
        int start = cache.length[slot];
        if (cache.bf16 != null) {
            attendBf16(cache.bf16, layer, slot, first, rows, start, lane);
            return;
        }
        Floats f = s.f;
        int seen = start + rows;
        for (int h = 0; h < H; h++) {
            for (int r = 0; r < rows; r++) {
                int from = (first + r) * C + h * hd;
                cache.keys.copy(f, s.k + from, cache.at(layer, slot, h, start + r), hd);
                cache.values.copy(f, s.v + from, cache.at(layer, slot, h, start + r), hd);
            }
            int q = s.q + first * C + h * hd;
            int kv = cache.at(layer, slot, h, 0);
            Blas.sgemm(false, true, rows, seen, hd, scale, f, q, C, cache.keys, kv, hd, 0f, f, lane.scores, seen);
            Kernels.causalSoftmax(f, lane.scores, rows, start);
            Blas.sgemm(false, false, rows, hd, seen, 1f, f, lane.scores, seen, cache.values, kv, hd, 0f, f, s.atty + first * C + h * hd, C);
        }
    }

    /**
     * {@link #attend} over a bfloat16 cache: the rows' keys and values are stored first, rounded,
     * so that every position is read back as the cache holds it. One row runs
     * {@link Bf16KeyValues#attend}; more go through sgemm on the head unpacked to float32, as a
     * float32 cache's do.
     */
    private void attendBf16(Bf16KeyValues cache, int layer, int slot, int first, int rows, int start, Lane lane) {
        Floats f = s.f;
        int seen = start + rows;
        for (int r = 0; r < rows; r++) {
            f.read(s.k + (first + r) * C, lane.keyRow, 0, C);
            f.read(s.v + (first + r) * C, lane.valueRow, 0, C);
            for (int h = 0; h < H; h++) {
                cache.put(layer, slot, h, start + r, lane.keyRow, h * hd, lane.valueRow, h * hd);
            }
        }
        if (rows == 1) {
            f.read(s.q + first * C, lane.queryRow, 0, C);
            for (int h = 0; h < H; h++) {
                cache.attend(layer, slot, h, seen, lane.queryRow, h * hd, scale, lane.outRow, h * hd, lane.work);
            }
            f.write(s.atty + first * C, lane.outRow, 0, C);
            return;
        }
        for (int h = 0; h < H; h++) {
            cache.unpack(layer, slot, h, seen, lane.headKeys, lane.headValues);
            f.write(lane.keys, lane.headKeys, 0, seen * hd);
            f.write(lane.values, lane.headValues, 0, seen * hd);
            Blas.sgemm(false, true, rows, seen, hd, scale, f, s.q + first * C + h * hd, C, f, lane.keys, hd, 0f, f, lane.scores, seen);
            Kernels.causalSoftmax(f, lane.scores, rows, start);
            Blas.sgemm(false, false, rows, hd, seen, 1f, f, lane.scores, seen, f, lane.values, hd, 0f, f, s.atty + first * C + h * hd, C);
        }
    }

    /** The reward head on one final hidden state. */
    private float reward(Floats f, int hidden) {
        double r = w.get(layout.rewardB);
        for (int i = 0; i < C; i++) {
            r += (double) f.get(hidden + i) * w.get(layout.rewardW + i);
        }
        return (float) r;
    }

    /** {@code scratch[outOff] = scratch[inOff][n, W's rows] · W + bias}. */
    private void linear(int outOff, int inOff, int n, Matrix weight, int bias) {
        weight.multiply(s.f, inOff, n, s.f, outOff, threads);
        Kernels.addBias(s.f, outOff, w, bias, n, weight.cols());
    }

    /** Every argument checked before anything changes: a refused call leaves the cache as it was. */
    private int check(Cache cache, int[] slots, int[][] tokens) {
        if (slots.length != tokens.length || slots.length == 0) {
            throw new IllegalArgumentException(slots.length + " slots for " + tokens.length + " token lists");
        }
        boolean[] used = new boolean[cache.slots];
        for (int i = 0; i < slots.length; i++) {
            int slot = slots[i];
            if (slot < 0 || slot >= cache.slots || used[slot]) {
                throw new IllegalArgumentException("slot " + slot + " is outside the cache's " + cache.slots + " or given twice");
            }
            used[slot] = true;
            int n = tokens[i].length;
            if (n == 0) {
                throw new IllegalArgumentException("no tokens for slot " + slot);
            }
            if (n > cache.remaining(slot)) {
                throw new IllegalArgumentException("context of " + T + " tokens is full: "
                        + cache.length[slot] + " used, " + n + " more asked");
            }
            for (int id : tokens[i]) {
                if (id < 0 || id >= V) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + V);
                }
            }
        }
        return slots.length;
    }

    /**
     * One block of scratch for a step of up to {@code rows} new positions and {@code outputs} logit
     * rows, with a {@link Lane} of attention scratch for each of up to {@code threads} threads.
     */
    private final class Scratch {
        final int rows;
        final int outputs;
        final int scoreSize;
        final Floats f;
        final int x;           // [rows, C]: the residual stream
        final int ln;          // [rows, C]: a layer norm's output (and, at the end, the rows picked for output)
        final int mean, rstd;  // [rows]: its statistics (unused here, the kernel keeps them for backward)
        final int q, k, v;     // [rows, C]
        final int atty;        // [rows, C]: the heads' outputs, side by side
        final int branch;      // [rows, C]: a residual branch's output
        final int fc;          // [rows, F]
        final int lnf;         // [outputs, C]
        final int logits;      // [outputs, V]
        final Lane[] lanes;

        Scratch(int rows, int outputs, int scoreSize, int threads) {
            this.rows = rows;
            this.outputs = outputs;
            this.scoreSize = scoreSize;
            long next = 0;
            long nc = (long) rows * C;
            x = (int) next; next += nc;
            ln = (int) next; next += nc;
            mean = (int) next; next += rows;
            rstd = (int) next; next += rows;
            q = (int) next; next += nc;
            k = (int) next; next += nc;
            v = (int) next; next += nc;
            atty = (int) next; next += nc;
            branch = (int) next; next += nc;
            fc = (int) next; next += (long) rows * F;
            lnf = (int) next; next += (long) outputs * C;
            logits = (int) next; next += (long) outputs * V;
            lanes = new Lane[threads];
            for (int i = 0; i < threads; i++) {
                lanes[i] = new Lane((int) next, (int) (next + scoreSize), (int) (next + scoreSize + (long) T * hd));
                next += scoreSize + 2L * T * hd;
            }
            f = Floats.zeros(Math.toIntExact(next));
        }
    }

    /** What one thread's attention works in: its part of the scratch block, and arrays on the heap. */
    private final class Lane {
        final int scores;       // one head's [new rows, seen positions] block
        final int keys, values; // [T, hd] each: one head of a bfloat16 cache, unpacked for sgemm
        // For a bfloat16 cache's loops: one row's query, key, value and output [C], attention's
        // work, and one head's keys and values unpacked [T, hd].
        final float[] queryRow = new float[C], keyRow = new float[C], valueRow = new float[C], outRow = new float[C];
        final float[] work = new float[Bf16KeyValues.workSize(T, hd)];
        final float[] headKeys = new float[T * hd], headValues = new float[T * hd];

        Lane(int scores, int keys, int values) {
            this.scores = scores;
            this.keys = keys;
            this.values = values;
        }
    }
}
