package io.flywheel.tokenizerstream;

import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.Map;

/**
 * The tokenizer stream's Prometheus metrics. Under exactly-once, a transaction that aborts is
 * processed again, so these counters can run ahead of the committed output after a failure; the
 * topics themselves are the exact record.
 */
public final class StreamMetrics {

    private final Counter recordsIn;
    private final Counter bytesIn;
    private final Counter recordsOut;
    private final Counter tokensOut;
    private final Counter rejected;
    private final Counter redactions;
    private final Histogram latency;
    private final Histogram stageSeconds;

    public StreamMetrics(PrometheusRegistry registry) {
        recordsIn = Counter.builder().name("flywheel_stream_records_in")
                .help("Raw records read from text.raw").register(registry);
        bytesIn = Counter.builder().name("flywheel_stream_bytes_in")
                .help("Bytes of raw record values read from text.raw").register(registry);
        recordsOut = Counter.builder().name("flywheel_stream_records_out")
                .help("Token records written to tokens").register(registry);
        tokensOut = Counter.builder().name("flywheel_stream_tokens_out")
                .help("Tokens written to tokens").register(registry);
        rejected = Counter.builder().name("flywheel_stream_records_rejected")
                .help("Records written to text.rejected, by reason").labelNames("reason").register(registry);
        redactions = Counter.builder().name("flywheel_stream_redactions")
                .help("Personal data and secrets replaced by a placeholder, by type").labelNames("type").register(registry);
        latency = Histogram.builder().name("flywheel_stream_end_to_end_latency_seconds")
                .help("From the raw record's timestamp to its output being processed")
                .classicOnly().classicExponentialUpperBounds(0.005, 2, 16).register(registry);
        stageSeconds = Histogram.builder().name("flywheel_stream_stage_seconds")
                .help("Time spent per record in each stage").labelNames("stage")
                .classicOnly().classicExponentialUpperBounds(0.00001, 4, 12).register(registry);
        for (Reason reason : Reason.values()) {
            rejected.labelValues(reason.code());
        }
        for (PiiRedactor.Kind kind : PiiRedactor.Kind.values()) {
            redactions.labelValues(kind.label());
        }
    }

    void recordIn(int bytes) {
        recordsIn.inc();
        bytesIn.inc(bytes);
    }

    void tokensOut(int tokens, long recordTimestamp) {
        recordsOut.inc();
        tokensOut.inc(tokens);
        observeLatency(recordTimestamp);
    }

    void rejected(String reason, long recordTimestamp) {
        rejected.labelValues(reason).inc();
        observeLatency(recordTimestamp);
    }

    void redacted(Map<PiiRedactor.Kind, Integer> counts) {
        counts.forEach((kind, n) -> redactions.labelValues(kind.label()).inc(n));
    }

    /** The timer of one stage. */
    DistributionDataPoint stage(String name) {
        return stageSeconds.labelValues(name);
    }

    private void observeLatency(long recordTimestamp) {
        if (recordTimestamp > 0) {
            latency.observe(Math.max(0, System.currentTimeMillis() - recordTimestamp) / 1000.0);
        }
    }
}
