package io.flywheel.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.checkpoint.CheckpointLog;
import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.topics.Topic;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import io.flywheel.testsupport.Scrape;
import java.nio.charset.StandardCharsets;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quality gate against a real broker: a trainer that learns promotes its checkpoints; a second
 * trainer for the same model whose checkpoints are worse (a fresh model that hardly moves) writes
 * them but never promotes one, and the promoted version on {@code checkpoints} stays where it was.
 */
@ExtendWith(KafkaBrokerExtension.class)
class TrainerGateTest {

    private static final Duration DEADLINE = Duration.ofMinutes(2);

    @Test
    void aWorseCheckpointIsRejectedAndTheServedVersionStays(KafkaBroker broker, @TempDir Path dir) throws Exception {
        TrainerFixture fixture = new TrainerFixture(broker, dir);
        fixture.produce(800, 3, 5);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(broker.producerProperties())) {
            String tokens = fixture.topics.name(Topic.TOKENS);
            byte[] otherTokenizer = TokenRecord.CODEC.encode(new TokenRecord("ab".repeat(32), Split.TRAIN, new int[] {1, 2, 3}));
            producer.send(new ProducerRecord<>(tokens, "other".getBytes(StandardCharsets.UTF_8), otherTokenizer)).get();
            producer.send(new ProducerRecord<>(tokens, "bad".getBytes(StandardCharsets.UTF_8), new byte[] {7, 7})).get();
        }

        // A trainer that learns: its first checkpoint is promoted, later ones pass as not worse.
        Map<String, String> good = fixture.settings(dir.resolve("good"));
        good.put("checkpoint.every-steps", "15");
        good.put("checkpoint.every-seconds", "60");
        Trainer learner = Trainer.start(TrainerFixture.config(good), fixture.tokenizer);
        Thread learning = new Thread(learner::run, "learner");
        learning.start();
        try {
            waitFor(() -> Scrape.of(learner.metricsPort()).get("flywheel_trainer_promoted_version") >= 3, "three promotions");
            waitFor(() -> Scrape.of(learner.metricsPort()).sum("flywheel_trainer_records_refused_total") >= 2, "the bad records");
            Scrape m = Scrape.of(learner.metricsPort());
            assertEquals(1, m.get("flywheel_trainer_records_refused_total{reason=\"tokenizer_mismatch\"}"));
            assertEquals(1, m.get("flywheel_trainer_records_refused_total{reason=\"malformed\"}"));
            assertEquals(1, m.get("flywheel_trainer_gate_decisions_total{decision=\"accept\",reason=\"first\"}"));
        } finally {
            learner.requestStop();
            assertTrue(learner.awaitStop(DEADLINE));
            learner.close();
        }
        CheckpointEvent promoted = latest(fixture).orElseThrow();
        assertTrue(promoted.version() >= 3);
        assertTrue(promoted.metrics().get("validation_loss") < Math.log(fixture.tokenizer.vocabSize()) - 1,
                "the learner's promoted model is clearly better than chance: " + promoted.metrics());

        // A worse trainer for the same model: a fresh model with a learning rate too small to move.
        Map<String, String> worse = fixture.settings(dir.resolve("worse"));
        worse.put("optim.lr", "1e-7");
        worse.put("optim.min-lr", "0");
        worse.put("train.seed", "99");
        worse.put("checkpoint.every-steps", "3");
        Trainer laggard = Trainer.start(TrainerFixture.config(worse), fixture.tokenizer);
        Thread lagging = new Thread(laggard::run, "laggard");
        lagging.start();
        Scrape rejected;
        try {
            waitFor(() -> Scrape.of(laggard.metricsPort()).get("flywheel_trainer_gate_decisions_total{decision=\"reject\",reason=\"worse\"}") >= 2,
                    "two rejections");
            rejected = Scrape.of(laggard.metricsPort());
        } finally {
            laggard.requestStop();
            assertTrue(laggard.awaitStop(DEADLINE));
            laggard.close();
        }
        assertEquals(0, rejected.get("flywheel_trainer_gate_decisions_total{decision=\"accept\",reason=\"first\"}")
                + rejected.get("flywheel_trainer_gate_decisions_total{decision=\"accept\",reason=\"not_worse\"}"), "nothing accepted");
        assertEquals(promoted.version(), rejected.get("flywheel_trainer_promoted_version"), "the laggard knows what is promoted");
        assertTrue(CheckpointStore.open(dir.resolve("worse")).versions().size() >= 2, "its checkpoints were written");
        CheckpointEvent after = latest(fixture).orElseThrow();
        assertEquals(promoted, after, "the promoted checkpoint on the topic did not change");

        // --init: a new store starting from the promoted weights is as good as they are, so it passes.
        Map<String, String> tuned = fixture.settings(dir.resolve("tuned"));
        tuned.put("trainer.init", Path.of(URI.create(promoted.uri())).toString());
        tuned.put("optim.lr", "1e-4");
        tuned.put("checkpoint.every-steps", "3");
        Trainer fineTuner = Trainer.start(TrainerFixture.config(tuned), fixture.tokenizer);
        Thread tuning = new Thread(fineTuner::run, "fine-tuner");
        tuning.start();
        try {
            waitFor(() -> Scrape.of(fineTuner.metricsPort()).get("flywheel_trainer_gate_decisions_total{decision=\"accept\",reason=\"not_worse\"}") >= 1,
                    "the fine-tuned checkpoint to pass the gate");
        } finally {
            fineTuner.requestStop();
            assertTrue(fineTuner.awaitStop(DEADLINE));
            fineTuner.close();
        }
        CheckpointEvent tunedEvent = latest(fixture).orElseThrow();
        assertTrue(tunedEvent.uri().contains("tuned"), "the fine-tuned checkpoint is promoted: " + tunedEvent.uri());
        CheckpointStore tunedStore = CheckpointStore.open(dir.resolve("tuned"));
        assertTrue(tunedStore.open(tunedStore.versions().get(0)).manifest().path("parent").isNull(), "its store starts a new lineage");
        assertTrue(tunedEvent.version() > promoted.version(), "versions only go up for serving, across stores");
    }

    private static Optional<CheckpointEvent> latest(TrainerFixture fixture) throws Exception {
        return CheckpointLog.latest(fixture.broker.bootstrapServers(), fixture.topics.name(Topic.CHECKPOINTS), "test", Duration.ofSeconds(30));
    }

    private static void waitFor(BooleanSupplier condition, String what) throws InterruptedException {
        TrainerFixture.waitFor(condition, what, DEADLINE);
    }
}
