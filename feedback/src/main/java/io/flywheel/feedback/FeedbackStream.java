package io.flywheel.feedback;

import io.flywheel.core.metrics.ConsumerLag;
import io.flywheel.core.metrics.MetricsServer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running feedback stream: the topology in a {@link KafkaStreams} client, and the metrics
 * server whose {@code /health/ready} is up only while Streams is RUNNING.
 */
public final class FeedbackStream implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(FeedbackStream.class);

    private final KafkaStreams streams;
    private final MetricsServer metricsServer;

    private FeedbackStream(KafkaStreams streams, MetricsServer metricsServer) {
        this.streams = streams;
        this.metricsServer = metricsServer;
    }

    /** Starts the metrics server and the stream; returns without waiting for RUNNING. */
    public static FeedbackStream start(FeedbackConfig config, Tokenizer tokenizer, Map<String, String> streamsOverrides) throws IOException {
        KafkaStreams[] holder = new KafkaStreams[1];
        MetricsServer metricsServer = MetricsServer.start(config.metricsHost(), config.metricsPort(),
                () -> holder[0] != null && holder[0].state() == KafkaStreams.State.RUNNING);
        FeedbackMetrics metrics = new FeedbackMetrics(metricsServer.registry());
        Properties props = properties(config);
        props.putAll(streamsOverrides);
        KafkaStreams streams = new KafkaStreams(new FeedbackTopology(config, tokenizer, metrics).build(), props);
        holder[0] = streams;
        ConsumerLag.register(metricsServer.registry(), "flywheel_feedback_consumer_lag", "Records on feedback.raw not yet read by this instance", streams::metrics, List.of(config.topics().name(Topic.FEEDBACK_RAW)));
        streams.setStateListener((now, before) -> log.info("feedback stream: {} -> {}", before, now));
        streams.setUncaughtExceptionHandler(e -> {
            log.error("feedback stream thread failed; replacing it", e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        streams.start();
        return new FeedbackStream(streams, metricsServer);
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

    public KafkaStreams.State state() {
        return streams.state();
    }

    public int metricsPort() {
        return metricsServer.port();
    }

    /** Stops the stream (committing what is done) and then the metrics server. */
    @Override
    public void close() {
        streams.close(Duration.ofSeconds(30));
        metricsServer.close();
    }
}
