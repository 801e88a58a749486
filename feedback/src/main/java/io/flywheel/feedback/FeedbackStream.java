package io.flywheel.feedback;

import io.flywheel.core.streams.StreamsApp;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import java.io.IOException;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.StreamsConfig;

/**
 * Starts the feedback stream: its topology and Kafka Streams settings, run the way every
 * Flywheel stream runs ({@link StreamsApp}: metrics, readiness, consumer lag, thread replacement).
 */
public final class FeedbackStream {

    private FeedbackStream() {}

    /**
     * Starts the metrics server and the stream; returns without waiting for RUNNING.
     *
     * @param streamsOverrides Kafka Streams (or {@code producer.}/{@code consumer.}-prefixed client)
     *                         properties applied last, e.g. {@code session.timeout.ms}
     */
    public static StreamsApp start(FeedbackConfig config, Tokenizer tokenizer, Map<String, String> streamsOverrides) throws IOException {
        Properties props = properties(config);
        props.putAll(streamsOverrides);
        StreamsApp.Spec spec = new StreamsApp.Spec("feedback stream", config.metricsHost(), config.metricsPort(),
                "flywheel_feedback_consumer_lag", config.topics().name(Topic.FEEDBACK_RAW));
        return StreamsApp.start(spec,
                registry -> new FeedbackTopology(config, tokenizer, new FeedbackMetrics(registry)).build(), props);
    }

    static Properties properties(FeedbackConfig config) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, config.applicationId());
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrap());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, config.guarantee());
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, config.commitIntervalMs());
        p.put(StreamsConfig.STATE_DIR_CONFIG, config.stateDir().toAbsolutePath().toString());
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, (int) config.topics().spec(Topic.PREFERENCES).replicationFactor());
        p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "lz4");
        return p;
    }
}
