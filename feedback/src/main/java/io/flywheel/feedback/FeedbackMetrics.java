package io.flywheel.feedback;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.flywheel.core.records.PreferenceRecord;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The feedback stream's Prometheus metrics. As in the tokenizer stream, an aborted transaction is
 * processed again, so counters can run ahead of the committed topics after a failure.
 */
final class FeedbackMetrics {

    private final Counter in;
    private final Counter joined;
    private final Counter rejected;
    private final Counter examplesOut;
    private final Histogram joinWait;
    private final Gauge waiting;
    private final Map<String, Long> waitingByTask = new ConcurrentHashMap<>();

    FeedbackMetrics(PrometheusRegistry registry) {
        in = Counter.builder().name("flywheel_feedback_in")
                .help("Feedback records read from feedback.raw").register(registry);
        joined = Counter.builder().name("flywheel_feedback_joined")
                .help("Feedback joined with its responses").register(registry);
        rejected = Counter.builder().name("flywheel_feedback_rejected")
                .help("Feedback written to feedback.rejected, by reason").labelNames("reason").register(registry);
        examplesOut = Counter.builder().name("flywheel_feedback_preferences_out")
                .help("Training examples written to preferences, by kind (pair, supervised)").labelNames("kind").register(registry);
        joinWait = Histogram.builder().name("flywheel_feedback_join_wait_seconds")
                .help("From feedback's arrival to its join with the responses it names")
                .classicOnly().classicExponentialUpperBounds(0.001, 4, 10).register(registry);
        waiting = Gauge.builder().name("flywheel_feedback_waiting")
                .help("Feedback waiting for its response to appear on responses").register(registry);
        for (Reason reason : Reason.values()) {
            rejected.labelValues(reason.code());
        }
        for (PreferenceRecord.Kind kind : PreferenceRecord.Kind.values()) {
            examplesOut.labelValues(kind.name().toLowerCase());
        }
    }

    void in() {
        in.inc();
    }

    void joined(long waitedMs) {
        joined.inc();
        joinWait.observe(waitedMs / 1000.0);
    }

    void rejected(Reason reason) {
        rejected.labelValues(reason.code()).inc();
    }

    void example(PreferenceRecord.Kind kind) {
        examplesOut.labelValues(kind.name().toLowerCase()).inc();
    }

    /** Each task reports its own waiting records; the gauge is their sum. */
    void waiting(String task, long count) {
        if (count == 0) {
            waitingByTask.remove(task);
        } else {
            waitingByTask.put(task, count);
        }
        waiting.set(waitingByTask.values().stream().mapToLong(Long::longValue).sum());
    }
}
