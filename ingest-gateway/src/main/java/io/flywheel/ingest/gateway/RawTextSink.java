package io.flywheel.ingest.gateway;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.RawText;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.ingest.RawTextProducer;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.eclipse.microprofile.config.Config;

/**
 * The gateway's one Kafka producer (the CLI's {@link RawTextProducer}: idempotent, {@code acks=all}),
 * shared by every request. A request is answered only after the broker has every document of it.
 */
@ApplicationScoped
public class RawTextSink {

    private final String bootstrap;
    private final String topic;
    private final RawTextProducer producer;

    RawTextSink(Config config, GatewayConfig gateway) {
        this.bootstrap = config.getOptionalValue("flywheel.kafka.bootstrap", String.class).orElse("127.0.0.1:19092");
        this.topic = topics(config).name(Topic.TEXT_RAW);
        this.producer = new RawTextProducer(bootstrap, topic, Map.of(
                ProducerConfig.CLIENT_ID_CONFIG, "flywheel-ingest-gateway",
                ProducerConfig.MAX_BLOCK_MS_CONFIG, gateway.sendTimeout().toMillis()));
    }

    /**
     * Topic names follow the same {@code flywheel.topic...} / {@code FLYWHEEL_TOPIC...} settings as
     * every other service; Quarkus's configuration (application.properties, tests) adds to them.
     */
    private static TopicCatalog topics(Config config) {
        Map<String, String> properties = new HashMap<>();
        for (String name : config.getPropertyNames()) {
            if (name.startsWith("flywheel.")) {
                config.getOptionalValue(name, String.class).ifPresent(v -> properties.put(name, v));
            }
        }
        return TopicCatalog.from(Settings.of(System.getenv(), properties));
    }

    public String bootstrap() {
        return bootstrap;
    }

    public String topic() {
        return topic;
    }

    /**
     * Sends every document and waits until the broker has all of them.
     *
     * @return the bytes of the records written
     * @throws ApiError 503 when the broker refuses or does not answer in time; some documents may
     *                  have landed, and resending the batch is safe because ids are stable and the
     *                  tokenizer stream drops the copies as duplicates
     */
    public long sendAll(List<RawText> docs, Duration timeout) {
        List<CompletableFuture<Integer>> sent = docs.stream().map(producer::send).toList();
        try {
            CompletableFuture.allOf(sent.toArray(CompletableFuture[]::new)).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return sent.stream().mapToLong(CompletableFuture::join).sum();
        } catch (ExecutionException e) {
            throw ApiError.unavailable("the broker did not take the batch (" + e.getCause().getMessage()
                    + "); resend it: ids are stable, so copies are recognised downstream");
        } catch (TimeoutException e) {
            throw ApiError.unavailable("the broker did not acknowledge the batch within " + timeout.toSeconds()
                    + " s; resend it: ids are stable, so copies are recognised downstream");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiError.unavailable("interrupted while waiting for the broker");
        }
    }

    @PreDestroy
    void close() {
        producer.close();
    }
}
