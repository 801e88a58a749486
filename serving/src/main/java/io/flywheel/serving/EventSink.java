package io.flywheel.serving;

import io.flywheel.core.records.Feedback;
import io.flywheel.core.records.ResponseRecord;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.eclipse.microprofile.config.Config;
import org.jboss.logging.Logger;

/**
 * What serving writes to Kafka: every completion to {@code responses} (keyed by its id, so that
 * feedback can be joined to it), and feedback to {@code feedback.raw}. One idempotent producer with
 * {@code acks=all}.
 */
@ApplicationScoped
public class EventSink {

    private static final Logger LOG = Logger.getLogger(EventSink.class);

    private final KafkaProducer<byte[], byte[]> producer;
    private final String responses;
    private final String feedback;
    private final Counter responseFailures;
    /**
     * Sends completions on a thread of their own: a request never waits for the broker (its
     * metadata, a full buffer), whatever state the broker is in.
     */
    private final ThreadPoolExecutor publisher = new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS, new LinkedBlockingQueue<>(10_000),
            r -> {
                Thread t = new Thread(r, "flywheel-responses-publisher");
                t.setDaemon(true);
                return t;
            });
    /** When writes to {@code responses} started failing (System.nanoTime), or 0 while they succeed. */
    private final AtomicLong failingSince = new AtomicLong();

    EventSink(Config config, MeterRegistry registry) {
        TopicCatalog topics = Topics.catalog(config);
        this.responses = topics.name(Topic.RESPONSES);
        this.feedback = topics.name(Topic.FEEDBACK_RAW);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Topics.bootstrap(config));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
        // A broker that is restarted (the local supervisor does it in seconds) loses nothing: the
        // producer keeps each completion and retries it for this long.
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "300000");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "flywheel-serving");
        this.producer = new KafkaProducer<>(p);
        this.responseFailures = Counter.builder("flywheel.serving.responses.publish.failures")
                .description("Completions that could not be written to the responses topic").register(registry);
    }

    /** Publishes a completion without holding up its answer; a failure is logged and counted. */
    void response(ResponseRecord record) {
        try {
            publisher.execute(() -> send(record));
        } catch (RejectedExecutionException e) {
            failed(record, "the publishing queue is full");
        }
    }

    private void send(ResponseRecord record) {
        try {
            producer.send(new ProducerRecord<>(responses, record.id().getBytes(StandardCharsets.UTF_8), ResponseRecord.CODEC.encode(record)),
                    (metadata, error) -> {
                        if (error == null) {
                            failingSince.set(0);
                        } else {
                            failed(record, error.getMessage());
                        }
                    });
        } catch (KafkaException e) {
            failed(record, e.getMessage());
        }
    }

    private void failed(ResponseRecord record, String why) {
        responseFailures.increment();
        failingSince.compareAndSet(0, Math.max(1, System.nanoTime()));
        LOG.errorf("response %s not written to %s: %s", record.id(), responses, why);
    }

    /** How long writes to {@code responses} have been failing, in nanoseconds; 0 while they succeed. */
    long responsesFailingNanos() {
        long since = failingSince.get();
        return since == 0 ? 0 : System.nanoTime() - since;
    }

    /** Publishes feedback and waits for the broker's acknowledgement (so 202 means it is stored). */
    void feedback(Feedback event) {
        try {
            producer.send(new ProducerRecord<>(feedback, event.key().getBytes(StandardCharsets.UTF_8), Feedback.CODEC.encode(event)))
                    .get(15, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            LOG.warnf("feedback %s not written to %s: %s", event.key(), feedback, e.getMessage());
            throw ApiError.of(503, "server_error", "broker_unavailable", "The feedback could not be stored right now; retry shortly");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiError.of(503, "server_error", "broker_unavailable", "interrupted");
        }
    }

    @PreDestroy
    void close() throws InterruptedException {
        publisher.shutdown();
        publisher.awaitTermination(2, TimeUnit.SECONDS);
        producer.close(Duration.ofSeconds(5));
    }
}
