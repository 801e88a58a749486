package io.flywheel.trainer;

import io.flywheel.core.config.Settings;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.model.OptimizerConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

/**
 * Every setting of the trainer, with its key and default. Keys follow {@link Settings}:
 * {@code train.batch} is also {@code -Dflywheel.train.batch} and {@code FLYWHEEL_TRAIN_BATCH}.
 * The {@code model.*} and {@code optim.*} settings shape a new model; a resumed one keeps those
 * stored in its checkpoint.
 */
public record TrainerConfig(
        String bootstrap,
        String modelName,
        Path checkpointDir,
        String tokenizer,
        Path init,
        ModelShape shape,
        OptimizerConfig optimizer,
        int batch,
        long seed,
        double rehearsalRatio,
        int rehearsalWindows,
        int evaluationTokens,
        int checkpointEverySteps,
        Duration checkpointEvery,
        int keepCheckpoints,
        double gateTolerance,
        double gateAccuracyTolerance,
        int gateMinHeldOutPairs,
        PreferenceLearner.Settings preferences,
        int maxPollRecords,
        int readAheadTokens,
        double peakFlops,
        Path trace,
        String metricsHost,
        int metricsPort,
        TopicCatalog topics) {

    /** The network's shape for a new model; the vocabulary comes from the tokenizer. */
    public record ModelShape(int context, int layers, int heads, int width, int mlpRatio, double dropout, boolean tied) {}

    public TrainerConfig {
        check(batch >= 1, "train.batch must be at least 1");
        check(rehearsalRatio >= 0 && rehearsalRatio < 1, "train.rehearsal-ratio must be within [0, 1)");
        check(rehearsalWindows >= 0, "train.rehearsal-windows must be >= 0");
        check(evaluationTokens >= 2, "eval.max-tokens must be at least 2");
        check(checkpointEverySteps >= 1, "checkpoint.every-steps must be at least 1");
        check(checkpointEvery.toMillis() >= 1, "checkpoint.every-seconds must be positive");
        check(keepCheckpoints >= 1, "checkpoint.keep must be at least 1");
        check(gateTolerance >= 0, "gate.tolerance must be >= 0");
        check(gateAccuracyTolerance >= 0, "gate.accuracy-tolerance must be >= 0");
        check(maxPollRecords >= 1, "trainer.max-poll-records must be at least 1");
        check(readAheadTokens >= 0, "trainer.read-ahead-tokens must be >= 0");
        check(peakFlops >= 0, "trainer.peak-flops must be >= 0 (0 measures it)");
        check(!modelName.isBlank(), "trainer.model-name must not be blank");
    }

    public static TrainerConfig from(Settings s) {
        OptimizerConfig d = OptimizerConfig.defaults();
        OptimizerConfig optimizer;
        ModelShape shape;
        try {
            optimizer = new OptimizerConfig(
                    s.decimal("optim.lr", d.learningRate()),
                    s.decimal("optim.min-lr", d.minLearningRate()),
                    s.longValue("optim.warmup-steps", d.warmupSteps()),
                    OptimizerConfig.Schedule.valueOf(s.string("optim.schedule", "cosine").toUpperCase(Locale.ROOT)),
                    s.longValue("optim.decay-steps", d.decaySteps()),
                    s.decimal("optim.weight-decay", d.weightDecay()),
                    s.decimal("optim.beta1", d.beta1()),
                    s.decimal("optim.beta2", d.beta2()),
                    s.decimal("optim.eps", d.epsilon()),
                    s.decimal("optim.grad-clip", d.gradientClip()));
            shape = new ModelShape(
                    s.integer("model.context", 128),
                    s.integer("model.layers", 4),
                    s.integer("model.heads", 4),
                    s.integer("model.width", 128),
                    s.integer("model.mlp-ratio", 4),
                    s.decimal("model.dropout", 0.0),
                    s.bool("model.tied", true));
        } catch (IllegalArgumentException e) {
            throw new Settings.ConfigException("optim.* / model.*: " + e.getMessage());
        }
        PreferenceLearner.Settings preferences;
        try {
            preferences = new PreferenceLearner.Settings(
                    s.integer("pref.batch", 8),
                    s.integer("pref.supervised-batch", 4),
                    s.integer("pref.every-steps", 4),
                    s.decimal("pref.reward-weight", 1.0),
                    s.decimal("pref.dpo-weight", 1.0),
                    s.decimal("pref.beta", 0.1),
                    s.decimal("pref.lr-scale", 0.1),
                    s.decimal("pref.holdout-share", 0.2),
                    s.integer("pref.holdout-pairs", 256),
                    s.integer("pref.replay-pairs", 1024));
        } catch (IllegalArgumentException e) {
            throw new Settings.ConfigException(e.getMessage());
        }
        String init = s.string("trainer.init", "");
        String trace = s.string("trainer.trace", "");
        return new TrainerConfig(
                s.string("kafka.bootstrap", "127.0.0.1:19092"),
                s.string("trainer.model-name", "flywheel"),
                Path.of(s.string("trainer.checkpoint-dir", ".flywheel/checkpoints")),
                s.string("trainer.tokenizer", "cl100k_base"),
                init.isBlank() ? null : Path.of(init),
                shape,
                optimizer,
                s.integer("train.batch", 8),
                s.longValue("train.seed", 1337),
                s.decimal("train.rehearsal-ratio", 0.25),
                s.integer("train.rehearsal-windows", 2048),
                s.integer("eval.max-tokens", 8192),
                s.integer("checkpoint.every-steps", 200),
                Duration.ofMillis((long) (1000 * s.decimal("checkpoint.every-seconds", 60))),
                s.integer("checkpoint.keep", 3),
                s.decimal("gate.tolerance", 0.02),
                s.decimal("gate.accuracy-tolerance", 0.05),
                s.integer("gate.min-heldout-pairs", 50),
                preferences,
                s.integer("trainer.max-poll-records", 200),
                s.integer("trainer.read-ahead-tokens", 262144),
                s.decimal("trainer.peak-flops", 0),
                trace.isBlank() ? null : Path.of(trace),
                s.string("trainer.metrics.host", "127.0.0.1"),
                s.integer("trainer.metrics.port", 9420),
                TopicCatalog.from(s));
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new Settings.ConfigException(message);
        }
    }
}
