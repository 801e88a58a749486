package io.flywheel.ingest;

import io.flywheel.core.records.RawText;
import io.flywheel.core.topics.TopicCatalog;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Sends documents to {@code text.raw}, keyed by id, with the settings that make a producer both
 * safe and fast: idempotence and {@code acks=all} (no loss, no duplicates from retries), lz4
 * compression, and large batches with a short linger.
 */
public final class RawTextProducer implements AutoCloseable {

    private final KafkaProducer<String, byte[]> producer;
    private final String topic;
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong sentBytes = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();

    public RawTextProducer(String bootstrap, String topic, Map<String, Object> overrides) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 10);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 512 * 1024);
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, 96L * 1024 * 1024);
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, TopicCatalog.MAX_MESSAGE_BYTES + 64 * 1024);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "flywheel-ingest");
        p.putAll(overrides);
        producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        this.topic = topic;
    }

    /** Largest document value that fits the topic, with room for the record's own overhead. */
    public static int maxValueBytes() {
        return TopicCatalog.MAX_MESSAGE_BYTES - 1024;
    }

    /**
     * Sends asynchronously; the future completes with the record's size in bytes when the broker
     * has it on every in-sync replica, or fails (at once if the record is too large).
     */
    public CompletableFuture<Integer> send(RawText doc) {
        CompletableFuture<Integer> done = new CompletableFuture<>();
        byte[] value = RawText.CODEC.encode(doc);
        if (value.length > maxValueBytes()) {
            failed.incrementAndGet();
            done.completeExceptionally(new IllegalArgumentException("document of " + value.length
                    + " bytes exceeds the " + maxValueBytes() + "-byte record limit"));
            return done;
        }
        producer.send(new ProducerRecord<>(topic, null, doc.ts(), doc.id(), value), (meta, e) -> {
            if (e == null) {
                sent.incrementAndGet();
                sentBytes.addAndGet(value.length);
                done.complete(value.length);
            } else {
                failed.incrementAndGet();
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    public long sent() {
        return sent.get();
    }

    public long sentBytes() {
        return sentBytes.get();
    }

    public long failed() {
        return failed.get();
    }

    /** Waits until every record sent so far is acknowledged or failed. */
    public void flush() {
        producer.flush();
    }

    @Override
    public void close() {
        producer.close();
    }
}
