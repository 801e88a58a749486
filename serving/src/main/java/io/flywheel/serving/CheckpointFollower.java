package io.flywheel.serving;

import io.flywheel.core.checkpoint.CheckpointLog;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.serde.RecordFormatException;
import io.flywheel.core.topics.Topic;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.eclipse.microprofile.config.Config;
import org.jboss.logging.Logger;

/**
 * Follows the compacted {@code checkpoints} topic on its own (every replica does): from the start
 * at boot, so the latest promoted checkpoint loads first, then each new event as it arrives. No
 * consumer group: replicas do not share the work, each needs every event.
 */
@ApplicationScoped
public class CheckpointFollower {

    private static final Logger LOG = Logger.getLogger(CheckpointFollower.class);

    private final ModelRegistry registry;
    private final String bootstrap;
    private final String topic;
    private final byte[] modelKey;
    private volatile KafkaConsumer<byte[], byte[]> consumer;
    private volatile boolean stopping;
    private Thread thread;

    CheckpointFollower(ModelRegistry registry, ServingConfig serving, Config config) {
        this.registry = registry;
        this.bootstrap = Topics.bootstrap(config);
        this.topic = Topics.catalog(config).name(Topic.CHECKPOINTS);
        this.modelKey = serving.modelName().getBytes(StandardCharsets.UTF_8);
    }

    void start(@Observes StartupEvent event) {
        thread = new Thread(this::follow, "checkpoint-follower");
        thread.setDaemon(true);
        thread.start();
    }

    private void follow() {
        Properties p = CheckpointLog.consumerProperties(bootstrap, "flywheel-serving-checkpoints");
        while (!stopping) {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
                consumer = c;
                List<TopicPartition> partitions = c.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                        .map(info -> new TopicPartition(topic, info.partition())).toList();
                if (partitions.isEmpty()) {
                    LOG.warnf("topic %s does not exist yet; retrying", topic);
                    Thread.sleep(2000);
                    continue;
                }
                c.assign(partitions);
                c.seekToBeginning(partitions);
                LOG.infof("following %s for model %s", topic, new String(modelKey, StandardCharsets.UTF_8));
                while (!stopping) {
                    CheckpointEvent newest = null;
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofSeconds(1))) {
                        if (r.key() == null || !Arrays.equals(r.key(), modelKey) || r.value() == null) {
                            continue;
                        }
                        try {
                            newest = CheckpointEvent.CODEC.decode(r.value());
                        } catch (RecordFormatException e) {
                            LOG.errorf("unreadable checkpoint event at %s-%d@%d: %s", r.topic(), r.partition(), r.offset(), e.getMessage());
                        }
                    }
                    if (newest != null) {
                        registry.offer(newest);    // only the newest of a batch: the older ones are superseded
                    }
                }
            } catch (WakeupException e) {
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException e) {
                if (stopping) {
                    return;
                }
                LOG.errorf("following %s failed, restarting: %s", topic, e.toString());
            }
        }
    }

    void stop(@Observes ShutdownEvent event) throws InterruptedException {
        stopping = true;
        KafkaConsumer<byte[], byte[]> c = consumer;
        if (c != null) {
            c.wakeup();
        }
        if (thread != null) {
            thread.join(5000);
        }
    }
}
