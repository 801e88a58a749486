package io.flywheel.testsupport;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(KafkaBrokerExtension.class)
class KafkaBrokerTest {

    @Test
    void producesAndConsumesThroughTheRealBroker(KafkaBroker broker) throws Exception {
        String topic = broker.createTopic(KafkaBroker.uniqueName("plain"), 2);
        try (var producer = new KafkaProducer<byte[], byte[]>(broker.producerProperties())) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, bytes("k" + i), bytes("v" + i))).get();
            }
        }
        List<String> values = consume(broker, topic, "read_committed", 10);
        assertEquals(10, values.size());
        assertTrue(values.containsAll(List.of("v0", "v5", "v9")));
    }

    @Test
    void readCommittedSeesCommittedTransactionsOnly(KafkaBroker broker) throws Exception {
        String topic = broker.createTopic(KafkaBroker.uniqueName("tx"), 1);
        Properties props = broker.producerProperties();
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, KafkaBroker.uniqueName("tx-producer"));
        try (var producer = new KafkaProducer<byte[], byte[]>(props)) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, bytes("a"), bytes("aborted")));
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, bytes("c"), bytes("committed")));
            producer.commitTransaction();
        }
        // read_uncommitted sees both; read_committed only the committed one. Poll until the
        // uncommitted view holds both, so that the committed view is read after the same records.
        List<String> uncommitted = consume(broker, topic, "read_uncommitted", 2);
        assertEquals(List.of("aborted", "committed"), uncommitted);
        List<String> committed = consume(broker, topic, "read_committed", 1);
        assertEquals(List.of("committed"), committed);
    }

    @Test
    void closeTwiceIsSafe() throws Exception {
        KafkaBroker own = KafkaBroker.start();
        assertTrue(own.bootstrapServers().contains(":"));
        own.close();
        assertDoesNotThrow(own::close);
        assertTrue(own.isClosed());
    }

    /** Reads until {@code expected} records arrived or 30 s passed, then polls once more for extras. */
    private static List<String> consume(KafkaBroker broker, String topic, String isolation, int expected) {
        Properties props = broker.consumerProperties(KafkaBroker.uniqueName("group"));
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        List<String> out = new ArrayList<>();
        try (var consumer = new KafkaConsumer<byte[], byte[]>(props)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (out.size() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    out.add(new String(r.value(), StandardCharsets.UTF_8));
                }
            }
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                out.add(new String(r.value(), StandardCharsets.UTF_8));
            }
        }
        return out;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
