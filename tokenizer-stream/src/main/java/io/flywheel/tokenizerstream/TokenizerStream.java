package io.flywheel.tokenizerstream;

import io.flywheel.core.metrics.ConsumerLag;
import io.flywheel.core.metrics.MetricsServer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running tokenizer stream: the topology in a {@link KafkaStreams} client, and the metrics
 * server whose {@code /health/ready} is up only while Streams is RUNNING.
 */
public final class TokenizerStream implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(TokenizerStream.class);

    /** Internal topics carry a candidate: the raw original plus its token ids. */
    private static final int INTERNAL_MAX_MESSAGE_BYTES = TopicCatalog.MAX_REJECTED_MESSAGE_BYTES;

    private final KafkaStreams streams;
    private final MetricsServer metricsServer;

    private TokenizerStream(KafkaStreams streams, MetricsServer metricsServer) {
        this.streams = streams;
        this.metricsServer = metricsServer;
    }

    /**
     * Starts the metrics server and the stream; returns without waiting for RUNNING.
     *
     * @param streamsOverrides Kafka Streams (or {@code producer.}/{@code consumer.}-prefixed client)
     *                         properties applied last, e.g. {@code session.timeout.ms}
     */
    public static TokenizerStream start(StreamConfig config, Tokenizer tokenizer, Map<String, String> streamsOverrides) throws IOException {
        KafkaStreams[] holder = new KafkaStreams[1];
        MetricsServer metricsServer = MetricsServer.start(config.metricsHost(), config.metricsPort(),
                () -> holder[0] != null && holder[0].state() == KafkaStreams.State.RUNNING);
        StreamMetrics metrics = new StreamMetrics(metricsServer.registry());
        Properties props = properties(config);
        props.putAll(streamsOverrides);
        KafkaStreams streams = new KafkaStreams(new TokenizerTopology(config, tokenizer, metrics).build(), props);
        holder[0] = streams;
        ConsumerLag.register(metricsServer.registry(), "flywheel_stream_consumer_lag", "Records on text.raw not yet read by this instance", streams::metrics, List.of(config.topics().name(Topic.TEXT_RAW)));
        streams.setStateListener((now, before) -> log.info("tokenizer stream: {} -> {}", before, now));
        // A thread that dies of an unexpected error (a broker outage, a fenced producer) is replaced
        // and resumes from the last committed transaction; bad records never get here.
        streams.setUncaughtExceptionHandler(e -> {
            log.error("tokenizer stream thread failed; replacing it", e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        streams.start();
        return new TokenizerStream(streams, metricsServer);
    }

    static Properties properties(StreamConfig config) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, config.applicationId());
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrap());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, config.guarantee());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, config.threads());
        // Each commit ends a transaction under exactly-once: this bounds both latency and overhead.
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, config.commitIntervalMs());
        p.put(StreamsConfig.STATE_DIR_CONFIG, config.stateDir().toAbsolutePath().toString());
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, (int) config.topics().spec(Topic.TOKENS).replicationFactor());
        // Records up to the topic limits: a 16 MiB document, its rejection with the original inside.
        p.put(StreamsConfig.producerPrefix(ProducerConfig.MAX_REQUEST_SIZE_CONFIG), INTERNAL_MAX_MESSAGE_BYTES + 1024 * 1024);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.BUFFER_MEMORY_CONFIG), 2L * INTERNAL_MAX_MESSAGE_BYTES);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "lz4");
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG), 4 * 1024 * 1024);
        p.put(StreamsConfig.topicPrefix(TopicConfig.MAX_MESSAGE_BYTES_CONFIG), Integer.toString(INTERNAL_MAX_MESSAGE_BYTES));
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
