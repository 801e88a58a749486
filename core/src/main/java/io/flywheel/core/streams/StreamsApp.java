package io.flywheel.core.streams;

import io.flywheel.core.config.Settings;
import io.flywheel.core.metrics.BrokerProbe;
import io.flywheel.core.metrics.ConsumerLag;
import io.flywheel.core.metrics.MetricsServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.function.Function;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Kafka Streams app as every Flywheel stream runs one: its topology in a {@link KafkaStreams}
 * client, a metrics server whose {@code /health/ready} is up only while Streams is RUNNING and the
 * broker answers ({@link BrokerProbe}), its
 * consumer lag on the input topic as a gauge, and a stream thread that dies of an unexpected error
 * (a broker outage, a fenced producer) replaced, resuming from the last committed transaction.
 * Bad records never get that far: the topologies route them to their rejected topics.
 */
public final class StreamsApp implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(StreamsApp.class);

    /** What differs between the stream apps. */
    public record Spec(String name, String metricsHost, int metricsPort, String lagMetric, String inputTopic) {}

    /** A stream command's {@code --set} values: Flywheel settings, and Kafka Streams properties ({@code streams.*}). */
    public record Overrides(Settings settings, Map<String, String> streams) {

        /** Keys starting with {@code streams.} go to Kafka Streams as they are (prefix removed); the rest are settings. */
        public static Overrides split(Settings base, Map<String, String> set) {
            Settings settings = base;
            Map<String, String> streams = new LinkedHashMap<>();
            for (var e : set.entrySet()) {
                if (e.getKey().startsWith("streams.")) {
                    streams.put(e.getKey().substring("streams.".length()), e.getValue());
                } else {
                    settings = settings.with(e.getKey(), e.getValue());
                }
            }
            return new Overrides(settings, streams);
        }
    }

    /** How long a close waits for the stream threads (a hung broker holds them). */
    static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);

    private final KafkaStreams streams;
    private final MetricsServer metricsServer;
    private final CountDownLatch stopped = new CountDownLatch(1);

    private final BrokerProbe broker;

    private StreamsApp(KafkaStreams streams, MetricsServer metricsServer, BrokerProbe broker) {
        this.streams = streams;
        this.metricsServer = metricsServer;
        this.broker = broker;
    }

    /**
     * Starts the metrics server and the stream; returns without waiting for RUNNING.
     *
     * @param topology builds the topology, with its metrics in the given registry
     */
    public static StreamsApp start(Spec spec, Function<PrometheusRegistry, Topology> topology, Properties properties) throws IOException {
        KafkaStreams[] holder = new KafkaStreams[1];
        BrokerProbe broker = BrokerProbe.start(properties.getProperty(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG));
        MetricsServer metricsServer = MetricsServer.start(spec.metricsHost(), spec.metricsPort(),
                () -> holder[0] != null && holder[0].state() == KafkaStreams.State.RUNNING && broker.reachable());
        KafkaStreams streams = new KafkaStreams(topology.apply(metricsServer.registry()), properties);
        holder[0] = streams;
        ConsumerLag.register(metricsServer.registry(), spec.lagMetric(),
                "Records on " + spec.inputTopic() + " not yet read by this instance", streams::metrics, List.of(spec.inputTopic()));
        streams.setStateListener((now, before) -> log.info("{}: {} -> {}", spec.name(), before, now));
        streams.setUncaughtExceptionHandler(e -> {
            log.error(spec.name() + " thread failed; replacing it", e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        streams.start();
        return new StreamsApp(streams, metricsServer, broker);
    }

    /**
     * For a command: on Ctrl-C or SIGTERM the stream closes (committing what is done) before the JVM
     * exits. {@link #awaitShutdown()} then returns.
     */
    public StreamsApp closeOnShutdown(String name) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            close();
            stopped.countDown();
        }, name + "-shutdown"));
        return this;
    }

    /** Blocks until the shutdown hook of {@link #closeOnShutdown} has closed the stream. */
    public void awaitShutdown() throws InterruptedException {
        stopped.await();
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
        // Bounded whatever the broker's state, well inside the 10 s a supervisor waits after SIGTERM:
        // with exactly-once an unfinished transaction is aborted (by the broker, or fenced by the
        // next start under the same transactional id), so nothing is lost or written twice.
        streams.close(CLOSE_TIMEOUT);
        broker.close();
        metricsServer.close();
    }
}
