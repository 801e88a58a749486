package io.flywheel.trainer;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

/** The trainer's Prometheus metrics, all prefixed {@code flywheel_trainer_}. */
final class TrainerMetrics {

    private final Counter tokensTrained;
    private final Counter steps;
    private final Counter records;
    private final Counter refused;
    private final Gauge tokensPerSecond;
    private final Histogram stepSeconds;
    private final Gauge loss;
    private final Gauge learningRate;
    private final Gauge gradientNorm;
    private final Gauge flops;
    private final Gauge mfu;
    private final Gauge peakFlops;
    private final Gauge validationLoss;
    private final Gauge validationPerplexity;
    private final Gauge validationBitsPerByte;
    private final Gauge lag;
    private final Gauge pendingTokens;
    private final Gauge checkpointVersion;
    private final Gauge checkpointTimestamp;
    private final Gauge promotedVersion;
    private final Counter gate;
    private final Histogram checkpointSeconds;
    private final Counter preferenceSteps;
    private final Counter skippedSteps;
    private final Counter publishFailures;
    private final Counter checkpointFailures;
    private final Counter damaged;
    private final Counter preferenceExamples;
    private final Counter preferenceRecords;
    private final Gauge preferenceLoss;
    private final Gauge rewardLoss;
    private final Gauge dpoLoss;
    private final Gauge rewardAccuracy;
    private final Gauge dpoAccuracy;
    private final Gauge rewardMargin;
    private final Gauge heldOutPairs;
    private final Gauge pendingPreferences;
    private volatile long lastCheckpointMillis;

    TrainerMetrics(PrometheusRegistry registry) {
        tokensTrained = Counter.builder().name("flywheel_trainer_tokens_trained")
                .help("Fresh tokens trained on (targets of windows from the tokens topic; rehearsal not counted)").register(registry);
        steps = Counter.builder().name("flywheel_trainer_steps").help("Language-model optimizer steps (preference steps are counted apart)").register(registry);
        records = Counter.builder().name("flywheel_trainer_records")
                .help("Token records consumed, by split").labelNames("split").register(registry);
        refused = Counter.builder().name("flywheel_trainer_records_refused")
                .help("Token records refused, by reason (tokenizer_mismatch, malformed, token_out_of_range)")
                .labelNames("reason").register(registry);
        tokensPerSecond = Gauge.builder().name("flywheel_trainer_tokens_per_second")
                .help("Tokens per second of the last step (fresh and rehearsed)").register(registry);
        stepSeconds = Histogram.builder().name("flywheel_trainer_step_seconds")
                .help("Time of one optimizer step (forward, backward, update)")
                .classicOnly().classicExponentialUpperBounds(0.01, 2, 14).register(registry);
        loss = Gauge.builder().name("flywheel_trainer_loss").help("Training loss of the last step (nats per token)").register(registry);
        learningRate = Gauge.builder().name("flywheel_trainer_learning_rate").help("Learning rate of the last step").register(registry);
        gradientNorm = Gauge.builder().name("flywheel_trainer_gradient_norm")
                .help("Global L2 norm of the gradients of the last step, before clipping").register(registry);
        flops = Gauge.builder().name("flywheel_trainer_flops_per_second")
                .help("Estimated training FLOP/s of the last step (6 x weights + attention, per token)").register(registry);
        mfu = Gauge.builder().name("flywheel_trainer_mfu")
                .help("Model FLOPs utilisation: flops_per_second / peak_flops").register(registry);
        peakFlops = Gauge.builder().name("flywheel_trainer_peak_flops")
                .help("The matrix-multiply peak MFU is measured against (measured at start, or configured)").register(registry);
        validationLoss = Gauge.builder().name("flywheel_trainer_validation_loss")
                .help("Validation loss at the last checkpoint (nats per token)").register(registry);
        validationPerplexity = Gauge.builder().name("flywheel_trainer_validation_perplexity")
                .help("Validation perplexity at the last checkpoint").register(registry);
        validationBitsPerByte = Gauge.builder().name("flywheel_trainer_validation_bits_per_byte")
                .help("Validation bits per UTF-8 byte at the last checkpoint").register(registry);
        lag = Gauge.builder().name("flywheel_trainer_consumer_lag")
                .help("Records on the tokens topic not yet read by the trainer").register(registry);
        pendingTokens = Gauge.builder().name("flywheel_trainer_pending_tokens")
                .help("Tokens read but not yet trained (waiting for a full batch)").register(registry);
        checkpointVersion = Gauge.builder().name("flywheel_trainer_checkpoint_version")
                .help("Version of the last checkpoint written").register(registry);
        checkpointTimestamp = Gauge.builder().name("flywheel_trainer_checkpoint_timestamp_seconds")
                .help("Unix time of the last checkpoint written").register(registry);
        GaugeWithCallback.builder().name("flywheel_trainer_checkpoint_age_seconds")
                .help("Seconds since the last checkpoint was written (or since start)")
                .callback(cb -> cb.call((System.currentTimeMillis() - lastCheckpointMillis) / 1000.0))
                .register(registry);
        promotedVersion = Gauge.builder().name("flywheel_trainer_promoted_version")
                .help("Version of the checkpoint last promoted to serving (0: none)").register(registry);
        gate = Counter.builder().name("flywheel_trainer_gate_decisions")
                .help("Quality-gate decisions, by decision (accept, reject) and reason").labelNames("decision", "reason")
                .register(registry);
        checkpointSeconds = Histogram.builder().name("flywheel_trainer_checkpoint_seconds")
                .help("Time to evaluate, write and gate one checkpoint")
                .classicOnly().classicExponentialUpperBounds(0.05, 2, 12).register(registry);
        preferenceSteps = Counter.builder().name("flywheel_trainer_preference_steps")
                .help("Optimizer steps on preferences (reward model, DPO, supervised answers)").register(registry);
        preferenceExamples = Counter.builder().name("flywheel_trainer_preference_examples_trained")
                .help("Fresh preference examples trained, by kind (pair, supervised)").labelNames("kind").register(registry);
        preferenceRecords = Counter.builder().name("flywheel_trainer_preference_records")
                .help("Preference records consumed, by use (train, heldout)").labelNames("use").register(registry);
        preferenceLoss = Gauge.builder().name("flywheel_trainer_preference_loss")
                .help("Total loss of the last preference step").register(registry);
        rewardLoss = Gauge.builder().name("flywheel_trainer_reward_loss")
                .help("Bradley-Terry loss of the last preference step (mean over its pairs)").register(registry);
        dpoLoss = Gauge.builder().name("flywheel_trainer_dpo_loss")
                .help("DPO loss of the last preference step (mean over its pairs)").register(registry);
        rewardAccuracy = Gauge.builder().name("flywheel_trainer_reward_accuracy")
                .help("Held-out pair accuracy of the reward head at the last checkpoint").register(registry);
        dpoAccuracy = Gauge.builder().name("flywheel_trainer_dpo_accuracy")
                .help("Held-out pair accuracy of the policy's implicit DPO reward against the promoted model at the last checkpoint")
                .register(registry);
        rewardMargin = Gauge.builder().name("flywheel_trainer_reward_margin")
                .help("Mean reward(chosen) - reward(rejected) on held-out pairs at the last checkpoint").register(registry);
        heldOutPairs = Gauge.builder().name("flywheel_trainer_heldout_pairs")
                .help("Held-out preference pairs the accuracies are measured on").register(registry);
        pendingPreferences = Gauge.builder().name("flywheel_trainer_pending_preferences")
                .help("Preference examples read but not yet trained").register(registry);
        skippedSteps = Counter.builder().name("flywheel_trainer_skipped_steps")
                .help("Steps dropped because their gradient was not finite, by kind (language, preference)")
                .labelNames("kind").register(registry);
        damaged = Counter.builder().name("flywheel_trainer_damaged_checkpoints")
                .help("Checkpoints found not to verify against their manifest (damaged files); passed over").register(registry);
        checkpointFailures = Counter.builder().name("flywheel_trainer_checkpoint_failures")
                .help("Checkpoints that could not be written (a full disk, a read-only mount); training goes on").register(registry);
        publishFailures = Counter.builder().name("flywheel_trainer_checkpoint_publish_failures")
                .help("Checkpoints that passed the gate but whose event could not be published to checkpoints").register(registry);
        skippedSteps.labelValues("language");
        skippedSteps.labelValues("preference");
        preferenceExamples.labelValues("pair");
        preferenceExamples.labelValues("supervised");
        preferenceRecords.labelValues("train");
        preferenceRecords.labelValues("heldout");
        for (QualityGate.Reason r : QualityGate.Reason.values()) {
            gate.labelValues(r == QualityGate.Reason.FIRST || r == QualityGate.Reason.NOT_WORSE ? "accept" : "reject", r.label);
        }
        for (String reason : new String[] {"tokenizer_mismatch", "malformed", "token_out_of_range"}) {
            refused.labelValues(reason);
        }
        records.labelValues("train");
        records.labelValues("validation");
        lastCheckpointMillis = System.currentTimeMillis();
    }

    void peakFlops(double value) {
        peakFlops.set(value);
    }

    void step(OnlineTrainer.Step s, int context, double flopsPerToken, double peak) {
        long tokens = (long) s.windows() * context;
        steps.inc();
        tokensTrained.inc((long) s.freshWindows() * context);
        stepSeconds.observe(s.seconds());
        tokensPerSecond.set(tokens / s.seconds());
        loss.set(s.loss());
        learningRate.set(s.learningRate());
        gradientNorm.set(s.gradientNorm());
        double f = flopsPerToken * tokens / s.seconds();
        flops.set(f);
        mfu.set(peak > 0 ? f / peak : 0);
    }

    void record(String split) {
        records.labelValues(split).inc();
    }

    void refused(String reason) {
        refused.labelValues(reason).inc();
    }

    void lag(long records) {
        lag.set(records);
    }

    void pending(int tokens) {
        pendingTokens.set(tokens);
    }

    void evaluation(OnlineTrainer.Evaluation e) {
        validationLoss.set(e.loss());
        validationPerplexity.set(e.perplexity());
        validationBitsPerByte.set(e.bitsPerByte());
    }

    void checkpoint(long version, double seconds) {
        lastCheckpointMillis = System.currentTimeMillis();
        checkpointVersion.set(version);
        checkpointTimestamp.set(lastCheckpointMillis / 1000.0);
        checkpointSeconds.observe(seconds);
    }

    void gate(QualityGate.Decision d) {
        gate.labelValues(d.promote() ? "accept" : "reject", d.reason().label).inc();
    }

    void preferenceStep(PreferenceLearner.Step s) {
        preferenceSteps.inc();
        preferenceExamples.labelValues("pair").inc(s.freshPairs());
        preferenceExamples.labelValues("supervised").inc(s.supervised());
        preferenceLoss.set(s.loss());
        rewardLoss.set(s.rewardLoss());
        dpoLoss.set(s.dpoLoss());
    }

    void damaged() {
        damaged.inc();
    }

    void checkpointFailed() {
        checkpointFailures.inc();
    }

    void publishFailed() {
        publishFailures.inc();
    }

    void skipped(String kind) {
        skippedSteps.labelValues(kind).inc();
    }

    void preferenceRecord(boolean heldOut) {
        preferenceRecords.labelValues(heldOut ? "heldout" : "train").inc();
    }

    void pendingPreferences(int examples) {
        pendingPreferences.set(examples);
    }

    void preferenceEvaluation(PreferenceLearner.Evaluation e) {
        rewardAccuracy.set(e.rewardAccuracy());
        if (!Double.isNaN(e.dpoAccuracy())) {
            dpoAccuracy.set(e.dpoAccuracy());
        }
        rewardMargin.set(e.rewardMargin());
        heldOutPairs.set(e.pairs());
    }

    void promoted(long version) {
        promotedVersion.set(version);
    }
}
