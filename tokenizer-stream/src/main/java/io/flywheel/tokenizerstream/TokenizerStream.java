package io.flywheel.tokenizerstream;

import io.flywheel.core.streams.StreamsApp;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import java.io.IOException;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.streams.StreamsConfig;

/**
 * Starts the tokenizer stream: its topology and Kafka Streams settings, run the way every
 * Flywheel stream runs ({@link StreamsApp}: metrics, readiness, consumer lag, thread replacement).
 */
public final class TokenizerStream {

    /** Internal topics carry a candidate: the raw original plus its token ids. */
    private static final int INTERNAL_MAX_MESSAGE_BYTES = TopicCatalog.MAX_REJECTED_MESSAGE_BYTES;

    private TokenizerStream() {}

    /**
     * Starts the metrics server and the stream; returns without waiting for RUNNING.
     *
     * @param streamsOverrides Kafka Streams (or {@code producer.}/{@code consumer.}-prefixed client)
     *                         properties applied last, e.g. {@code session.timeout.ms}
     */
    public static StreamsApp start(StreamConfig config, Tokenizer tokenizer, Map<String, String> streamsOverrides) throws IOException {
        Properties props = properties(config);
        props.putAll(streamsOverrides);
        StreamsApp.Spec spec = new StreamsApp.Spec("tokenizer stream", config.metricsHost(), config.metricsPort(),
                "flywheel_stream_consumer_lag", config.topics().name(Topic.TEXT_RAW));
        return StreamsApp.start(spec,
                registry -> new TokenizerTopology(config, tokenizer, new StreamMetrics(registry)).build(), props);
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
        // Fewer, larger requests: a fetch waits for 256 KiB or 200 ms, a batch up to 50 ms (a
        // commit sends it anyway). This took a third off the broker's CPU under exactly-once
        // (docs/benchmarks.md), where the broker shares the machine with the stream.
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 50);
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.FETCH_MIN_BYTES_CONFIG), 256 * 1024);
        p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG), 200);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG), 4 * 1024 * 1024);
        p.put(StreamsConfig.topicPrefix(TopicConfig.MAX_MESSAGE_BYTES_CONFIG), Integer.toString(INTERNAL_MAX_MESSAGE_BYTES));
        return p;
    }
}
