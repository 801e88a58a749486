package io.flywheel.serving;

import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.config.Settings;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.model.Gpt;
import io.flywheel.model.GptConfig;
import io.flywheel.model.ModelCheckpoint;
import io.flywheel.testsupport.KafkaBroker;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * What the serving tests run against: a real in-process KRaft broker with Flywheel's topics (a
 * prefix of their own), a small tokenizer with the chat role tokens, and a checkpoint store whose
 * version 1 is promoted on {@code checkpoints} before the app starts.
 */
public class ServingResource implements QuarkusTestResourceLifecycleManager {

    static final String MODEL = "test-model";
    static final String API_KEY = "key-1";
    static final String OTHER_KEY = "key-2";
    static final String ADMIN_KEY = "admin-secret";

    static volatile KafkaBroker broker;
    static TopicCatalog topics;
    static Tokenizer tokenizer;
    static GptConfig config;
    static CheckpointStore store;
    static Path tokenizerFile;
    static String prefix;

    /** Settings a test class overrides with {@code initArgs} (for example a tiny queue, or a model never promoted). */
    private final Map<String, String> overrides = new HashMap<>();

    @Override
    public void init(Map<String, String> initArgs) {
        initArgs.forEach((k, v) -> overrides.put("flywheel.serving." + k, v));
    }

    @Override
    public Map<String, String> start() {
        try {
            synchronized (ServingResource.class) {
                setUpOnce();
            }
        } catch (Exception e) {
            throw new IllegalStateException("cannot set up the serving test", e);
        }
        Map<String, String> props = new HashMap<>();
        props.put("flywheel.kafka.bootstrap", broker.bootstrapServers());
        props.put("flywheel.topics.prefix", prefix);
        props.put("flywheel.serving.model-name", MODEL);
        props.put("flywheel.serving.tokenizer", tokenizerFile.toString());
        props.put("flywheel.serving.api-keys", API_KEY + "," + OTHER_KEY + ",k1,k2,k3,k4,k5,k6,k7,k8,k9,k10,k11,k12");
        props.put("flywheel.serving.admin-key", ADMIN_KEY);
        props.putAll(overrides);
        return props;
    }

    /** The broker, topics, tokenizer and first checkpoint, shared by every test class of the run. */
    private static void setUpOnce() throws Exception {
        if (broker != null) {
            return;
        }
        broker = KafkaBroker.start();
        prefix = KafkaBroker.uniqueName("serving") + ".";
        topics = TopicCatalog.from(Settings.of(Map.of(), Map.of()).with("topics.prefix", prefix));
        topics.ensureCreated(broker.admin());
        Path dir = Files.createTempDirectory("flywheel-serving-test");
        BpeTrainer bpe = new BpeTrainer(PreTokenizer.GPT2, 280, BpeTrainer.DEFAULT_SPECIALS, s -> {});
        bpe.add("the cat sat on the mat. the dog sat on the log. a bird sang in the tree. ".repeat(50)
                .getBytes(StandardCharsets.UTF_8));
        byte[] file = bpe.train();
        tokenizerFile = dir.resolve("tokenizer.json");
        Files.write(tokenizerFile, file);
        tokenizer = TokenizerFiles.read("test", file);
        config = new GptConfig(tokenizer.vocabSize(), 64, 1, 2, 32, 4, 0.0, true);
        store = CheckpointStore.open(dir.resolve("checkpoints"));
        publish(checkpoint(1, 1));
    }

    /** Saves a random model as {@code version} in the store and returns its promotion event. */
    static CheckpointEvent checkpoint(long version, long seed) throws Exception {
        Gpt model = Gpt.initialize(config, seed);
        var stored = ModelCheckpoint.save(store, version, model, null,
                new ModelCheckpoint.State(tokenizer.id(), version * 10, version == 1 ? null : version - 1, Map.of(), Map.of()));
        return new CheckpointEvent(version, stored.folder().toUri().toString(), stored.sha256(), version == 1 ? null : version - 1,
                tokenizer.id(), Map.of(), Map.of());
    }

    static void publish(CheckpointEvent event) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(broker.producerProperties())) {
            producer.send(new ProducerRecord<>(topics.name(Topic.CHECKPOINTS), MODEL.getBytes(StandardCharsets.UTF_8),
                    CheckpointEvent.CODEC.encode(event))).get();
        }
    }

    @Override
    public void stop() {
        // The broker is shared by every test class of the run; the JVM's end stops it.
    }
}
