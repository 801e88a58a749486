package io.flywheel.trainer;

import static io.flywheel.trainer.TrainerFixture.waitFor;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.checkpoint.CheckpointLog;
import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.topics.Topic;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import io.flywheel.testsupport.Scrape;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bytes changed in the promoted checkpoint's weights while the trainer was down. The restarted
 * trainer resumes from the newest version that verifies, takes the newest promoted version that
 * verifies as the gate's reference (instead of refusing every checkpoint as no_reference), goes
 * on promoting, and its pruning leaves at least two versions that verify.
 */
@ExtendWith(KafkaBrokerExtension.class)
class TrainerDamagedCheckpointTest {

    private static final Duration DEADLINE = Duration.ofMinutes(2);

    @Test
    void aDamagedPromotedCheckpointIsNotADeadEnd(KafkaBroker broker, @TempDir Path dir) throws Exception {
        TrainerFixture fixture = new TrainerFixture(broker, dir);
        fixture.produce(1200, 9, 5);
        Path checkpoints = dir.resolve("checkpoints");
        Map<String, String> settings = fixture.settings(checkpoints);
        settings.put("checkpoint.every-steps", "8");
        settings.put("checkpoint.keep", "2");

        Trainer first = Trainer.start(TrainerFixture.config(settings), fixture.tokenizer);
        Thread run = new Thread(first::run, "first");
        run.start();
        try {
            waitFor(() -> Scrape.of(first.metricsPort()).get("flywheel_trainer_promoted_version") >= 3, "three promotions", DEADLINE);
        } finally {
            first.requestStop();
            assertTrue(first.awaitStop(DEADLINE));
            first.close();
        }
        CheckpointEvent promoted = latest(fixture).orElseThrow();
        damage(CheckpointStore.folder(checkpoints, promoted.version()).resolve("weights.safetensors"));

        Trainer second = Trainer.start(TrainerFixture.config(settings), fixture.tokenizer);
        Thread again = new Thread(second::run, "second");
        again.start();
        try {
            assertTrue(Scrape.of(second.metricsPort()).get("flywheel_trainer_damaged_checkpoints_total") >= 1, "the damage is counted");
            waitFor(() -> latest(fixture).map(CheckpointEvent::version).orElse(0L) > promoted.version(),
                    "a checkpoint promoted after the damage", DEADLINE);
            // Pruning went on meanwhile: two versions that verify are always left.
            waitFor(() -> Scrape.of(second.metricsPort()).get("flywheel_trainer_checkpoint_version") >= promoted.version() + 4,
                    "four more checkpoints", DEADLINE);
        } finally {
            second.requestStop();
            assertTrue(second.awaitStop(DEADLINE));
            second.close();
        }
        long good = CheckpointStore.open(checkpoints).versions().stream()
                .filter(v -> CheckpointStore.verifies(checkpoints, v, null)).count();
        assertTrue(good >= 2, "versions that verify: " + good);
    }

    /** Flips bytes in the middle of a file, keeping its size: only the hash can tell. */
    private static void damage(Path file) throws Exception {
        assertTrue(java.nio.file.Files.isRegularFile(file), file + " exists");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            long at = f.length() / 2;
            f.seek(at);
            int b = f.read();
            f.seek(at);
            f.write(b ^ 0xFF);
        }
    }

    private static java.util.Optional<CheckpointEvent> latest(TrainerFixture fixture) {
        try {
            return CheckpointLog.latest(fixture.broker.bootstrapServers(), fixture.topics.name(Topic.CHECKPOINTS), "test", Duration.ofSeconds(30));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
