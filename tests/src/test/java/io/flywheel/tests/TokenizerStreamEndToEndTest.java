package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.DocumentIds;
import io.flywheel.core.records.RawText;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tokenizer stream as users run it ({@code flywheel stream}, a child JVM) against a real
 * broker: thousands of mixed records go in, the stream is killed with SIGKILL in the middle and
 * started again, and every raw record still ends as exactly one committed output.
 */
@ExtendWith(KafkaBrokerExtension.class)
class TokenizerStreamEndToEndTest {

    private static final int GOOD = 2400;
    private static final int COPIES = 200;
    private static final int MALFORMED = 100;
    private static final int OVERSIZED = 20;

    @TempDir
    Path stateDir;

    @Test
    void countsBalanceExactlyAcrossAHardKillAndRestart(KafkaBroker broker) throws Exception {
        String prefix = KafkaBroker.uniqueName("e2e") + ".";
        TopicCatalog topics = TopicCatalog.from(Settings.of(Map.of(Settings.envName("topics.prefix"), prefix), Map.of()));
        topics.ensureCreated(broker.admin());
        String appId = KafkaBroker.uniqueName("tokenizer-stream");

        Map<String, byte[]> input = mixedRecords();
        List<String> keys = new ArrayList<>(input.keySet());
        List<String> first = keys.subList(0, keys.size() / 3);
        List<String> rest = keys.subList(keys.size() / 3, keys.size());

        try (KafkaProducer<String, byte[]> producer = producer(broker);
             Outputs outputs = new Outputs(broker, topics)) {
            send(producer, topics, input, first);

            Process stream = startStream(broker, prefix, appId);
            int atKill;
            try {
                atKill = outputs.awaitAtLeast(200, Duration.ofMinutes(2));
            } finally {
                stream.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
            assertTrue(atKill < input.size(), "the kill must come in the middle of the run");

            send(producer, topics, input, rest);
            Process restarted = startStream(broker, prefix, appId);
            try {
                outputs.awaitAtLeast(input.size(), Duration.ofMinutes(3));
                awaitCommitted(broker, appId, topics, Duration.ofMinutes(1));
            } finally {
                restarted.toHandle().destroy();
                restarted.waitFor(60, TimeUnit.SECONDS);
            }
        }

        // Read everything committed, from the start, with a fresh consumer.
        try (Outputs all = new Outputs(broker, topics)) {
            all.readToEnd();
            assertEquals(input.size(), all.byKey.size() + all.duplicateKeys.size(), "outputs: " + all.summary());
            assertTrue(all.duplicateKeys.isEmpty(), "records with two outputs: " + all.duplicateKeys);
            assertEquals(input.keySet(), all.byKey.keySet());
            Map<String, Integer> reasons = all.reasons();
            assertEquals(Map.of("duplicate", COPIES, "malformed", MALFORMED, "too_long", OVERSIZED), reasons, all.summary());
            assertEquals(GOOD, all.tokens);
        }
    }

    @Test
    void recordsAsAnyKafkaProducerSendsThemReachTokens(KafkaBroker broker) throws Exception {
        String prefix = KafkaBroker.uniqueName("plain") + ".";
        TopicCatalog topics = TopicCatalog.from(Settings.of(Map.of(Settings.envName("topics.prefix"), prefix), Map.of()));
        topics.ensureCreated(broker.admin());
        String appId = KafkaBroker.uniqueName("tokenizer-stream");
        List<String> lines = Corpus.lines(5, 200);
        String raw = topics.name(Topic.TEXT_RAW);
        try (KafkaProducer<String, byte[]> producer = producer(broker);
             Outputs outputs = new Outputs(broker, topics)) {
            // As kcat or a Connect sink would send them: only text; id and source but no ts; plain
            // text keyed; plain text with a source header and no key; and one tombstone.
            producer.send(new ProducerRecord<>(raw, "only-text", json("{\"text\":%s}", lines.get(0))));
            producer.send(new ProducerRecord<>(raw, null, json("{\"id\":\"no-ts\",\"source\":\"app\",\"text\":%s}", lines.get(1))));
            producer.send(new ProducerRecord<>(raw, "plain", lines.get(2).getBytes(StandardCharsets.UTF_8)));
            producer.send(new ProducerRecord<>(raw, null, null, null, lines.get(3).getBytes(StandardCharsets.UTF_8),
                    List.of(new RecordHeader("source", "connect".getBytes(StandardCharsets.UTF_8)))));
            producer.send(new ProducerRecord<>(raw, "gone", null)).get();

            Process stream = startStream(broker, prefix, appId);
            try {
                outputs.awaitAtLeast(5, Duration.ofMinutes(2));
            } finally {
                stream.toHandle().destroy();
                stream.waitFor(60, TimeUnit.SECONDS);
            }
            assertEquals(Map.of("only-text", "tokens", "no-ts", "tokens", "plain", "tokens",
                    DocumentIds.of("connect", lines.get(3)), "tokens", "gone", "malformed"), outputs.byKey, outputs.summary());
        }
    }

    private static byte[] json(String template, String text) {
        return template.formatted(io.flywheel.core.serde.Json.object().textNode(text).toString()).getBytes(StandardCharsets.UTF_8);
    }

    /** Good prose, exact copies of some of it under new ids, malformed JSON and oversized texts. */
    private static Map<String, byte[]> mixedRecords() {
        List<String> lines = Corpus.lines(GOOD + OVERSIZED * 40, 200);
        Map<String, byte[]> records = new LinkedHashMap<>();
        for (int i = 0; i < GOOD; i++) {
            records.put("good-" + i, raw("good-" + i, lines.get(i)));
            if (i % (GOOD / COPIES) == 0) {
                records.put("copy-" + i, raw("copy-" + i, lines.get(i)));
            }
            if (i % (GOOD / MALFORMED) == 0) {
                records.put("bad-" + i, ("{\"id\":\"bad-" + i + "\",\"text\":").getBytes(StandardCharsets.UTF_8));
            }
            if (i % (GOOD / OVERSIZED) == 0) {
                int k = GOOD + records.size() % (OVERSIZED * 40 - 40);
                records.put("big-" + i, raw("big-" + i, String.join("\n", lines.subList(k, k + 40)).repeat(3)));
            }
        }
        return records;
    }

    private static byte[] raw(String id, String text) {
        return RawText.CODEC.encode(new RawText(id, "e2e", text, System.currentTimeMillis(), Map.of()));
    }

    private static KafkaProducer<String, byte[]> producer(KafkaBroker broker) {
        Properties p = broker.producerProperties();
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        return new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
    }

    private static void send(KafkaProducer<String, byte[]> producer, TopicCatalog topics, Map<String, byte[]> input, List<String> keys) {
        for (String key : keys) {
            producer.send(new ProducerRecord<>(topics.name(Topic.TEXT_RAW), key, input.get(key)));
        }
        producer.flush();
    }

    private Process startStream(KafkaBroker broker, String prefix, String appId) throws Exception {
        ProcessBuilder builder = Cli.command(List.of("stream", "--bootstrap", broker.bootstrapServers(),
                "--state-dir", stateDir.toString(), "--metrics-port", "0", "--tokenizer", "cl100k_base",
                "--set", "stream.application-id=" + appId,
                "--set", "dedup.near.enabled=false",
                "--set", "filter.max-chars=20000",
                // A killed member must leave the group quickly for the restart to take over.
                "--set", "streams.session.timeout.ms=6000",
                "--set", "streams.heartbeat.interval.ms=1000"));
        builder.environment().put(Settings.envName("topics.prefix"), prefix);
        builder.redirectErrorStream(true).redirectOutput(stateDir.resolve("stream-" + System.nanoTime() + ".log").toFile());
        return builder.start();
    }

    /** Waits until the stream's committed position on text.raw is at the end of every partition. */
    private static void awaitCommitted(KafkaBroker broker, String appId, TopicCatalog topics, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        String raw = topics.name(Topic.TEXT_RAW);
        while (true) {
            var committed = broker.admin().listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get();
            Map<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> latest = new HashMap<>();
            for (int p = 0; p < topics.spec(Topic.TEXT_RAW).partitions(); p++) {
                latest.put(new TopicPartition(raw, p), org.apache.kafka.clients.admin.OffsetSpec.latest());
            }
            var ends = broker.admin().listOffsets(latest).all().get();
            boolean done = ends.entrySet().stream().allMatch(e -> {
                var c = committed.get(e.getKey());
                return e.getValue().offset() == 0 || (c != null && c.offset() >= e.getValue().offset());
            });
            if (done) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the stream did not commit to the end of " + raw + ": " + committed);
            }
            Thread.sleep(200);
        }
    }

    /** Committed outputs (read_committed) of tokens and text.rejected. */
    private static final class Outputs implements AutoCloseable {
        final KafkaConsumer<String, byte[]> consumer;
        final TopicCatalog topics;
        final Map<String, String> byKey = new TreeMap<>();
        final List<String> duplicateKeys = new ArrayList<>();
        int tokens;

        Outputs(KafkaBroker broker, TopicCatalog topics) {
            Properties p = broker.consumerProperties(KafkaBroker.uniqueName("check"));
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            this.consumer = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
            this.topics = topics;
            consumer.subscribe(List.of(topics.name(Topic.TOKENS), topics.name(Topic.TEXT_REJECTED)));
        }

        int awaitAtLeast(int count, Duration timeout) {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (size() < count) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("only " + size() + " of " + count + " outputs: " + summary());
                }
                poll();
            }
            return size();
        }

        void readToEnd() {
            long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
            while (consumer.assignment().isEmpty() || !atEnd()) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("could not read to the end: " + summary());
                }
                poll();
            }
        }

        private boolean atEnd() {
            var ends = consumer.endOffsets(consumer.assignment());
            return ends.entrySet().stream().allMatch(e -> consumer.position(e.getKey()) >= e.getValue());
        }

        private void poll() {
            for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                String outcome;
                if (r.topic().equals(topics.name(Topic.TOKENS))) {
                    TokenRecord.CODEC.decode(r.value());
                    outcome = "tokens";
                    tokens++;
                } else {
                    outcome = RejectedText.CODEC.decode(r.value()).reason();
                }
                if (byKey.put(r.key(), outcome) != null) {
                    duplicateKeys.add(r.key());
                }
            }
        }

        int size() {
            return byKey.size() + duplicateKeys.size();
        }

        Map<String, Integer> reasons() {
            Map<String, Integer> counts = new TreeMap<>();
            byKey.values().stream().filter(o -> !o.equals("tokens")).forEach(o -> counts.merge(o, 1, Integer::sum));
            return counts;
        }

        String summary() {
            return tokens + " tokens, rejected " + reasons() + ", " + duplicateKeys.size() + " keys twice";
        }

        @Override
        public void close() {
            consumer.close();
        }
    }
}
