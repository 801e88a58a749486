package io.flywheel.tokenizerstream;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.RawText;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.test.TestRecord;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;

/** The topology in a {@link TopologyTestDriver}, with typed inputs and outputs. */
final class StreamHarness implements AutoCloseable {

    static final Tokenizer TOKENIZER = load();

    final StreamConfig config;
    final PrometheusRegistry registry = new PrometheusRegistry();
    private final TopologyTestDriver driver;
    private final TestInputTopic<String, byte[]> raw;
    private final TestOutputTopic<String, TokenRecord> tokens;
    private final TestOutputTopic<String, RejectedText> rejected;

    /** @param settings key/value pairs overriding the defaults, e.g. "filter.min-chars", "1" */
    StreamHarness(String... settings) {
        Map<String, String> env = new HashMap<>();
        for (int i = 0; i < settings.length; i += 2) {
            env.put(Settings.envName(settings[i]), settings[i + 1]);
        }
        config = StreamConfig.from(Settings.of(env, Map.of()));
        Properties props = TokenizerStream.properties(config);
        try {
            props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("tokenizer-stream-test").toString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        driver = new TopologyTestDriver(new TokenizerTopology(config, TOKENIZER, new StreamMetrics(registry)).build(), props);
        raw = driver.createInputTopic(config.topics().name(Topic.TEXT_RAW), Serdes.String().serializer(), Serdes.ByteArray().serializer());
        tokens = driver.createOutputTopic(config.topics().name(Topic.TOKENS), Serdes.String().deserializer(), TokenRecord.CODEC.serde().deserializer());
        rejected = driver.createOutputTopic(config.topics().name(Topic.TEXT_REJECTED), Serdes.String().deserializer(), RejectedText.CODEC.serde().deserializer());
    }

    private static Tokenizer load() {
        try {
            return TokenizerFiles.load("cl100k_base");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] json(String id, String text) {
        return RawText.CODEC.encode(new RawText(id, "test", text, 1_700_000_000_000L, Map.of()));
    }

    void send(String id, byte[] value) {
        raw.pipeInput(id, value);
    }

    /** A record as any Kafka producer sends it: its own key, timestamp and headers. */
    void sendRecord(TestRecord<String, byte[]> record) {
        raw.pipeInput(record);
    }

    void send(String id, String text) {
        send(id, json(id, text));
    }

    /** Sends one document and returns the cleaned text it became, failing if it was rejected. */
    String clean(String text) {
        send("doc", text);
        List<KeyValue<String, RejectedText>> r = rejected();
        if (!r.isEmpty()) {
            throw new AssertionError("rejected: " + r.get(0).value);
        }
        return TOKENIZER.decode(tokens().get(0).value.ids());
    }

    /** Sends one document and returns its rejection, failing if it became tokens. */
    RejectedText reject(String id, String text) {
        send(id, text);
        return single();
    }

    RejectedText single() {
        List<KeyValue<String, TokenRecord>> t = tokens();
        if (!t.isEmpty()) {
            throw new AssertionError("not rejected: became " + t.get(0).value + ": " + TOKENIZER.decode(t.get(0).value.ids()));
        }
        List<KeyValue<String, RejectedText>> r = rejected();
        if (r.size() != 1) {
            throw new AssertionError("expected one rejection, got " + r);
        }
        return r.get(0).value;
    }

    List<KeyValue<String, TokenRecord>> tokens() {
        return tokens.readKeyValuesToList();
    }

    List<KeyValue<String, RejectedText>> rejected() {
        return rejected.readKeyValuesToList();
    }

    static String utf8(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    double counter(String name, String labelName, String labelValue) {
        return registry.scrape().stream()
                .filter(m -> m.getMetadata().getPrometheusName().equals(name))
                .flatMap(m -> m.getDataPoints().stream())
                .filter(d -> labelName == null || labelValue.equals(d.getLabels().get(labelName)))
                .mapToDouble(d -> ((io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot) d).getValue())
                .sum();
    }

    @Override
    public void close() {
        driver.close();
    }
}
