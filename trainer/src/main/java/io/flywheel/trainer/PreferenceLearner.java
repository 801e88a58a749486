package io.flywheel.trainer;

import io.flywheel.model.AdamW;
import io.flywheel.model.Gpt;
import io.flywheel.model.Inference;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Learning from feedback, with no Kafka in it: preference pairs and supervised examples come in
 * through {@link #add}; each {@link #step} trains the reward head (Bradley-Terry) and the policy
 * (DPO against the reference, the promoted model) on fresh pairs, topped up with replayed ones, and
 * the answer tokens of fresh supervised examples; {@link #evaluate} scores a model on held-out pairs.
 *
 * <p>Every fresh example is trained once in the model's history (the pending ones are part of the
 * checkpoint, like the packer's tokens). A share of the pairs, chosen by a hash of their content,
 * is held out and never trained: the pair accuracy on it is what the gate and the metrics report.
 */
final class PreferenceLearner {

    /** Settings of preference learning ({@code pref.*}). */
    record Settings(int pairsPerStep, int supervisedPerStep, int everySteps, double rewardWeight, double dpoWeight,
                    double beta, double learningRateScale, double holdoutShare, int holdoutPairs, int replayPairs) {
        Settings {
            if (!(learningRateScale > 0)) {
                throw new IllegalArgumentException("pref.lr-scale must be positive");
            }
            if (pairsPerStep < 1 || supervisedPerStep < 0 || everySteps < 1 || holdoutPairs < 0 || replayPairs < 0) {
                throw new IllegalArgumentException("pref.* sizes must be positive");
            }
            if (!(holdoutShare >= 0 && holdoutShare < 1) || !(beta > 0) || rewardWeight < 0 || dpoWeight < 0) {
                throw new IllegalArgumentException("pref.holdout-share must be within [0, 1), pref.beta positive, weights >= 0");
            }
        }
    }

    /** A pair (chosen and rejected answers to a prompt) or a supervised example (rejected empty). */
    record Example(int[] prompt, int[] chosen, int[] rejected) {
        boolean isPair() {
            return rejected.length > 0;
        }

        /** One array for storage: the three lengths, then the three id sequences. */
        int[] pack() {
            int[] out = new int[3 + prompt.length + chosen.length + rejected.length];
            out[0] = prompt.length;
            out[1] = chosen.length;
            out[2] = rejected.length;
            System.arraycopy(prompt, 0, out, 3, prompt.length);
            System.arraycopy(chosen, 0, out, 3 + prompt.length, chosen.length);
            System.arraycopy(rejected, 0, out, 3 + prompt.length + chosen.length, rejected.length);
            return out;
        }

        static Example unpack(int[] packed) {
            int p = packed[0];
            int c = packed[1];
            int r = packed[2];
            if (p < 0 || c < 0 || r < 0 || 3 + p + c + r != packed.length) {
                throw new IllegalArgumentException("not a packed example");
            }
            return new Example(Arrays.copyOfRange(packed, 3, 3 + p), Arrays.copyOfRange(packed, 3 + p, 3 + p + c),
                    Arrays.copyOfRange(packed, 3 + p + c, packed.length));
        }
    }

    /** What one preference step did. */
    record Step(int pairs, int freshPairs, int supervised, double loss, double rewardLoss, double dpoLoss,
                double rewardAccuracy, double dpoAccuracy, double gradientNorm, double seconds) {}

    /** A model's score on the held-out pairs (revision {@code revision}). */
    record Evaluation(int pairs, double rewardAccuracy, double dpoAccuracy, double rewardMargin, long revision) {}

    private final Settings settings;
    private final int context;
    private final Deque<Example> freshPairs;
    private final Deque<Example> freshSupervised;
    private final Rehearsal replay;
    private final Deque<Example> heldOut;
    private long heldOutRevision;
    private long examplesTrained;

    PreferenceLearner(Settings settings, int context, PreferenceSnapshot restored) {
        this.settings = settings;
        this.context = context;
        PreferenceSnapshot s = restored == null ? PreferenceSnapshot.EMPTY : restored;
        this.freshPairs = new ArrayDeque<>(s.pending().stream().map(Example::unpack).filter(Example::isPair).toList());
        this.freshSupervised = new ArrayDeque<>(s.pending().stream().map(Example::unpack).filter(e -> !e.isPair()).toList());
        this.replay = Rehearsal.restore(settings.replayPairs(), s.replay(), s.replaySeen());
        this.heldOut = new ArrayDeque<>(s.heldOut().stream().map(Example::unpack).toList());
        this.heldOutRevision = s.heldOutRevision();
        this.examplesTrained = s.examplesTrained();
    }

    /** What goes into {@code stream.bin}: pending examples, the replay sample and the held-out pairs. */
    record PreferenceSnapshot(List<int[]> pending, List<int[]> replay, long replaySeen, List<int[]> heldOut,
                              long heldOutRevision, long examplesTrained) {
        static final PreferenceSnapshot EMPTY = new PreferenceSnapshot(List.of(), List.of(), 0, List.of(), 0, 0);
    }

    PreferenceSnapshot snapshot() {
        List<int[]> pending = new ArrayList<>();
        freshPairs.forEach(e -> pending.add(e.pack()));
        freshSupervised.forEach(e -> pending.add(e.pack()));
        return new PreferenceSnapshot(pending, replay.windows(), replay.seen(),
                heldOut.stream().map(Example::pack).toList(), heldOutRevision, examplesTrained);
    }

    /**
     * Takes one example from {@code preferences}. Pairs whose content hashes below the holdout
     * share are held out (the newest {@code holdoutPairs} are kept); the rest wait to be trained.
     *
     * @return whether the example was held out
     */
    boolean add(Example example) {
        if (example.isPair() && heldOutByContent(example)) {
            heldOut.addLast(example);
            while (heldOut.size() > settings.holdoutPairs()) {
                heldOut.removeFirst();
            }
            heldOutRevision++;
            return true;
        }
        if (example.isPair()) {
            freshPairs.addLast(example);
        } else if (settings.supervisedPerStep() > 0) {
            freshSupervised.addLast(example);
        }
        return false;
    }

    private boolean heldOutByContent(Example e) {
        long h = 1125899906842597L;
        for (int[] part : new int[][] {e.prompt(), e.chosen(), e.rejected()}) {
            for (int id : part) {
                h = 31 * h + id;
            }
            h = 31 * h - 1;
        }
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        return (h >>> 11) * 0x1.0p-53 < settings.holdoutShare();
    }

    int pendingPairs() {
        return freshPairs.size();
    }

    int pendingSupervised() {
        return freshSupervised.size();
    }

    int heldOutPairs() {
        return heldOut.size();
    }

    long examplesTrained() {
        return examplesTrained;
    }

    /**
     * Whether a preference step should run now. With fresh examples waiting: after
     * {@code everySteps} language steps, at once when a full batch waits, or when there is no
     * language step to interleave with. Without fresh examples, replayed pairs keep the reward head
     * learning on the same schedule once they fill a batch (a handful of pairs replayed over and
     * over would only be memorised), and only while language steps run: an idle trainer does not
     * spin on old pairs.
     */
    boolean due(long languageStepsSince, boolean languageReady) {
        if (freshPairs.isEmpty() && freshSupervised.isEmpty()) {
            return replay.size() >= settings.pairsPerStep() && languageStepsSince >= settings.everySteps();
        }
        return !languageReady || languageStepsSince >= settings.everySteps() || freshPairs.size() >= settings.pairsPerStep();
    }

    /**
     * One optimizer step on preferences.
     *
     * @param reference the promoted model, frozen; {@code null} before any: the policy's own start is then the reference
     * @param seed      the trainer's seed mixed with the step number, so a resumed run replays the same pairs
     */
    Step step(Gpt model, AdamW optimizer, Inference reference, SplittableRandom random) {
        long started = System.nanoTime();
        List<Example> pairs = new ArrayList<>();
        while (pairs.size() < settings.pairsPerStep() && !freshPairs.isEmpty()) {
            pairs.add(freshPairs.removeFirst());
        }
        int fresh = pairs.size();
        while (pairs.size() < settings.pairsPerStep() && replay.size() > 0 && pairs.size() < fresh + replay.size()) {
            pairs.add(Example.unpack(replay.draw(random)));
        }
        List<Example> supervised = new ArrayList<>();
        while (supervised.size() < settings.supervisedPerStep() && !freshSupervised.isEmpty()) {
            supervised.add(freshSupervised.removeFirst());
        }
        Inference self = reference != null ? null : new Inference(model);
        Inference ref = reference != null ? reference : self;
        List<Gpt.Sequence> chosen = new ArrayList<>();
        List<Gpt.Sequence> rejected = new ArrayList<>();
        float[] referenceMargins = new float[pairs.size()];
        try {
            for (int i = 0; i < pairs.size(); i++) {
                Example e = pairs.get(i);
                chosen.add(Gpt.Sequence.fit(e.prompt(), e.chosen(), context));
                rejected.add(Gpt.Sequence.fit(e.prompt(), e.rejected(), context));
                referenceMargins[i] = (float) (ref.answerLogProbability(chosen.get(i)) - ref.answerLogProbability(rejected.get(i)));
            }
        } finally {
            if (self != null) {
                self.close();      // its scratch; the weights are the model's
            }
        }
        List<Gpt.Sequence> sft = supervised.stream().map(e -> Gpt.Sequence.fit(e.prompt(), e.chosen(), context)).toList();
        Gpt.PreferenceGradients g = model.preferenceGradients(chosen, rejected, referenceMargins, sft,
                pairs.isEmpty() ? 0 : settings.rewardWeight(), pairs.isEmpty() ? 0 : settings.dpoWeight(), settings.beta());
        // The body moves gently (DPO at the language rate undoes language learning within steps);
        // the reward head, which only preference steps train, at the full rate.
        AdamW.Update update = optimizer.apply(model.parameters(), g.byParameter(),
                name -> name.startsWith("reward.") ? 1.0 : settings.learningRateScale());
        for (int i = 0; i < fresh; i++) {
            replay.offer(pairs.get(i).pack(), random);
        }
        examplesTrained += fresh + supervised.size();
        int rewardRight = 0;
        int dpoRight = 0;
        for (int i = 0; i < pairs.size(); i++) {
            rewardRight += g.rewardMargins()[i] > 0 ? 1 : 0;
            dpoRight += g.policyMargins()[i] - referenceMargins[i] > 0 ? 1 : 0;
        }
        double n = Math.max(1, pairs.size());
        return new Step(pairs.size(), fresh, supervised.size(), g.loss(), g.rewardLoss(), g.dpoLoss(), rewardRight / n,
                dpoRight / n, update.gradientNorm(), (System.nanoTime() - started) / 1e9);
    }

    /**
     * Scores a model on the held-out pairs: how often its reward head prefers the chosen answer,
     * and how often its implicit DPO reward does (against {@code reference}); {@code null} without
     * held-out pairs.
     */
    Evaluation evaluate(Inference policy, Inference reference) {
        if (heldOut.isEmpty()) {
            return null;
        }
        int rewardRight = 0;
        int dpoRight = 0;
        double margin = 0;
        for (Example e : heldOut) {
            Gpt.Sequence c = Gpt.Sequence.fit(e.prompt(), e.chosen(), context);
            Gpt.Sequence r = Gpt.Sequence.fit(e.prompt(), e.rejected(), context);
            double m = policy.reward(c.tokens()) - policy.reward(r.tokens());
            margin += m;
            rewardRight += m > 0 ? 1 : 0;
            if (reference != null) {
                double implicit = (policy.answerLogProbability(c) - reference.answerLogProbability(c))
                        - (policy.answerLogProbability(r) - reference.answerLogProbability(r));
                dpoRight += implicit > 0 ? 1 : 0;
            }
        }
        int n = heldOut.size();
        return new Evaluation(n, (double) rewardRight / n, reference == null ? Double.NaN : (double) dpoRight / n,
                margin / n, heldOutRevision);
    }
}
