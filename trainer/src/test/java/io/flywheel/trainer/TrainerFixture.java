package io.flywheel.trainer;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.testsupport.KafkaBroker;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

/**
 * What the trainer tests share: a small tokenizer trained on a toy language, documents in it, and
 * topics of their own on the test broker.
 */
final class TrainerFixture {

    private static final String[] SUBJECTS = {"the cat", "a dog", "the bird", "my friend", "the old man", "a child"};
    private static final String[] VERBS = {"sees", "likes", "finds", "follows", "watches"};
    private static final String[] OBJECTS = {"the red ball", "a green tree", "the river", "a small house", "the moon"};

    final KafkaBroker broker;
    final String prefix;
    final TopicCatalog topics;
    final Path tokenizerFile;
    final Tokenizer tokenizer;

    /** A produced token record: where it landed and how many tokens it has. */
    record Sent(int partition, long offset, Split split, int tokens) {}

    TrainerFixture(KafkaBroker broker, Path dir) throws Exception {
        this.broker = broker;
        this.prefix = KafkaBroker.uniqueName("trainer") + ".";
        this.topics = TopicCatalog.from(Settings.of(Map.of(), Map.of()).with("topics.prefix", prefix));
        topics.ensureCreated(broker.admin());
        BpeTrainer bpe = new BpeTrainer(PreTokenizer.GPT2, 320, BpeTrainer.DEFAULT_SPECIALS, s -> {});
        bpe.add(text(new SplittableRandom(0), 400).getBytes(StandardCharsets.UTF_8));
        byte[] file = bpe.train();
        this.tokenizerFile = dir.resolve("toy-tokenizer.json");
        Files.write(tokenizerFile, file);
        this.tokenizer = TokenizerFiles.read("toy", file);
    }

    static String text(SplittableRandom r, int sentences) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < sentences; i++) {
            sb.append(SUBJECTS[r.nextInt(SUBJECTS.length)]).append(' ').append(VERBS[r.nextInt(VERBS.length)])
                    .append(' ').append(OBJECTS[r.nextInt(OBJECTS.length)]).append(". ");
        }
        return sb.toString().strip();
    }

    /** Produces {@code count} documents of 1-4 sentences; every {@code validationEvery}-th is validation. */
    List<Sent> produce(int count, long seed, int validationEvery) throws Exception {
        SplittableRandom r = new SplittableRandom(seed);
        List<Sent> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(broker.producerProperties())) {
            List<java.util.concurrent.Future<RecordMetadata>> futures = new ArrayList<>();
            List<TokenRecord> records = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                Split split = validationEvery > 0 && i % validationEvery == 0 ? Split.VALIDATION : Split.TRAIN;
                TokenRecord t = new TokenRecord(tokenizer.id(), split, tokenizer.encode(text(r, 1 + r.nextInt(4))));
                records.add(t);
                futures.add(producer.send(new ProducerRecord<>(topics.name(Topic.TOKENS),
                        ("doc-" + seed + "-" + i).getBytes(StandardCharsets.UTF_8), TokenRecord.CODEC.encode(t))));
            }
            for (int i = 0; i < count; i++) {
                RecordMetadata m = futures.get(i).get();
                sent.add(new Sent(m.partition(), m.offset(), records.get(i).split(), records.get(i).ids().length));
            }
        }
        return sent;
    }

    /** The settings a test trainer runs with: a tiny model that checkpoints often. */
    Map<String, String> settings(Path checkpoints) {
        Map<String, String> s = new HashMap<>();
        s.put("kafka.bootstrap", broker.bootstrapServers());
        s.put("topics.prefix", prefix);
        s.put("trainer.tokenizer", tokenizerFile.toString());
        s.put("trainer.checkpoint-dir", checkpoints.toString());
        s.put("trainer.model-name", "test");
        s.put("trainer.metrics.port", "0");
        s.put("trainer.peak-flops", "1e11");
        s.put("model.context", "32");
        s.put("model.layers", "1");
        s.put("model.heads", "2");
        s.put("model.width", "32");
        s.put("train.batch", "4");
        s.put("optim.lr", "3e-3");
        s.put("optim.warmup-steps", "5");
        s.put("eval.max-tokens", "1024");
        s.put("checkpoint.every-steps", "10");
        s.put("checkpoint.every-seconds", "1");
        return s;
    }

    /** The trainer's configuration from a map of settings. */
    static TrainerConfig config(Map<String, String> values) {
        Settings s = Settings.of(Map.of(), Map.of());
        for (var e : values.entrySet()) {
            s = s.with(e.getKey(), e.getValue());
        }
        return TrainerConfig.from(s);
    }

    /** Polls {@code condition} until it holds; fails after {@code deadline}. */
    static void waitFor(java.util.function.BooleanSupplier condition, String what, java.time.Duration deadline) throws InterruptedException {
        long end = System.nanoTime() + deadline.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(50);
        }
    }
}
