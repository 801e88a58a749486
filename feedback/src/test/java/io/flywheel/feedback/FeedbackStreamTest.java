package io.flywheel.feedback;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.Feedback;
import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.records.ResponseRecord;
import io.flywheel.core.streams.StreamsApp;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The feedback stream against a real KRaft broker, exactly-once: feedback that overtakes its
 * response waits and then joins, a comparison becomes a pair, and what cannot be used lands on
 * {@code feedback.rejected} with its reason. A restart in the middle keeps waiting feedback.
 */
@ExtendWith(KafkaBrokerExtension.class)
class FeedbackStreamTest {

    static final String CHAT = "<|endoftext|><|user|>Tell me about the sea.<|end|><|assistant|>";

    @TempDir
    Path stateDir;

    @Test
    void feedbackBecomesPreferencesOrRejectionsThroughARestart(KafkaBroker broker) throws Exception {
        String prefix = KafkaBroker.uniqueName("feedback") + ".";
        Settings settings = Settings.of(Map.of(), Map.of())
                .with("topics.prefix", prefix)
                .with("kafka.bootstrap", broker.bootstrapServers())
                .with("feedback.application-id", KafkaBroker.uniqueName("feedback-app"))
                .with("feedback.state-dir", stateDir)
                .with("feedback.join-wait-ms", 8000)
                .with("feedback.retry-interval-ms", 200)
                .with("feedback.metrics.port", 0);
        FeedbackConfig config = FeedbackConfig.from(settings);
        config.topics().ensureCreated(broker.admin());
        Tokenizer tokenizer = TestTokenizer.get();
        String responses = config.topics().name(Topic.RESPONSES);
        String feedback = config.topics().name(Topic.FEEDBACK_RAW);

        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(broker.producerProperties())) {
            StreamsApp stream = FeedbackStream.start(config, tokenizer, Map.of());
            try {
                // Feedback first, its response later: it must wait and then join.
                send(producer, feedback, "late", Feedback.CODEC.encode(new Feedback.Rating("late", 1, "ann", null, 1L)));
                send(producer, feedback, "ghost", Feedback.CODEC.encode(new Feedback.Rating("ghost", -1, "ann", null, 1L)));
                send(producer, feedback, "x", "not json".getBytes(StandardCharsets.UTF_8));
                send(producer, responses, "a", response("a", "The sea is wide."));
                send(producer, responses, "b", response("b", "sea sea sea"));
                // The same user's comparison twice, in both orders and on different partitions: one pair.
                producer.send(new ProducerRecord<>(feedback, 0, "a".getBytes(StandardCharsets.UTF_8),
                        Feedback.CODEC.encode(new Feedback.Comparison("a", "b", "bob", "better", 1L)))).get();
                List<PreferenceRecord> first = await(broker, config, Topic.PREFERENCES, 1, PreferenceRecord.CODEC::decode);
                assertEquals(PreferenceRecord.Kind.PAIR, first.get(0).kind());
                producer.send(new ProducerRecord<>(feedback, 1, "b".getBytes(StandardCharsets.UTF_8),
                        Feedback.CODEC.encode(new Feedback.Comparison("b", "a", "bob", "changed my mind", 2L)))).get();
            } finally {
                stream.close();
            }
            // The waiting rating survives the restart (its store is changelogged) and joins after it.
            send(producer, responses, "late", response("late", "Salt and waves."));
            stream = FeedbackStream.start(config, tokenizer, Map.of());
            try {
                List<PreferenceRecord> prefs = await(broker, config, Topic.PREFERENCES, 2, PreferenceRecord.CODEC::decode);
                assertEquals(2, prefs.size(), prefs.toString());
                assertEquals(PreferenceRecord.Kind.SUPERVISED, prefs.get(1).kind());
                assertArrayEquals(tokenizer.encodeWithSpecials(CHAT), prefs.get(1).promptIds());
                assertEquals("Salt and waves.", tokenizer.decode(prefs.get(1).chosenIds()).replace("<|end|>", ""));

                List<RejectedText> rejected = await(broker, config, Topic.FEEDBACK_REJECTED, 3, RejectedText.CODEC::decode);
                assertEquals(List.of("duplicate", "malformed", "unknown_response"), rejected.stream().map(RejectedText::reason).sorted().toList());
            } finally {
                stream.close();
            }
        }
    }

    private static byte[] response(String id, String completion) {
        return ResponseRecord.CODEC.encode(new ResponseRecord(id, 3, CHAT, completion, System.currentTimeMillis()));
    }

    private static void send(KafkaProducer<byte[], byte[]> producer, String topic, String key, byte[] value) throws Exception {
        producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), value)).get();
    }

    /** Reads the whole topic (committed records only) until it holds at least {@code n}, within a deadline. */
    private static <T> List<T> await(KafkaBroker broker, FeedbackConfig config, Topic topic, int n,
                                     java.util.function.Function<byte[], T> decode) {
        String name = config.topics().name(topic);
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(broker.consumerProperties(KafkaBroker.uniqueName("reader")))) {
            consumer.subscribe(List.of(name));
            List<T> out = new ArrayList<>();
            while (out.size() < n) {
                assertTrue(System.nanoTime() < deadline, "only " + out.size() + " of " + n + " records on " + name + ": " + out);
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    out.add(decode.apply(r.value()));
                }
            }
            return out;
        }
    }
}
