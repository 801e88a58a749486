package io.flywheel.model;

/**
 * The network's forward and backward pass over a batch of rows of {@code T = context} tokens,
 * written out as llm.c's {@code train_gpt2.c} writes GPT-2: token and position embeddings, pre-norm
 * blocks of causal multi-head attention and a GELU MLP, a final layer norm and the output
 * projection (the token embedding, transposed, when tied). Matrix multiplies go to
 * {@link Blas#sgemm} on the buffers as they lie (a head is a column slice of q, k and v, passed
 * with its row stride); everything else is a fused loop in {@link Kernels}.
 *
 * <p>The forward keeps what the backward needs in {@link Activations}; the loss is not computed
 * here: the caller reads {@link #targetLogProbs} and {@link #reward}, works out each target's
 * coefficient in its objective (next-token cross-entropy, DPO) and each row's reward gradient
 * (Bradley-Terry), and hands them to {@link #backward}, which adds every parameter's gradient
 * into the gradient block, laid out as the parameters are.
 *
 * <p>Not thread-safe: one step at a time. With {@code dropout > 0} every forward draws new masks
 * (this class runs training steps only; evaluation and serving never drop).
 */
final class Transformer {

    private final GptConfig config;
    private final Layout layout;
    private final Floats w;
    private final int C;
    private final int T;
    private final int H;
    private final int hd;
    private final int V;
    private final int F;          // the MLP's hidden width
    private final float eps;
    private final float scale;    // 1/√hd on the attention scores

    private Activations a;        // the last forward's, reused while the row count stays
    private int[] tokens;

    // Inverted dropout (config.dropout() = p): on the attention probabilities and on both residual
    // branches, as GPT-2 and nanoGPT place it; kept entries are scaled by 1/(1-p).
    private final float keep;
    private final java.util.SplittableRandom random;
    private boolean frozenMasks;  // tests: the next forwards reuse the masks drawn last

    Transformer(GptConfig config, Layout layout, Floats parameters, long seed) {
        this.config = config;
        this.layout = layout;
        this.w = parameters;
        this.C = config.width();
        this.T = config.contextLength();
        this.H = config.heads();
        this.hd = config.headSize();
        this.V = config.vocabSize();
        this.F = config.mlpRatio() * config.width();
        this.eps = (float) config.layerNormEpsilon();
        this.scale = (float) (1 / Math.sqrt(hd));
        this.keep = (float) (1 - config.dropout());
        this.random = new java.util.SplittableRandom(seed);
    }

    /** For gradient checks: every later forward uses the dropout masks of the last one. */
    void freezeDropoutMasks() {
        frozenMasks = true;
    }

    private boolean dropout() {
        return keep < 1;
    }

    /** Draws a mask over {@code len} floats (0, or 1/keep with probability keep), unless frozen. */
    private void drawMask(Floats m, int off, int len) {
        if (frozenMasks) {
            return;
        }
        float kept = 1 / keep;
        for (int i = 0; i < len; i++) {
            m.set(off + i, random.nextFloat() < keep ? kept : 0f);
        }
    }

    /**
     * Where head {@code pair}'s probabilities are as its values are mixed with them: {@code P}
     * itself in {@code a.f}, or under dropout {@code P ⊙ M}, written to {@code a.dropped} in
     * {@code a.g} ({@link #mixingBuffer}).
     */
    private int mixingProbabilities(int l, int pair) {
        int probs = a.att[l] + pair * T * T;
        if (!dropout()) {
            return probs;
        }
        a.g.copy(a.f, probs, a.dropped, T * T);
        Kernels.multiply(a.g, a.dropped, a.f, a.attMask[l] + pair * T * T, T * T);
        return a.dropped;
    }

    private Floats mixingBuffer() {
        return dropout() ? a.g : a.f;
    }

    /**
     * What a forward keeps: each layer's inputs to its layer norms, matrix multiplies and softmax,
     * one block of floats with an offset per tensor (N = rows · T), sized for {@code capacity} rows.
     */
    private static final class Activations {
        /** Rows the buffers have room for: a smaller batch uses a prefix of each tensor. */
        final int capacity;
        int rows;
        int n;
        final Floats f;
        final int encoded;                 // [N, C]: the residual stream entering block 0
        final int[] ln1, ln1Mean, ln1Rstd; // [N, C], [N], [N]
        final int[] q, k, v;               // [N, C] each; head h is columns h·hd .. (h+1)·hd
        final int[] att;                   // [rows, H, T, T]: attention probabilities
        final int[] atty;                  // [N, C]: the heads' outputs, side by side
        final int[] res1;                  // [N, C]: the residual stream after attention
        final int[] ln2, ln2Mean, ln2Rstd;
        final int[] fc;                    // [N, F]: before GELU
        final int[] fcGelu;                // [N, F]: after
        final int[] res2;                  // [N, C]: the block's output
        final int lnf, lnfMean, lnfRstd;
        final int logits;                  // [N, V]: the logits, then exp(logit - max), then their gradient
        final int lse;                     // [N]: each row's Σ exp(logit - max)

        // Backward's scratch.
        final Floats g;
        final int dres, dln, dq, dk, dv, datty, dfc, dfcGelu, dscores;

        final int[] attMask, out1Mask, out2Mask;   // dropout masks, [rows, H, T, T] and [N, C] twice; empty without dropout
        final int dbranch, dropped;                // backward: a branch's masked gradient [N, C]; a head's dropped probabilities [T, T]

        Activations(int capacity, int layers, int T, int C, int H, int F, int V, boolean dropout) {
            this.capacity = capacity;
            int rows = capacity;
            int n = rows * T;
            long next = 0;
            encoded = 0;
            next += (long) n * C;
            ln1 = new int[layers];
            ln1Mean = new int[layers];
            ln1Rstd = new int[layers];
            q = new int[layers];
            k = new int[layers];
            v = new int[layers];
            att = new int[layers];
            atty = new int[layers];
            res1 = new int[layers];
            ln2 = new int[layers];
            ln2Mean = new int[layers];
            ln2Rstd = new int[layers];
            fc = new int[layers];
            fcGelu = new int[layers];
            res2 = new int[layers];
            long nc = (long) n * C;
            for (int l = 0; l < layers; l++) {
                ln1[l] = (int) next; next += nc;
                ln1Mean[l] = (int) next; next += n;
                ln1Rstd[l] = (int) next; next += n;
                q[l] = (int) next; next += nc;
                k[l] = (int) next; next += nc;
                v[l] = (int) next; next += nc;
                att[l] = (int) next; next += (long) rows * H * T * T;
                atty[l] = (int) next; next += nc;
                res1[l] = (int) next; next += nc;
                ln2[l] = (int) next; next += nc;
                ln2Mean[l] = (int) next; next += n;
                ln2Rstd[l] = (int) next; next += n;
                fc[l] = (int) next; next += (long) n * F;
                fcGelu[l] = (int) next; next += (long) n * F;
                res2[l] = (int) next; next += nc;
            }
            attMask = new int[layers];
            out1Mask = new int[layers];
            out2Mask = new int[layers];
            for (int l = 0; dropout && l < layers; l++) {
                attMask[l] = (int) next; next += (long) rows * H * T * T;
                out1Mask[l] = (int) next; next += nc;
                out2Mask[l] = (int) next; next += nc;
            }
            lnf = (int) next; next += nc;
            lnfMean = (int) next; next += n;
            lnfRstd = (int) next; next += n;
            logits = (int) next; next += (long) n * V;
            lse = (int) next; next += n;
            f = Floats.zeros(Math.toIntExact(next));

            long g0 = 0;
            dres = (int) g0; g0 += nc;
            dln = (int) g0; g0 += nc;
            dq = (int) g0; g0 += nc;
            dk = (int) g0; g0 += nc;
            dv = (int) g0; g0 += nc;
            datty = (int) g0; g0 += nc;
            dfc = (int) g0; g0 += (long) n * F;
            dfcGelu = (int) g0; g0 += (long) n * F;
            dscores = (int) g0; g0 += (long) T * T;
            dbranch = (int) g0; g0 += dropout ? nc : 0;
            dropped = (int) g0; g0 += dropout ? (long) T * T : 0;
            g = Floats.zeros(Math.toIntExact(g0));
        }
    }

    // --- forward -------------------------------------------------------------------------------

    /** Runs {@code tokens} ([rows, T], row-major; every id already checked) up to the logits. */
    void forward(int[] tokens, int rows) {
        if (tokens.length != rows * T) {
            throw new IllegalArgumentException(tokens.length + " tokens are not " + rows + " rows of " + T);
        }
        if (a == null || a.capacity < rows) {
            // Room for the largest batch so far: preference batches vary in size, and reallocating
            // hundreds of megabytes off the heap every step would leave the freeing to the GC.
            a = new Activations(rows, config.layers(), T, C, H, F, V, dropout());
        }
        a.rows = rows;
        a.n = rows * T;
        this.tokens = tokens;
        Floats f = a.f;
        int n = a.n;
        for (int b = 0; b < rows; b++) {
            Kernels.embed(f, a.encoded + b * T * C, w, layout.wte, layout.wpe, tokens, b * T, T, 0, C);
        }
        for (int l = 0; l < config.layers(); l++) {
            Layout.Block p = layout.blocks[l];
            int x = l == 0 ? a.encoded : a.res2[l - 1];

            // Attention: res1 = x + (softmax(q kᵀ / √hd, causal) v) Wo + bo, with q, k, v from ln1(x).
            Kernels.layerNorm(f, a.ln1[l], f, a.ln1Mean[l], a.ln1Rstd[l], f, x, w, p.ln1Gain(), p.ln1Bias(), n, C, eps);
            linear(f, a.q[l], f, a.ln1[l], n, C, C, p.wq(), p.bq());
            linear(f, a.k[l], f, a.ln1[l], n, C, C, p.wk(), p.bk());
            linear(f, a.v[l], f, a.ln1[l], n, C, C, p.wv(), p.bv());
            for (int b = 0; b < rows; b++) {
                for (int h = 0; h < H; h++) {
                    int head = b * T * C + h * hd;           // row 0 of this head in q, k, v, atty
                    int probs = a.att[l] + (b * H + h) * T * T;
                    Blas.sgemm(false, true, T, T, hd, scale, f, a.q[l] + head, C, f, a.k[l] + head, C, 0f, f, probs, T);
                    Kernels.causalSoftmax(f, probs, T, 0);
                    if (dropout()) {
                        drawMask(f, a.attMask[l] + (b * H + h) * T * T, T * T);
                    }
                    int mixed = mixingProbabilities(l, b * H + h);
                    Blas.sgemm(false, false, T, hd, T, 1f, mixingBuffer(), mixed, T, f, a.v[l] + head, C, 0f, f, a.atty[l] + head, C);
                }
            }
            residualBranch(a.res1[l], x, a.atty[l], C, p.wo(), p.bo(), a.out1Mask[l]);

            // MLP: res2 = res1 + gelu(ln2(res1) Wfc + bfc) Wproj + bproj.
            Kernels.layerNorm(f, a.ln2[l], f, a.ln2Mean[l], a.ln2Rstd[l], f, a.res1[l], w, p.ln2Gain(), p.ln2Bias(), n, C, eps);
            linear(f, a.fc[l], f, a.ln2[l], n, C, F, p.wfc(), p.bfc());
            Kernels.gelu(config.activation(), f, a.fcGelu[l], f, a.fc[l], n * F);
            residualBranch(a.res2[l], a.res1[l], a.fcGelu[l], F, p.wproj(), p.bproj(), a.out2Mask[l]);
        }
        int last = a.res2[config.layers() - 1];
        Kernels.layerNorm(f, a.lnf, f, a.lnfMean, a.lnfRstd, f, last, w, layout.lnfGain, layout.lnfBias, n, C, eps);
        if (layout.head < 0) {
            Blas.sgemm(false, true, n, V, C, 1f, f, a.lnf, C, w, layout.wte, C, 0f, f, a.logits, V);
        } else {
            Blas.sgemm(false, false, n, V, C, 1f, f, a.lnf, C, w, layout.head, V, 0f, f, a.logits, V);
        }
    }

    /** {@code out[n, outWidth] = in[n, inWidth] · W[inWidth, outWidth] + bias}: the bias is written first, the product added to it. */
    private void linear(Floats out, int outOff, Floats in, int inOff, int n, int inWidth, int outWidth, int weight, int bias) {
        Kernels.biasRows(out, outOff, null, 0, w, bias, n, outWidth);
        Blas.sgemm(false, false, n, outWidth, inWidth, 1f, in, inOff, inWidth, w, weight, outWidth, 1f, out, outOff, outWidth);
    }

    /**
     * A block's residual connection around a projection: {@code out = residual + dropout(in · W + bias)},
     * with {@code in} [n, inWidth] and {@code out} [n, C]. Without dropout, residual plus bias is
     * written first and the product added to it.
     */
    private void residualBranch(int out, int residual, int in, int inWidth, int weight, int bias, int mask) {
        Floats f = a.f;
        int n = a.n;
        if (!dropout()) {
            Kernels.biasRows(f, out, f, residual, w, bias, n, C);
            Blas.sgemm(false, false, n, C, inWidth, 1f, f, in, inWidth, w, weight, C, 1f, f, out, C);
            return;
        }
        linear(f, out, f, in, n, inWidth, C, weight, bias);
        drawMask(f, mask, n * C);
        Kernels.multiply(f, out, f, mask, n * C);
        Kernels.accumulate(f, out, f, residual, n * C);
    }

    /** The last forward's logits, [rows · T · V] (before {@link #targetLogProbs} turns them into exps). */
    float[] logits() {
        float[] out = new float[a.n * V];
        a.f.copyTo(out, a.logits);
        return out;
    }

    /**
     * Each position's log-probability of its target (clipped at {@link Kernels#LOG_PROB_FLOOR}),
     * [rows · T]. Leaves the softmax's numerators and sums for the backward (the logits are gone).
     */
    float[] targetLogProbs(int[] targets) {
        float[] picked = new float[a.n];
        Kernels.targetLogProbs(picked, a.f, a.lse, a.f, a.logits, targets, a.n, V);
        return picked;
    }

    /** The reward head on the final hidden state at {@code position} of {@code row}. */
    float reward(int row, int position) {
        int h = a.lnf + (row * T + position) * C;
        double r = w.get(layout.rewardB);
        for (int i = 0; i < C; i++) {
            r += (double) a.f.get(h + i) * w.get(layout.rewardW + i);
        }
        return (float) r;
    }

    // --- backward ------------------------------------------------------------------------------

    /**
     * Adds into {@code dw} (laid out as the parameters) the gradient of
     * {@code Σ_i coefficient[i] · picked[i] + Σ_row rewardGrad[row] · reward(row, lastPosition[row])}
     * for the last forward, where {@code picked} is what {@link #targetLogProbs} returned.
     *
     * @param rewardGrad   per row, the objective's derivative by the row's reward; {@code null}: no reward term
     * @param lastPosition per row, the position the reward is read at
     */
    void backward(float[] picked, float[] coefficient, int[] targets, float[] rewardGrad, int[] lastPosition, Floats dw) {
        Floats f = a.f;
        Floats g = a.g;
        int n = a.n;
        int rows = a.rows;
        // The residual stream's gradient is the one buffer the layer norms' backward adds into;
        // every other scratch tensor is written before it is read.
        g.fill(a.dres, a.dres + n * C, 0f);

        // The output projection: logits = lnf · Wᵀ (tied) or lnf · head.
        Kernels.logProbBackward(f, a.logits, f, a.lse, picked, coefficient, targets, n, V);
        if (layout.head < 0) {
            Blas.sgemm(false, false, n, C, V, 1f, f, a.logits, V, w, layout.wte, C, 0f, g, a.dln, C);
            Blas.sgemm(true, false, V, C, n, 1f, f, a.logits, V, f, a.lnf, C, 1f, dw, layout.wte, C);
        } else {
            Blas.sgemm(false, true, n, C, V, 1f, f, a.logits, V, w, layout.head, V, 0f, g, a.dln, C);
            Blas.sgemm(true, false, C, V, n, 1f, f, a.lnf, C, f, a.logits, V, 1f, dw, layout.head, V);
        }
        // The reward head: r = lnf[last] · rw + rb.
        if (rewardGrad != null) {
            for (int b = 0; b < rows; b++) {
                float dr = rewardGrad[b];
                if (dr == 0) {
                    continue;
                }
                int h = (b * T + lastPosition[b]) * C;
                for (int i = 0; i < C; i++) {
                    g.add(a.dln + h + i, dr * w.get(layout.rewardW + i));
                    dw.add(layout.rewardW + i, dr * f.get(a.lnf + h + i));
                }
                dw.add(layout.rewardB, dr);
            }
        }
        int last = a.res2[config.layers() - 1];
        Kernels.layerNormBackward(g, a.dres, dw, layout.lnfGain, layout.lnfBias, g, a.dln,
                f, last, f, a.lnfMean, a.lnfRstd, w, layout.lnfGain, n, C);

        // dres is the gradient of the residual stream; each block adds its branches' share.
        for (int l = config.layers() - 1; l >= 0; l--) {
            Layout.Block p = layout.blocks[l];
            int x = l == 0 ? a.encoded : a.res2[l - 1];

            // MLP branch: out = fcGelu · Wproj + bproj, and d(out) = dres.
            int dout = branchGradient(a.out2Mask[l]);
            Blas.sgemm(true, false, F, C, n, 1f, f, a.fcGelu[l], F, g, dout, C, 1f, dw, p.wproj(), C);
            Kernels.biasBackward(dw, p.bproj(), g, dout, n, C);
            Blas.sgemm(false, true, n, F, C, 1f, g, dout, C, w, p.wproj(), C, 0f, g, a.dfcGelu, F);
            Kernels.geluBackward(config.activation(), g, a.dfc, f, a.fc[l], f, a.fcGelu[l], g, a.dfcGelu, n, F, dw, p.bfc());
            Blas.sgemm(true, false, C, F, n, 1f, f, a.ln2[l], C, g, a.dfc, F, 1f, dw, p.wfc(), F);
            Blas.sgemm(false, true, n, C, F, 1f, g, a.dfc, F, w, p.wfc(), F, 0f, g, a.dln, C);
            Kernels.layerNormBackward(g, a.dres, dw, p.ln2Gain(), p.ln2Bias(), g, a.dln,
                    f, a.res1[l], f, a.ln2Mean[l], a.ln2Rstd[l], w, p.ln2Gain(), n, C);

            // Attention branch: out = atty · Wo + bo, and d(out) = dres.
            dout = branchGradient(a.out1Mask[l]);
            Blas.sgemm(true, false, C, C, n, 1f, f, a.atty[l], C, g, dout, C, 1f, dw, p.wo(), C);
            Kernels.biasBackward(dw, p.bo(), g, dout, n, C);
            Blas.sgemm(false, true, n, C, C, 1f, g, dout, C, w, p.wo(), C, 0f, g, a.datty, C);
            for (int b = 0; b < rows; b++) {
                for (int h = 0; h < H; h++) {
                    int head = b * T * C + h * hd;
                    int probs = a.att[l] + (b * H + h) * T * T;
                    // y = P' v with P' = P (⊙ M under dropout): dP' = dy vᵀ, dv = P'ᵀ dy, dP = dP' (⊙ M).
                    int mixed = mixingProbabilities(l, b * H + h);
                    Blas.sgemm(false, true, T, T, hd, 1f, g, a.datty + head, C, f, a.v[l] + head, C, 0f, g, a.dscores, T);
                    Blas.sgemm(true, false, T, hd, T, 1f, mixingBuffer(), mixed, T, g, a.datty + head, C, 0f, g, a.dv + head, C);
                    if (dropout()) {
                        Kernels.multiply(g, a.dscores, f, a.attMask[l] + (b * H + h) * T * T, T * T);
                    }
                    // P = softmax(S), S = q kᵀ / √hd: dq = dS k / √hd, dk = dSᵀ q / √hd.
                    Kernels.causalSoftmaxBackward(g, a.dscores, f, probs, T);
                    Blas.sgemm(false, false, T, hd, T, scale, g, a.dscores, T, f, a.k[l] + head, C, 0f, g, a.dq + head, C);
                    Blas.sgemm(true, false, T, hd, T, scale, g, a.dscores, T, f, a.q[l] + head, C, 0f, g, a.dk + head, C);
                }
            }
            linearBackward(p.wq(), p.bq(), a.ln1[l], a.dq, 0f, dw);
            linearBackward(p.wk(), p.bk(), a.ln1[l], a.dk, 1f, dw);
            linearBackward(p.wv(), p.bv(), a.ln1[l], a.dv, 1f, dw);
            Kernels.layerNormBackward(g, a.dres, dw, p.ln1Gain(), p.ln1Bias(), g, a.dln,
                    f, x, f, a.ln1Mean[l], a.ln1Rstd[l], w, p.ln1Gain(), n, C);
        }
        Kernels.embedBackward(dw, layout.wte, layout.wpe, g, a.dres, tokens, T, C);
    }

    /** Where a residual branch's output gradient is: dres itself, or dres ⊙ mask under dropout. */
    private int branchGradient(int mask) {
        if (!dropout()) {
            return a.dres;
        }
        a.g.copy(a.g, a.dres, a.dbranch, a.n * C);
        Kernels.multiply(a.g, a.dbranch, a.f, mask, a.n * C);
        return a.dbranch;
    }

    /**
     * For {@code y = ln1 · W + b} (C to C): {@code dW += ln1ᵀ dy}, {@code db += Σ dy}, and
     * {@code dln = dy Wᵀ + beta · dln} (q, k and v share their input, so their shares add up).
     */
    private void linearBackward(int weight, int bias, int input, int dy, float beta, Floats dw) {
        Floats f = a.f;
        Floats g = a.g;
        int n = a.n;
        Blas.sgemm(true, false, C, C, n, 1f, f, input, C, g, dy, C, 1f, dw, weight, C);
        Kernels.biasBackward(dw, bias, g, dy, n, C);
        Blas.sgemm(false, true, n, C, C, 1f, g, dy, C, w, weight, C, beta, g, a.dln, C);
    }
}
