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
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.RetriableException;
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
     * metadata, a full buffer), whatever state the broker is in. What the broker cannot take yet is
     * tried again every second for {@link #RETRY_FOR}, so a broker restart loses nothing.
     */
    private final ScheduledThreadPoolExecutor publisher = new ScheduledThreadPoolExecutor(1, r -> {
        Thread t = new Thread(r, "flywheel-responses-publisher");
        t.setDaemon(true);
        return t;
    });
    private static final Duration RETRY_FOR = Duration.ofMinutes(5);
    private static final int MAX_PENDING = 10_000;
    private final AtomicInteger pending = new AtomicInteger();
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
        if (pending.incrementAndGet() > MAX_PENDING) {
            pending.decrementAndGet();
            markFailing();
            failed(record, MAX_PENDING + " completions are already waiting for the broker");
            return;
        }
        long deadline = System.nanoTime() + RETRY_FOR.toNanos();
        try {
            publisher.execute(() -> send(record, deadline));
        } catch (RejectedExecutionException e) {
            pending.decrementAndGet();
            failed(record, "serving is shutting down");
        }
    }

    private void send(ResponseRecord record, long deadline) {
        try {
            producer.send(new ProducerRecord<>(responses, record.id().getBytes(StandardCharsets.UTF_8), ResponseRecord.CODEC.encode(record)),
                    (metadata, error) -> {
                        if (error == null) {
                            failingSince.set(0);
                            pending.decrementAndGet();
                        } else {
                            retryOrFail(record, deadline, error);
                        }
                    });
        } catch (KafkaException e) {
            retryOrFail(record, deadline, e);
        }
    }

    private void retryOrFail(ResponseRecord record, long deadline, Exception error) {
        markFailing();
        if (error instanceof RetriableException && System.nanoTime() < deadline && !publisher.isShutdown()) {
            try {
                publisher.schedule(() -> send(record, deadline), 1, TimeUnit.SECONDS);
                return;
            } catch (RejectedExecutionException shuttingDown) {
                // fall through: counted as lost
            }
        }
        pending.decrementAndGet();
        failed(record, error.getMessage());
    }

    private void markFailing() {
        failingSince.compareAndSet(0, Math.max(1, System.nanoTime()));
    }

    private void failed(ResponseRecord record, String why) {
        responseFailures.increment();
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
        publisher.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        publisher.shutdown();
        publisher.awaitTermination(2, TimeUnit.SECONDS);
        if (pending.get() > 0) {
            LOG.errorf("%d completions were still waiting for the broker at shutdown and are not on %s", pending.get(), responses);
        }
        producer.close(Duration.ofSeconds(5));
    }
}
