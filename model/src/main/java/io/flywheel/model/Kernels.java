package io.flywheel.model;

/**
 * The engine's fused loops: everything in a step that is not a matrix multiply, each forward
 * beside its backward, written over flat float memory with offsets as in llm.c's
 * {@code train_gpt2.c}. Shapes are given as row counts ({@code n}) and widths; a tensor
 * [n, c] is row-major. Backward passes <em>add</em> into their gradient buffers, so that a
 * tensor used twice (the tied embedding) collects both contributions.
 */
final class Kernels {

    private Kernels() {}

    /**
     * Floats per chunk of an element-wise loop: copied to an array, worked on, copied back (the
     * arrays stay in the L1 cache, so the copies cost little next to what vectorizing wins).
     */
    private static final int CHUNK = 1024;

    // --- embeddings --------------------------------------------------------------------------

    /**
     * {@code out[r] = wte[tokens[from + r]] + wpe[position + r]} for {@code count} consecutive
     * positions of one sequence, from {@code position} on (a training row starts at 0; a decode
     * step at the length of its cache).
     */
    static void embed(Floats out, int outOff, Floats w, int wte, int wpe, int[] tokens, int from, int count, int position, int c) {
        float[] e = new float[c];
        float[] p = new float[c];
        for (int r = 0; r < count; r++) {
            w.read(wte + tokens[from + r] * c, e, 0, c);
            w.read(wpe + (position + r) * c, p, 0, c);
            for (int i = 0; i < c; i++) {
                e[i] += p[i];
            }
            out.write(outOff + r * c, e, 0, c);
        }
    }

    /** The scatter: {@code dwte[tokens[r]] += dout[r]} and {@code dwpe[t] += dout[r]}; repeated ids add up. */
    static void embedBackward(Floats dw, int dwte, int dwpe, Floats dout, int doutOff, int[] tokens, int T, int c) {
        float[] d = new float[c];
        float[] e = new float[c];
        float[] positions = new float[T * c];     // Σ over rows, added to dwpe once
        for (int r = 0; r < tokens.length; r++) {
            dout.read(doutOff + r * c, d, 0, c);
            int e0 = dwte + tokens[r] * c;
            dw.read(e0, e, 0, c);
            int p0 = (r % T) * c;
            for (int i = 0; i < c; i++) {
                e[i] += d[i];
                positions[p0 + i] += d[i];
            }
            dw.write(e0, e, 0, c);
        }
        accumulate(dw, dwpe, positions, T * c);
    }

    // --- layer norm --------------------------------------------------------------------------

    /**
     * {@code out = (x - mean) · rstd · gain + bias} over each row, with {@code rstd = 1/√(var + eps)}
     * (the biased variance, as PyTorch and ND4J compute it); mean and rstd are kept for backward.
     */
    static void layerNorm(Floats out, int outOff, Floats stats, int meanOff, int rstdOff,
                          Floats x, int xOff, Floats w, int gain, int bias, int n, int c, float eps) {
        float[] g = new float[c];
        float[] b = new float[c];
        float[] row = new float[c];
        w.read(gain, g, 0, c);
        w.read(bias, b, 0, c);
        for (int r = 0; r < n; r++) {
            x.read(xOff + r * c, row, 0, c);
            float m = (float) (VectorMath.sum(row, c) / c);
            float s = (float) (1.0 / Math.sqrt(VectorMath.squaredDeviations(row, m, c) / c + eps));
            for (int i = 0; i < c; i++) {
                row[i] = (row[i] - m) * s * g[i] + b[i];
            }
            out.write(outOff + r * c, row, 0, c);
            stats.set(meanOff + r, m);
            stats.set(rstdOff + r, s);
        }
    }

    /**
     * With {@code x̂ = (x - mean) · rstd} and {@code g = dout · gain}:
     * {@code dx += rstd · (g - mean(g) - x̂ · mean(g · x̂))}, {@code dgain += dout · x̂}, {@code dbias += dout}.
     */
    static void layerNormBackward(Floats dx, int dxOff, Floats dw, int dgain, int dbias, Floats dout, int doutOff,
                                  Floats x, int xOff, Floats stats, int meanOff, int rstdOff, Floats w, int gain, int n, int c) {
        float[] gn = new float[c];
        float[] dg = new float[c];     // Σ over rows, added to dw once
        float[] db = new float[c];
        float[] xhat = new float[c];
        float[] up = new float[c];
        float[] g = new float[c];
        float[] d = new float[c];
        w.read(gain, gn, 0, c);
        for (int r = 0; r < n; r++) {
            x.read(xOff + r * c, xhat, 0, c);
            dout.read(doutOff + r * c, up, 0, c);
            dx.read(dxOff + r * c, d, 0, c);
            float m = stats.get(meanOff + r);
            float s = stats.get(rstdOff + r);
            for (int i = 0; i < c; i++) {
                xhat[i] = (xhat[i] - m) * s;
                g[i] = up[i] * gn[i];
            }
            float a = (float) (VectorMath.sum(g, c) / c);
            float b = (float) (VectorMath.dot(g, xhat, c) / c);
            for (int i = 0; i < c; i++) {
                d[i] += s * (g[i] - a - xhat[i] * b);
                dg[i] += up[i] * xhat[i];
                db[i] += up[i];
            }
            dx.write(dxOff + r * c, d, 0, c);
        }
        accumulate(dw, dgain, dg, c);
        accumulate(dw, dbias, db, c);
    }

    // --- biases and residuals ----------------------------------------------------------------

    /** {@code x[r] += bias} for n rows of width c. */
    static void addBias(Floats x, int xOff, Floats w, int bias, int n, int c) {
        float[] b = new float[c];
        float[] row = new float[c];
        w.read(bias, b, 0, c);
        for (int r = 0; r < n; r++) {
            x.read(xOff + r * c, row, 0, c);
            for (int i = 0; i < c; i++) {
                row[i] += b[i];
            }
            x.write(xOff + r * c, row, 0, c);
        }
    }

    /**
     * {@code out[r] = residual[r] + bias} for n rows of width c (no residual: {@code residual == null}),
     * so that a matrix multiply with {@code beta = 1} then adds its product: one pass over the
     * output instead of three (sgemm's zeroing, the bias, the residual).
     */
    static void biasRows(Floats out, int outOff, Floats residual, int residualOff, Floats w, int bias, int n, int c) {
        float[] b = new float[c];
        float[] row = new float[c];
        w.read(bias, b, 0, c);
        for (int r = 0; r < n; r++) {
            if (residual == null) {
                out.write(outOff + r * c, b, 0, c);
                continue;
            }
            residual.read(residualOff + r * c, row, 0, c);
            for (int i = 0; i < c; i++) {
                row[i] += b[i];
            }
            out.write(outOff + r * c, row, 0, c);
        }
    }

    /** {@code dbias += Σ_r dy[r]}. */
    static void biasBackward(Floats dw, int dbias, Floats dy, int dyOff, int n, int c) {
        float[] db = new float[c];
        float[] row = new float[c];
        for (int r = 0; r < n; r++) {
            dy.read(dyOff + r * c, row, 0, c);
            for (int i = 0; i < c; i++) {
                db[i] += row[i];
            }
        }
        accumulate(dw, dbias, db, c);
    }

    /** {@code out = a + b}, element by element over {@code len} floats. */
    static void add(Floats out, int outOff, Floats a, int aOff, Floats b, int bOff, int len) {
        float[] x = new float[CHUNK];
        float[] y = new float[CHUNK];
        for (int o = 0; o < len; o += CHUNK) {
            int k = Math.min(CHUNK, len - o);
            a.read(aOff + o, x, 0, k);
            b.read(bOff + o, y, 0, k);
            for (int i = 0; i < k; i++) {
                x[i] += y[i];
            }
            out.write(outOff + o, x, 0, k);
        }
    }

    /** {@code x *= m}, element by element (a dropout mask). */
    static void multiply(Floats x, int xOff, Floats m, int mOff, int len) {
        float[] a = new float[CHUNK];
        float[] b = new float[CHUNK];
        for (int o = 0; o < len; o += CHUNK) {
            int k = Math.min(CHUNK, len - o);
            x.read(xOff + o, a, 0, k);
            m.read(mOff + o, b, 0, k);
            for (int i = 0; i < k; i++) {
                a[i] *= b[i];
            }
            x.write(xOff + o, a, 0, k);
        }
    }

    /** {@code out += a}, element by element. */
    static void accumulate(Floats out, int outOff, Floats a, int aOff, int len) {
        add(out, outOff, out, outOff, a, aOff, len);
    }

    /** {@code out[outOff ..] += a[0 .. len)}. */
    private static void accumulate(Floats out, int outOff, float[] a, int len) {
        float[] x = new float[Math.min(CHUNK, len)];
        for (int o = 0; o < len; o += CHUNK) {
            int k = Math.min(CHUNK, len - o);
            out.read(outOff + o, x, 0, k);
            for (int i = 0; i < k; i++) {
                x[i] += a[o + i];
            }
            out.write(outOff + o, x, 0, k);
        }
    }

    // --- GELU --------------------------------------------------------------------------------

    /**
     * {@code out = gelu(x)} in the config's form: {@code x · σ(1.702x) = x / (1 + e^(-1.702x))}, or
     * GPT-2's {@code x/2 · (1 + tanh(u))} with {@code tanh(u) = 1 - 2 / (e^(2u) + 1)}, so that both
     * run on the vectorized exp.
     */
    static void gelu(Activation form, Floats out, int outOff, Floats x, int xOff, int len) {
        float[] v = new float[CHUNK];
        float[] e = new float[CHUNK];
        boolean quick = form == Activation.QUICK_GELU;
        for (int o = 0; o < len; o += CHUNK) {
            int k = Math.min(CHUNK, len - o);
            x.read(xOff + o, v, 0, k);
            if (quick) {
                for (int i = 0; i < k; i++) {
                    e[i] = -1.702f * v[i];
                }
                VectorMath.exp(e, 0, k);
                for (int i = 0; i < k; i++) {
                    e[i] = v[i] / (1 + e[i]);
                }
            } else {
                for (int i = 0; i < k; i++) {
                    e[i] = 2 * VectorMath.GELU_TANH_SLOPE * (v[i] + VectorMath.GELU_TANH_COEFFICIENT * v[i] * v[i] * v[i]);
                }
                VectorMath.exp(e, 0, k);
                for (int i = 0; i < k; i++) {
                    float tanh = 1 - 2 / (e[i] + 1);
                    e[i] = 0.5f * v[i] * (1 + tanh);
                }
            }
            out.write(outOff + o, e, 0, k);
        }
    }

    /**
     * {@code dx = gelu'(x) · dout} over n rows of width c, written rather than added (nothing else
     * flows into the MLP's pre-activation), and in the same pass {@code dbias += Σ_r dx[r]}, the
     * gradient of the bias that pre-activation was given. The sigmoid (or tanh) the derivative
     * needs is recovered from the forward's output {@code y} ({@link VectorMath#geluGradient}).
     */
    static void geluBackward(Activation form, Floats dx, int dxOff, Floats x, int xOff, Floats y, int yOff,
                             Floats dout, int doutOff, int n, int c, Floats dw, int dbias) {
        float[] v = new float[c];
        float[] out = new float[c];
        float[] up = new float[c];
        float[] d = new float[c];
        float[] db = new float[c];
        for (int r = 0; r < n; r++) {
            x.read(xOff + r * c, v, 0, c);
            y.read(yOff + r * c, out, 0, c);
            dout.read(doutOff + r * c, up, 0, c);
            VectorMath.geluGradient(form, v, out, up, d, c);
            for (int i = 0; i < c; i++) {
                db[i] += d[i];
            }
            dx.write(dxOff + r * c, d, 0, c);
        }
        accumulate(dw, dbias, db, c);
    }

    static float sigmoid(float x) {
        return (float) (1 / (1 + Math.exp(-x)));
    }

    // --- causal softmax ----------------------------------------------------------------------

    /**
     * In place over a [rows, start + rows] block of scores, for {@code rows} new positions that
     * follow {@code start} earlier ones: row i becomes the softmax of its first start + i + 1
     * entries (the positions it may see); the rest become 0. Training passes a [T, T] block with
     * {@code start = 0}; a decode step one row that sees the whole cache.
     */
    static void causalSoftmax(Floats s, int off, int rows, int start) {
        int width = start + rows;
        float[] row = new float[width];
        for (int i = 0; i < rows; i++) {
            int seen = start + i + 1;
            s.read(off + i * width, row, 0, seen);
            float max = VectorMath.max(row, seen);
            for (int j = 0; j < seen; j++) {
                row[j] -= max;
            }
            VectorMath.exp(row, 0, seen);
            float inv = (float) (1 / VectorMath.sum(row, seen));
            for (int j = 0; j < seen; j++) {
                row[j] *= inv;
            }
            java.util.Arrays.fill(row, seen, width, 0f);
            s.write(off + i * width, row, 0, width);
        }
    }

    /**
     * In place over a [T, T] block of gradients with respect to the probabilities {@code p}: it
     * becomes the gradient with respect to the scores, {@code ds = p ⊙ (dp - Σ_j p·dp)} per row
     * (zero where the mask hid a position).
     */
    static void causalSoftmaxBackward(Floats dp, int dpOff, Floats p, int pOff, int T) {
        float[] g = new float[T];
        float[] q = new float[T];
        for (int i = 0; i < T; i++) {
            int seen = i + 1;
            dp.read(dpOff + i * T, g, 0, seen);
            p.read(pOff + i * T, q, 0, seen);
            float d = (float) VectorMath.dot(q, g, seen);
            for (int j = 0; j < seen; j++) {
                g[j] = q[j] * (g[j] - d);
            }
            java.util.Arrays.fill(g, seen, T, 0f);
            dp.write(dpOff + i * T, g, 0, T);
        }
    }

    // --- cross-entropy -----------------------------------------------------------------------

    /** Log-probabilities below this are clipped (and pass no gradient): see {@link Transformer}. */
    static final float LOG_PROB_FLOOR = -80f;

    /**
     * The log-probability of each row's target under the softmax of its logits, clipped at
     * {@link #LOG_PROB_FLOOR}. In place: each logit becomes {@code exp(logit - max)} and
     * {@code sums} keeps each row's total, so that {@link #logProbBackward} needs no second exp.
     */
    static void targetLogProbs(float[] picked, Floats sums, int sumsOff, Floats logits, int logitsOff, int[] targets, int n, int v) {
        float[] row = new float[v];
        for (int r = 0; r < n; r++) {
            logits.read(logitsOff + r * v, row, 0, v);
            float max = VectorMath.max(row, v);
            float target = row[targets[r]];
            for (int i = 0; i < v; i++) {
                row[i] -= max;
            }
            VectorMath.exp(row, 0, v);
            double sum = VectorMath.sum(row, v);
            logits.write(logitsOff + r * v, row, 0, v);
            sums.set(sumsOff + r, (float) sum);
            picked[r] = (float) Math.max(LOG_PROB_FLOOR, target - max - Math.log(sum));
        }
    }

    /**
     * In place over what {@link #targetLogProbs} left: the gradient of
     * {@code Σ_r coefficient[r] · picked[r]} by the logits, {@code coefficient[r] · (onehot(target) - softmax)}
     * per row, and 0 for a row whose target was clipped or whose coefficient is 0.
     */
    static void logProbBackward(Floats exps, int expsOff, Floats sums, int sumsOff, float[] picked, float[] coefficient,
                                int[] targets, int n, int v) {
        float[] row = new float[v];
        for (int r = 0; r < n; r++) {
            float c = coefficient[r];
            if (c == 0 || picked[r] <= LOG_PROB_FLOOR) {
                java.util.Arrays.fill(row, 0f);
            } else {
                exps.read(expsOff + r * v, row, 0, v);
                float scale = -c / sums.get(sumsOff + r);
                for (int i = 0; i < v; i++) {
                    row[i] *= scale;
                }
                row[targets[r]] += c;
            }
            exps.write(expsOff + r * v, row, 0, v);
        }
    }

    /** {@code log(1 + e^x)} without overflow. */
    static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }
}
