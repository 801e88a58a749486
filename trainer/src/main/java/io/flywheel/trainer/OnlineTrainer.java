package io.flywheel.trainer;

import io.flywheel.model.AdamW;
import io.flywheel.model.Gpt;
import io.flywheel.model.Inference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The learning half of the trainer, with no Kafka in it (nanoGPT's {@code train.py} loop, made
 * online): documents come in through {@link #addTraining} and {@link #addValidation}; each
 * {@link #step} trains one batch of fresh windows mixed with rehearsed ones; {@link #evaluate}
 * scores any model on the held-out documents.
 */
final class OnlineTrainer {

    /** One optimizer step: what it cost and what it trained. */
    record Step(long step, double loss, int windows, int freshWindows, double learningRate, double gradientNorm,
                boolean clipped, double seconds, List<Packer.Window> fresh) {}

    /** A model's score on the evaluation set (revision {@code revision}). */
    record Evaluation(double loss, double perplexity, double bitsPerByte, long tokens, long revision) {}

    private final Gpt model;
    private final AdamW optimizer;
    private final Packer packer;
    private final EvaluationSet evaluation;
    private final Rehearsal rehearsal;
    private final int batch;
    private final double rehearsalRatio;
    private final long seed;
    private final int[] tokenBytes;       // UTF-8 bytes of each token id (special tokens: 0), for bits per byte
    private long tokensTrained;

    OnlineTrainer(Gpt model, AdamW optimizer, Packer packer, EvaluationSet evaluation, Rehearsal rehearsal,
                  int batch, double rehearsalRatio, long seed, int[] tokenBytes, long tokensTrained) {
        if (batch < 1) {
            throw new IllegalArgumentException("batch must be at least 1");
        }
        if (!(rehearsalRatio >= 0 && rehearsalRatio < 1)) {
            throw new IllegalArgumentException("rehearsal ratio must be in [0, 1)");
        }
        this.model = model;
        this.optimizer = optimizer;
        this.packer = packer;
        this.evaluation = evaluation;
        this.rehearsal = rehearsal;
        this.batch = batch;
        this.rehearsalRatio = rehearsalRatio;
        this.seed = seed;
        this.tokenBytes = tokenBytes;
        this.tokensTrained = tokensTrained;
    }

    void addTraining(int partition, long offset, int[] ids) {
        packer.add(partition, offset, ids);
    }

    void addValidation(int[] ids) {
        evaluation.add(ids);
    }

    /** Rehearsed windows in a batch once the sample holds any: the configured share, at least one fresh. */
    int rehearsedPerBatch() {
        return rehearsal.size() == 0 ? 0 : Math.min(batch - 1, (int) Math.round(batch * rehearsalRatio));
    }

    boolean stepReady() {
        return packer.windowsReady() >= batch - rehearsedPerBatch();
    }

    Step step() {
        long started = System.nanoTime();
        long step = optimizer.steps();
        // One generator per step, derived from the seed: resuming from a checkpoint draws the same.
        SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + step);
        int rehearsed = rehearsedPerBatch();
        int freshCount = batch - rehearsed;
        List<Packer.Window> fresh = new ArrayList<>(freshCount);
        for (int i = 0; i < freshCount; i++) {
            fresh.add(packer.cut());
        }
        int T = model.config().contextLength();
        int[][] inputs = new int[batch][];
        int[][] targets = new int[batch][];
        for (int b = 0; b < batch; b++) {
            int[] window = b < freshCount ? fresh.get(b).tokens() : rehearsal.draw(random);
            inputs[b] = Arrays.copyOfRange(window, 0, T);
            targets[b] = Arrays.copyOfRange(window, 1, T + 1);
        }
        Gpt.Gradients g = model.gradients(inputs, targets, null);
        AdamW.Update update = optimizer.apply(model.parameters(), g.byParameter());
        for (Packer.Window w : fresh) {
            rehearsal.offer(w.tokens(), random);
        }
        tokensTrained += (long) freshCount * T;
        double seconds = (System.nanoTime() - started) / 1e9;
        return new Step(step + 1, g.loss(), batch, freshCount, update.learningRate(), update.gradientNorm(),
                update.clipped(), seconds, fresh);
    }

    /** Scores a model (this one, or a reference) on the evaluation set; {@code null} when the set is empty. */
    Evaluation evaluate(Inference inference) {
        if (evaluation.isEmpty()) {
            return null;
        }
        double nll = 0;
        long tokens = 0;
        long bytes = 0;
        for (int[] window : evaluation.windows(model.config().contextLength())) {
            nll += inference.negativeLogLikelihood(window);
            tokens += window.length - 1;
            for (int i = 1; i < window.length; i++) {
                bytes += tokenBytes[window[i]];
            }
        }
        double loss = nll / tokens;
        return new Evaluation(loss, Math.exp(loss), nll / Math.log(2) / Math.max(1, bytes), tokens, evaluation.revision());
    }

    long evaluationRevision() {
        return evaluation.revision();
    }

    Gpt model() {
        return model;
    }

    AdamW optimizer() {
        return optimizer;
    }

    long steps() {
        return optimizer.steps();
    }

    long tokensTrained() {
        return tokensTrained;
    }

    int pendingTokens() {
        return packer.pendingTokens();
    }

    int evaluationTokens() {
        return evaluation.tokens();
    }

    StreamState streamState(PreferenceLearner.PreferenceSnapshot preferences) {
        return new StreamState(packer.snapshot(), evaluation.documents(), evaluation.revision(),
                rehearsal.windows(), rehearsal.seen(), tokensTrained, preferences);
    }
}
