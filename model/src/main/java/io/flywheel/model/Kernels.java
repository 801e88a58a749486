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

    // --- embeddings --------------------------------------------------------------------------

    /**
     * {@code out[r] = wte[tokens[from + r]] + wpe[position + r]} for {@code count} consecutive
     * positions of one sequence, from {@code position} on (a training row starts at 0; a decode
     * step at the length of its cache).
     */
    static void embed(Floats out, int outOff, Floats w, int wte, int wpe, int[] tokens, int from, int count, int position, int c) {
        for (int r = 0; r < count; r++) {
            int o = outOff + r * c;
            int e = wte + tokens[from + r] * c;
            int p = wpe + (position + r) * c;
            for (int i = 0; i < c; i++) {
                out.set(o + i, w.get(e + i) + w.get(p + i));
            }
        }
    }

    /** The scatter: {@code dwte[tokens[r]] += dout[r]} and {@code dwpe[t] += dout[r]}; repeated ids add up. */
    static void embedBackward(Floats dw, int dwte, int dwpe, Floats dout, int doutOff, int[] tokens, int T, int c) {
        for (int r = 0; r < tokens.length; r++) {
            int d = doutOff + r * c;
            int e = dwte + tokens[r] * c;
            int p = dwpe + (r % T) * c;
            for (int i = 0; i < c; i++) {
                float g = dout.get(d + i);
                dw.add(e + i, g);
                dw.add(p + i, g);
            }
        }
    }

    // --- layer norm --------------------------------------------------------------------------

    /**
     * {@code out = (x - mean) · rstd · gain + bias} over each row, with {@code rstd = 1/√(var + eps)}
     * (the biased variance, as PyTorch and ND4J compute it); mean and rstd are kept for backward.
     */
    static void layerNorm(Floats out, int outOff, Floats stats, int meanOff, int rstdOff,
                          Floats x, int xOff, Floats w, int gain, int bias, int n, int c, float eps) {
        for (int r = 0; r < n; r++) {
            int row = xOff + r * c;
            double sum = 0;
            for (int i = 0; i < c; i++) {
                sum += x.get(row + i);
            }
            float m = (float) (sum / c);
            double squares = 0;
            for (int i = 0; i < c; i++) {
                float d = x.get(row + i) - m;
                squares += d * d;
            }
            float s = (float) (1.0 / Math.sqrt(squares / c + eps));
            int o = outOff + r * c;
            for (int i = 0; i < c; i++) {
                out.set(o + i, (x.get(row + i) - m) * s * w.get(gain + i) + w.get(bias + i));
            }
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
        for (int r = 0; r < n; r++) {
            int row = xOff + r * c;
            int d = doutOff + r * c;
            float m = stats.get(meanOff + r);
            float s = stats.get(rstdOff + r);
            double gMean = 0;
            double gxMean = 0;
            for (int i = 0; i < c; i++) {
                float xhat = (x.get(row + i) - m) * s;
                float g = dout.get(d + i) * w.get(gain + i);
                gMean += g;
                gxMean += g * xhat;
            }
            float a = (float) (gMean / c);
            float b = (float) (gxMean / c);
            int o = dxOff + r * c;
            for (int i = 0; i < c; i++) {
                float xhat = (x.get(row + i) - m) * s;
                float up = dout.get(d + i);
                float g = up * w.get(gain + i);
                dx.add(o + i, s * (g - a - xhat * b));
                dw.add(dgain + i, up * xhat);
                dw.add(dbias + i, up);
            }
        }
    }

    // --- biases and residuals ----------------------------------------------------------------

    /** {@code x[r] += bias} for n rows of width c. */
    static void addBias(Floats x, int xOff, Floats w, int bias, int n, int c) {
        for (int r = 0; r < n; r++) {
            int o = xOff + r * c;
            for (int i = 0; i < c; i++) {
                x.add(o + i, w.get(bias + i));
            }
        }
    }

    /** {@code dbias += Σ_r dy[r]}. */
    static void biasBackward(Floats dw, int dbias, Floats dy, int dyOff, int n, int c) {
        for (int r = 0; r < n; r++) {
            int o = dyOff + r * c;
            for (int i = 0; i < c; i++) {
                dw.add(dbias + i, dy.get(o + i));
            }
        }
    }

    /** {@code out = a + b}, element by element over {@code len} floats. */
    static void add(Floats out, int outOff, Floats a, int aOff, Floats b, int bOff, int len) {
        for (int i = 0; i < len; i++) {
            out.set(outOff + i, a.get(aOff + i) + b.get(bOff + i));
        }
    }

    /** {@code x *= m}, element by element (a dropout mask). */
    static void multiply(Floats x, int xOff, Floats m, int mOff, int len) {
        for (int i = 0; i < len; i++) {
            x.set(xOff + i, x.get(xOff + i) * m.get(mOff + i));
        }
    }

    /** {@code out += a}, element by element. */
    static void accumulate(Floats out, int outOff, Floats a, int aOff, int len) {
        for (int i = 0; i < len; i++) {
            out.add(outOff + i, a.get(aOff + i));
        }
    }

    // --- GELU --------------------------------------------------------------------------------

    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2 / Math.PI);

    /** {@code out = gelu(x)} in the config's form. */
    static void gelu(Activation form, Floats out, int outOff, Floats x, int xOff, int len) {
        if (form == Activation.QUICK_GELU) {
            for (int i = 0; i < len; i++) {
                float v = x.get(xOff + i);
                out.set(outOff + i, v * sigmoid(1.702f * v));
            }
        } else {
            for (int i = 0; i < len; i++) {
                float v = x.get(xOff + i);
                float t = (float) Math.tanh(SQRT_2_OVER_PI * (v + 0.044715f * v * v * v));
                out.set(outOff + i, 0.5f * v * (1 + t));
            }
        }
    }

    /**
     * {@code dx += gelu'(x) · dout}, given the forward's output {@code y}: the sigmoid (or tanh) the
     * derivative needs is recovered from it ({@code σ = y / x}, {@code tanh = 2y/x - 1}) instead of
     * computed again, which took a third of the small model's time outside the multiplies.
     */
    static void geluBackward(Activation form, Floats dx, int dxOff, Floats x, int xOff, Floats y, int yOff,
                             Floats dout, int doutOff, int len) {
        if (form == Activation.QUICK_GELU) {
            for (int i = 0; i < len; i++) {
                float v = x.get(xOff + i);
                float s = v != 0 ? y.get(yOff + i) / v : 0.5f;
                dx.add(dxOff + i, dout.get(doutOff + i) * (s + 1.702f * v * s * (1 - s)));
            }
        } else {
            for (int i = 0; i < len; i++) {
                float v = x.get(xOff + i);
                float t = v != 0 ? 2 * y.get(yOff + i) / v - 1 : 0f;
                float du = SQRT_2_OVER_PI * (1 + 3 * 0.044715f * v * v);
                float local = 0.5f * (1 + t) + 0.5f * v * (1 - t * t) * du;
                dx.add(dxOff + i, dout.get(doutOff + i) * local);
            }
        }
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
        for (int i = 0; i < rows; i++) {
            int row = off + i * width;
            int seen = start + i + 1;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < seen; j++) {
                max = Math.max(max, s.get(row + j));
            }
            double sum = 0;
            for (int j = 0; j < seen; j++) {
                float e = (float) Math.exp(s.get(row + j) - max);
                s.set(row + j, e);
                sum += e;
            }
            float inv = (float) (1 / sum);
            for (int j = 0; j < seen; j++) {
                s.set(row + j, s.get(row + j) * inv);
            }
            for (int j = seen; j < width; j++) {
                s.set(row + j, 0f);
            }
        }
    }

    /**
     * In place over a [T, T] block of gradients with respect to the probabilities {@code p}: it
     * becomes the gradient with respect to the scores, {@code ds = p ⊙ (dp - Σ_j p·dp)} per row
     * (zero where the mask hid a position).
     */
    static void causalSoftmaxBackward(Floats dp, int dpOff, Floats p, int pOff, int T) {
        for (int i = 0; i < T; i++) {
            int g = dpOff + i * T;
            int q = pOff + i * T;
            double dot = 0;
            for (int j = 0; j <= i; j++) {
                dot += p.get(q + j) * dp.get(g + j);
            }
            float d = (float) dot;
            for (int j = 0; j <= i; j++) {
                dp.set(g + j, p.get(q + j) * (dp.get(g + j) - d));
            }
            for (int j = i + 1; j < T; j++) {
                dp.set(g + j, 0f);
            }
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
        for (int r = 0; r < n; r++) {
            int row = logitsOff + r * v;
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                max = Math.max(max, logits.get(row + i));
            }
            float target = logits.get(row + targets[r]);
            double sum = 0;
            for (int i = 0; i < v; i++) {
                float e = (float) Math.exp(logits.get(row + i) - max);
                logits.set(row + i, e);
                sum += e;
            }
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
        for (int r = 0; r < n; r++) {
            int row = expsOff + r * v;
            float c = coefficient[r];
            if (c == 0 || picked[r] <= LOG_PROB_FLOOR) {
                exps.fill(row, row + v, 0f);
                continue;
            }
            float scale = -c / sums.get(sumsOff + r);
            for (int i = 0; i < v; i++) {
                exps.set(row + i, scale * exps.get(row + i));
            }
            exps.add(row + targets[r], c);
        }
    }

    /** {@code log(1 + e^x)} without overflow. */
    static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }
}
