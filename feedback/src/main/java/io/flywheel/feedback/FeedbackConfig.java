package io.flywheel.feedback;

import io.flywheel.core.config.Settings;
import io.flywheel.core.topics.TopicCatalog;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Every setting of the feedback stream, with its key and default. Keys follow {@link Settings}:
 * {@code feedback.join-wait-ms} is also {@code -Dflywheel.feedback.join-wait-ms} and
 * {@code FLYWHEEL_FEEDBACK_JOIN_WAIT_MS}.
 *
 * @param joinWait        how long feedback waits for its response to appear before it is
 *                        rejected as {@code unknown_response}
 * @param retryInterval   how often waiting feedback is tried again (wall clock)
 * @param dedupRetention  how long (user, response) pairs are remembered to count feedback once
 * @param maxRatedPerPrompt rated responses remembered per prompt and sign, to pair later ratings with
 */
public record FeedbackConfig(
        String bootstrap,
        String applicationId,
        Path stateDir,
        String guarantee,
        long commitIntervalMs,
        String tokenizer,
        Duration joinWait,
        Duration retryInterval,
        Duration dedupRetention,
        int maxRatedPerPrompt,
        String metricsHost,
        int metricsPort,
        TopicCatalog topics) {

    public static final String EXACTLY_ONCE = "exactly_once_v2";
    public static final String AT_LEAST_ONCE = "at_least_once";

    public FeedbackConfig {
        if (!guarantee.equals(EXACTLY_ONCE) && !guarantee.equals(AT_LEAST_ONCE)) {
            throw new Settings.ConfigException("feedback.guarantee must be " + EXACTLY_ONCE + " or " + AT_LEAST_ONCE + ", not '" + guarantee + "'");
        }
        check(commitIntervalMs >= 1, "feedback.commit-interval-ms must be positive");
        check(joinWait.toMillis() >= 0, "feedback.join-wait-ms must not be negative");
        check(retryInterval.toMillis() >= 1, "feedback.retry-interval-ms must be positive");
        check(dedupRetention.toMillis() >= 1, "feedback.dedup-retention-ms must be positive");
        check(maxRatedPerPrompt >= 1, "feedback.max-rated-per-prompt must be at least 1");
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new Settings.ConfigException(message);
        }
    }

    public static FeedbackConfig from(Settings s) {
        return new FeedbackConfig(
                s.string("kafka.bootstrap", "127.0.0.1:19092"),
                s.string("feedback.application-id", "flywheel-feedback"),
                Path.of(s.string("feedback.state-dir", ".flywheel/feedback")),
                s.string("feedback.guarantee", EXACTLY_ONCE),
                s.longValue("feedback.commit-interval-ms", 100),
                s.string("feedback.tokenizer", "cl100k_base"),
                Duration.ofMillis(s.longValue("feedback.join-wait-ms", Duration.ofMinutes(5).toMillis())),
                Duration.ofMillis(s.longValue("feedback.retry-interval-ms", 1000)),
                Duration.ofMillis(s.longValue("feedback.dedup-retention-ms", Duration.ofDays(30).toMillis())),
                s.integer("feedback.max-rated-per-prompt", 8),
                s.string("feedback.metrics.host", "127.0.0.1"),
                s.integer("feedback.metrics.port", 9430),
                TopicCatalog.from(s));
    }
}
