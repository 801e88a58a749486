package io.flywheel.core.checkpoint;

import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.serde.RecordFormatException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads the compacted {@code checkpoints} topic: which checkpoint is promoted for a model now. The
 * last event with the model's name as key wins; events that do not parse are skipped (they were
 * never a valid promotion).
 */
public final class CheckpointLog {

    private CheckpointLog() {}

    /**
     * A reader of the topic: assigned partitions rather than a consumer group (every reader needs
     * every event), byte arrays, committed records only, no offsets committed.
     */
    public static Properties consumerProperties(String bootstrap, String clientId) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        return props;
    }

    /** The latest promoted checkpoint of {@code modelName}, read from the start of the topic to its end. */
    public static Optional<CheckpointEvent> latest(String bootstrap, String topic, String modelName, Duration timeout)
            throws TimeoutException {
        Properties props = consumerProperties(bootstrap, "flywheel-checkpoint-log");
        long deadline = System.nanoTime() + timeout.toNanos();
        byte[] key = modelName.getBytes(StandardCharsets.UTF_8);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            // A topic created a moment ago may not be in the broker's metadata yet: ask again until the deadline.
            List<TopicPartition> partitions = consumer.partitionsFor(topic, timeout).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            while (partitions.isEmpty()) {
                if (System.nanoTime() > deadline) {
                    throw new TimeoutException("topic " + topic + " does not exist");
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new TimeoutException("interrupted while waiting for topic " + topic);
                }
                partitions = consumer.partitionsFor(topic, timeout).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions, timeout);
            CheckpointEvent latest = null;
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < ends.get(tp))) {
                if (System.nanoTime() > deadline) {
                    throw new TimeoutException("reading " + topic + " took longer than " + timeout);
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.key() == null || !Arrays.equals(r.key(), key) || r.value() == null) {
                        continue;
                    }
                    try {
                        latest = CheckpointEvent.CODEC.decode(r.value());   // one key, one partition: log order
                    } catch (RecordFormatException e) {
                        // not a valid promotion: skip it
                    }
                }
            }
            return Optional.ofNullable(latest);
        }
    }
}
