package io.flywheel.trainer;

import static io.flywheel.trainer.TrainerFixture.waitFor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import io.flywheel.testsupport.Scrape;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A full checkpoint disk, for real: the checkpoint directory is a 3 MiB tmpfs, filled up by a file
 * of ours. The trainer goes on training, counts the failed checkpoints and leaves nothing
 * half-written; once space is free again its next attempt succeeds. Mounting needs root (CI has
 * it); elsewhere the test is skipped with a message.
 */
@ExtendWith(KafkaBrokerExtension.class)
class TrainerFullDiskTest {

    private Path mounted;

    @AfterEach
    void unmount() throws Exception {
        if (mounted != null) {
            new ProcessBuilder("umount", mounted.toString()).inheritIO().start().waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void aFullDiskCostsCheckpointsNotTheTrainer(KafkaBroker broker, @TempDir Path dir) throws Exception {
        Path disk = Files.createDirectory(dir.resolve("disk"));
        mount(disk, "3m");
        Path filler = disk.resolve("filler");
        fill(filler);

        TrainerFixture fixture = new TrainerFixture(broker, dir);
        fixture.produce(600, 5, 5);
        Map<String, String> settings = fixture.settings(disk.resolve("checkpoints"));
        Trainer trainer = Trainer.start(TrainerFixture.config(settings), fixture.tokenizer);
        Thread training = new Thread(trainer::run, "trainer");
        training.start();
        try {
            waitFor(() -> Scrape.of(trainer.metricsPort()).get("flywheel_trainer_checkpoint_failures_total") >= 1, "a failed checkpoint",
                    Duration.ofMinutes(2));
            double steps = Scrape.of(trainer.metricsPort()).sum("flywheel_trainer_steps_total");
            waitFor(() -> Scrape.of(trainer.metricsPort()).sum("flywheel_trainer_steps_total") > steps + 5, "training after it",
                    Duration.ofMinutes(2));
            assertTrue(training.isAlive(), "the trainer is still running");
            try (Stream<Path> left = Files.list(disk.resolve("checkpoints"))) {
                assertTrue(left.noneMatch(p -> p.getFileName().toString().startsWith(".")), "nothing half-written is left");
            }
            assertEquals(0, CheckpointStore.open(disk.resolve("checkpoints")).versions().size());

            // Space again: the next attempt (after its backoff) writes a checkpoint.
            Files.delete(filler);
            waitFor(() -> Scrape.of(trainer.metricsPort()).get("flywheel_trainer_checkpoint_version") >= 1, "a checkpoint once space is free",
                    Duration.ofMinutes(2));
            assertTrue(CheckpointStore.open(disk.resolve("checkpoints")).versions().size() >= 1);
        } finally {
            trainer.requestStop();
            assertTrue(trainer.awaitStop(Duration.ofMinutes(2)));
            trainer.close();
        }
    }

    private void mount(Path at, String size) throws Exception {
        Process p;
        try {
            p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", at.toString()).redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("no mount command: the full-disk test needs a tmpfs it can mount");
            return;
        }
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            Assumptions.abort("cannot mount a tmpfs here (needs root): the full-disk test is skipped: " + out.strip());
        }
        mounted = at;
    }

    /** Writes until the file system is full. */
    private static void fill(Path file) throws IOException {
        byte[] block = new byte[64 * 1024];
        try (OutputStream out = Files.newOutputStream(file)) {
            while (true) {
                out.write(block);
            }
        } catch (IOException full) {
            // No space left on device: what we wanted
        }
    }
}
