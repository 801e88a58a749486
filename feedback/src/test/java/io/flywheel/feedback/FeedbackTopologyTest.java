package io.flywheel.feedback;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.Feedback;
import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.records.ResponseRecord;
import io.flywheel.core.tokenizer.Tokenizer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The feedback topology in a {@link TopologyTestDriver}: joins, waits, pairs, and every rejection. */
class FeedbackTopologyTest {

    static final String CHAT = "<|endoftext|><|user|>Tell me about the sea.<|end|><|assistant|>";

    Tokenizer tokenizer;
    FeedbackConfig config;
    PrometheusRegistry registry;
    TopologyTestDriver driver;
    TestInputTopic<String, byte[]> responses;
    TestInputTopic<String, byte[]> feedback;
    TestOutputTopic<String, PreferenceRecord> preferences;
    TestOutputTopic<String, RejectedText> rejected;

    @BeforeEach
    void start() throws Exception {
        tokenizer = TestTokenizer.get();
        Map<String, String> env = new HashMap<>();
        env.put(Settings.envName("feedback.join-wait-ms"), "30000");
        config = FeedbackConfig.from(Settings.of(env, Map.of()));
        Properties props = FeedbackStream.properties(config);
        props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("feedback-test").toString());
        registry = new PrometheusRegistry();
        driver = new TopologyTestDriver(new FeedbackTopology(config, tokenizer, new FeedbackMetrics(registry)).build(), props);
        responses = driver.createInputTopic(config.topics().name(io.flywheel.core.topics.Topic.RESPONSES),
                Serdes.String().serializer(), Serdes.ByteArray().serializer());
        feedback = driver.createInputTopic(config.topics().name(io.flywheel.core.topics.Topic.FEEDBACK_RAW),
                Serdes.String().serializer(), Serdes.ByteArray().serializer());
        preferences = driver.createOutputTopic(config.topics().name(io.flywheel.core.topics.Topic.PREFERENCES),
                Serdes.String().deserializer(), PreferenceRecord.CODEC.serde().deserializer());
        rejected = driver.createOutputTopic(config.topics().name(io.flywheel.core.topics.Topic.FEEDBACK_REJECTED),
                Serdes.String().deserializer(), RejectedText.CODEC.serde().deserializer());
    }

    @AfterEach
    void stop() {
        driver.close();
    }

    void response(String id, String prompt, String completion) {
        responses.pipeInput(id, ResponseRecord.CODEC.encode(new ResponseRecord(id, 1, prompt, completion, 1L)));
    }

    void rate(String id, int rating, String user) {
        Feedback f = new Feedback.Rating(id, rating, user, null, 2L);
        feedback.pipeInput(f.key(), Feedback.CODEC.encode(f));
    }

    void compare(String chosen, String rejectedId, String user) {
        Feedback f = new Feedback.Comparison(chosen, rejectedId, user, null, 2L);
        feedback.pipeInput(f.key(), Feedback.CODEC.encode(f));
    }

    int[] answer(String text) {
        int[] ids = tokenizer.encode(text);
        int[] closed = Arrays.copyOf(ids, ids.length + 1);
        closed[ids.length] = tokenizer.specialId("<|end|>");
        return closed;
    }

    @Test
    void aComparisonBecomesAPairTokenizedWithTheChatTemplate() {
        response("r1", CHAT, "The sea is wide.");
        response("r2", CHAT, "sea sea sea");
        compare("r1", "r2", "ann");

        List<TestRecord<String, PreferenceRecord>> out = preferences.readRecordsToList();
        assertEquals(1, out.size());
        PreferenceRecord pair = out.get(0).value();
        assertEquals(PreferenceRecord.Kind.PAIR, pair.kind());
        assertEquals(Joined.promptHash(CHAT), out.get(0).key());
        assertEquals(tokenizer.id(), pair.tokenizerId());
        assertArrayEquals(tokenizer.encodeWithSpecials(CHAT), pair.promptIds());
        assertEquals(tokenizer.specialId("<|assistant|>"), pair.promptIds()[pair.promptIds().length - 1]);
        assertArrayEquals(answer("The sea is wide."), pair.chosenIds());
        assertArrayEquals(answer("sea sea sea"), pair.rejectedIds());
        assertTrue(rejected.isEmpty());
        assertEquals(1, counter("flywheel_feedback_joined_total", null));
    }

    @Test
    void ratingsOfOnePromptPairLikedWithDislikedAndLikesAreSupervised() {
        response("a", CHAT, "A calm, deep sea.");
        response("b", CHAT, "no");
        response("c", CHAT, "Waves and salt.");
        rate("a", 1, "ann");       // supervised(a)
        rate("b", -1, "bob");      // pair(a > b)
        rate("c", 1, "cat");       // pair(c > b), supervised(c)

        List<PreferenceRecord> out = preferences.readValuesToList();
        assertEquals(4, out.size(), out.toString());
        assertEquals(PreferenceRecord.Kind.SUPERVISED, out.get(0).kind());
        assertArrayEquals(answer("A calm, deep sea."), out.get(0).chosenIds());
        assertEquals(0, out.get(0).rejectedIds().length);
        assertEquals(PreferenceRecord.Kind.PAIR, out.get(1).kind());
        assertArrayEquals(answer("A calm, deep sea."), out.get(1).chosenIds());
        assertArrayEquals(answer("no"), out.get(1).rejectedIds());
        assertEquals(PreferenceRecord.Kind.PAIR, out.get(2).kind());
        assertArrayEquals(answer("Waves and salt."), out.get(2).chosenIds());
        assertArrayEquals(answer("no"), out.get(2).rejectedIds());
        assertEquals(PreferenceRecord.Kind.SUPERVISED, out.get(3).kind());
        assertArrayEquals(answer("Waves and salt."), out.get(3).chosenIds());
        long pairs = out.stream().filter(p -> p.kind() == PreferenceRecord.Kind.PAIR).count();
        assertEquals(2, pairs);
        assertEquals(2, counter("flywheel_feedback_preferences_out_total", "pair"));
        assertEquals(2, counter("flywheel_feedback_preferences_out_total", "supervised"));
    }

    @Test
    void aSecondUserLikingTheSameAnswerAddsNothingAndTheSameUserTwiceIsADuplicate() {
        response("a", CHAT, "A calm sea.");
        rate("a", 1, "ann");
        rate("a", 1, "bob");
        rate("a", 1, "ann");

        assertEquals(1, preferences.readValuesToList().size());
        List<RejectedText> r = rejected.readValuesToList();
        assertEquals(1, r.size());
        assertEquals("duplicate", r.get(0).reason());
        assertTrue(r.get(0).detail().contains("ann"), r.get(0).detail());
    }

    @Test
    void feedbackWaitsForItsResponseThenJoins() {
        rate("late", 1, "ann");
        assertTrue(preferences.isEmpty());
        assertTrue(rejected.isEmpty());
        driver.advanceWallClockTime(Duration.ofSeconds(1));
        assertEquals(1, gauge("flywheel_feedback_waiting"));

        response("late", CHAT, "Here I am.");
        driver.advanceWallClockTime(Duration.ofSeconds(2));
        List<PreferenceRecord> out = preferences.readValuesToList();
        assertEquals(1, out.size());
        assertArrayEquals(answer("Here I am."), out.get(0).chosenIds());
        assertEquals(0, gauge("flywheel_feedback_waiting"));
        assertTrue(rejected.isEmpty());
    }

    @Test
    void feedbackWhoseResponseNeverAppearsIsRejectedAfterTheWait() {
        byte[] original = Feedback.CODEC.encode(new Feedback.Rating("ghost", -1, "ann", "bad", 2L));
        feedback.pipeInput("ghost", original);
        driver.advanceWallClockTime(Duration.ofSeconds(10));
        assertTrue(rejected.isEmpty(), "rejected before the wait ran out");
        driver.advanceWallClockTime(Duration.ofSeconds(25));
        List<TestRecord<String, RejectedText>> r = rejected.readRecordsToList();
        assertEquals(1, r.size());
        assertEquals("ghost", r.get(0).key());
        assertEquals("unknown_response", r.get(0).value().reason());
        assertArrayEquals(original, r.get(0).value().original());
        assertTrue(preferences.isEmpty());
        assertEquals(1, counter("flywheel_feedback_rejected_total", "unknown_response"));
    }

    @Test
    void badFeedbackIsRejectedWithItsReasonAndTheOriginalBytes() {
        response("p", CHAT, "one");
        response("q", "<|endoftext|>another prompt", "two");
        response("s", CHAT, "one");
        responses.pipeInput("broken", "{\"id\":\"broken\"}".getBytes(StandardCharsets.UTF_8));

        byte[] notJson = "{rating: 1".getBytes(StandardCharsets.UTF_8);
        feedback.pipeInput("p", notJson);
        feedback.pipeInput("p", "{\"response_id\":\"p\",\"rating\":2,\"ts\":1}".getBytes(StandardCharsets.UTF_8));
        compare("p", "q", "ann");
        compare("p", "s", "ann");
        rate("broken", 1, "ann");

        List<RejectedText> r = rejected.readValuesToList();
        assertEquals(List.of("malformed", "malformed", "prompt_mismatch", "identical_completions", "invalid_response"),
                r.stream().map(RejectedText::reason).toList());
        assertArrayEquals(notJson, r.get(0).original());
        assertTrue(r.get(1).detail().contains("rating"), r.get(1).detail());
        assertTrue(preferences.isEmpty());
        assertEquals(5, counter("flywheel_feedback_in_total", null));
    }

    double counter(String name, String kindOrReason) {
        return registry.scrape().stream()
                .filter(m -> m.getMetadata().getPrometheusName().equals(name.replace("_total", "")))
                .flatMap(m -> ((CounterSnapshot) m).getDataPoints().stream())
                .filter(d -> kindOrReason == null || d.getLabels().stream().anyMatch(l -> l.getValue().equals(kindOrReason)))
                .mapToDouble(CounterSnapshot.CounterDataPointSnapshot::getValue).sum();
    }

    double gauge(String name) {
        return registry.scrape().stream()
                .filter(m -> m.getMetadata().getPrometheusName().equals(name))
                .flatMap(m -> m.getDataPoints().stream())
                .mapToDouble(d -> ((io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot) d).getValue())
                .sum();
    }
}
