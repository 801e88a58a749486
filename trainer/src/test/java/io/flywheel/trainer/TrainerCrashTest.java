package io.flywheel.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.records.Split;
import io.flywheel.core.serde.Json;
import io.flywheel.core.topics.Topic;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import io.flywheel.testsupport.Scrape;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crash and resume against a real broker: the trainer runs as a child JVM, is killed with SIGKILL
 * mid-run, restarts from its latest checkpoint, and the record slices the surviving model history
 * trained on (run 1 up to that checkpoint's step, then run 2) tile every train record exactly:
 * no gap, no repeat.
 */
@ExtendWith(KafkaBrokerExtension.class)
class TrainerCrashTest {

    private static final Duration DEADLINE = Duration.ofMinutes(3);

    @Test
    void sigkillMidRunThenResumeTrainsEveryTokenExactlyOnce(KafkaBroker broker, @TempDir Path dir) throws Exception {
        TrainerFixture fixture = new TrainerFixture(broker, dir);
        Path checkpoints = dir.resolve("checkpoints");
        List<TrainerFixture.Sent> sent = new ArrayList<>(fixture.produce(1500, 1, 10));

        // Run 1: killed with SIGKILL once a few checkpoints exist.
        Path trace1 = dir.resolve("trace-1.txt");
        Process run1 = startTrainer(fixture, checkpoints, trace1, dir.resolve("run-1.log"));
        try {
            // ... a few steps after its second or later checkpoint, so that work since then is lost.
            waitFor(() -> versions(checkpoints).size() >= 2
                            && lastStep(trace1) >= manifestStep(checkpoints, versions(checkpoints)) + 4,
                    "run 1 to train past its second checkpoint", run1, dir.resolve("run-1.log"));
        } finally {
            run1.destroyForcibly();
            assertTrue(run1.waitFor(30, TimeUnit.SECONDS));
        }
        assertEquals(137, run1.exitValue(), "run 1 died of SIGKILL");

        CheckpointStore store = CheckpointStore.open(checkpoints);
        long resumedVersion = store.latest().orElseThrow();
        var resumed = store.open(resumedVersion);
        long resumedStep = resumed.manifest().path("step").asLong();
        Map<Integer, Long> resumedOffsets = Json.fields(resumed.manifest()).offsets("offsets").get(fixture.topics.name(Topic.TOKENS));
        List<long[]> lines1 = readTrace(trace1);
        long lastStepRun1 = lines1.stream().mapToLong(l -> l[0]).max().orElse(0);
        System.out.printf("run 1 killed at step %d; resuming from checkpoint %d at step %d%n", lastStepRun1, resumedVersion, resumedStep);

        // More data arrives while the trainer is down; run 2 resumes and drains everything.
        sent.addAll(fixture.produce(500, 2, 10));
        Map<Integer, Long> ends = endOffsets(broker, fixture.topics.name(Topic.TOKENS));
        long recordsAfterResume = ends.entrySet().stream()
                .mapToLong(e -> e.getValue() - resumedOffsets.getOrDefault(e.getKey(), 0L)).sum();
        Path trace2 = dir.resolve("trace-2.txt");
        Path log2 = dir.resolve("run-2.log");
        Process run2 = startTrainer(fixture, checkpoints, trace2, log2);
        try {
            int port = metricsPort(log2, run2);
            int windowTokens = 4 * 32;
            waitFor(() -> {
                Scrape m = Scrape.of(port);
                return m.sum("flywheel_trainer_records_total") >= recordsAfterResume
                        && m.has("flywheel_trainer_consumer_lag")
                        && m.get("flywheel_trainer_consumer_lag") == 0
                        && m.get("flywheel_trainer_pending_tokens") < windowTokens;
            }, "run 2 to read and train everything", run2, log2);
            run2.destroy();   // SIGTERM: final checkpoint
            assertTrue(run2.waitFor(60, TimeUnit.SECONDS), "run 2 stops on SIGTERM");
        } finally {
            run2.destroyForcibly();
        }
        assertEquals(143, run2.exitValue(), "run 2 exits after SIGTERM\n" + Files.readString(log2));

        // The final checkpoint has read everything.
        long finalVersion = CheckpointStore.open(checkpoints).latest().orElseThrow();
        var last = CheckpointStore.open(checkpoints).open(finalVersion);
        assertEquals(ends, Json.fields(last.manifest()).offsets("offsets").get(fixture.topics.name(Topic.TOKENS)));

        // The surviving history: run 1 up to the resumed step, then run 2 (which starts right after it).
        List<long[]> lines2 = readTrace(trace2);
        assertFalse(lines2.isEmpty(), "run 2 trained");
        assertEquals(resumedStep + 1, lines2.get(0)[0], "run 2 continues at the step after its checkpoint");
        List<long[]> history = new ArrayList<>();
        lines1.stream().filter(l -> l[0] <= resumedStep).forEach(history::add);
        history.addAll(lines2);
        // ... plus what the final checkpoint holds, read but not yet trained.
        StreamState finalState = StreamState.read(last.file(StreamState.FILE));
        for (Packer.Segment s : finalState.pending().segments()) {
            history.add(new long[] {Long.MAX_VALUE, s.partition(), s.offset(), s.from(), s.to()});
        }

        Map<String, Integer> next = new HashMap<>();
        for (long[] l : history) {
            String record = l[1] + "@" + l[2];
            int expectedFrom = next.getOrDefault(record, 0);
            assertEquals(expectedFrom, (int) l[3], "record " + record + ": slice starts where the last one ended (step " + l[0] + ")");
            assertTrue(l[4] > l[3], "non-empty slice");
            next.put(record, (int) l[4]);
        }
        int train = 0;
        for (TrainerFixture.Sent s : sent) {
            String record = s.partition() + "@" + s.offset();
            if (s.split() == Split.TRAIN) {
                train++;
                assertEquals(s.tokens() + 1, next.getOrDefault(record, 0), "train record " + record + " is covered to its end, once");
            } else {
                assertFalse(next.containsKey(record), "validation record " + record + " is never trained");
            }
        }
        assertEquals(train, next.size(), "nothing but the train records was trained");
        assertTrue(lastStepRun1 > resumedStep, "run 1 trained past its last checkpoint, so run 2 retrained that part");
    }

    // --- the child JVM ---------------------------------------------------------------------------

    private static Process startTrainer(TrainerFixture fixture, Path checkpoints, Path trace, Path log) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xmx384m");
        command.add("-XX:+UseSerialGC");
        command.addAll(List.of("--add-modules", "jdk.incubator.vector"));    // the engine's exp, as ./flywheel runs the trainer
        command.addAll(List.of(System.getProperty("flywheel.test.nd4j-memory",
                "-Dorg.bytedeco.javacpp.maxbytes=1g -Dorg.bytedeco.javacpp.maxphysicalbytes=2500m").split(" ")));
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(TrainCommand.class.getName());
        Map<String, String> settings = fixture.settings(checkpoints);
        settings.put("checkpoint.every-steps", "25");
        settings.put("checkpoint.every-seconds", "60");
        settings.put("trainer.trace", trace.toString());
        settings.forEach((k, v) -> {
            command.add("--set");
            command.add(k + "=" + v);
        });
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMP_NUM_THREADS", "1");
        return pb.start();
    }

    private static int metricsPort(Path log, Process process) throws Exception {
        Pattern p = Pattern.compile("metrics: http://[^:]+:(\\d+)/metrics");
        int[] port = new int[1];
        waitFor(() -> {
            Matcher m = p.matcher(readQuietly(log));
            if (m.find()) {
                port[0] = Integer.parseInt(m.group(1));
                return true;
            }
            return false;
        }, "the trainer's metrics address", process, log);
        return port[0];
    }

    private static void waitFor(BooleanSupplier condition, String what, Process process, Path log) throws InterruptedException {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (!condition.getAsBoolean()) {
            if (!process.isAlive()) {
                throw new AssertionError("the trainer exited (" + process.exitValue() + ") before " + what + ":\n" + readQuietly(log));
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + ":\n" + readQuietly(log));
            }
            Thread.sleep(50);
        }
    }

    private static String readQuietly(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file) : "";
        } catch (IOException e) {
            return "";
        }
    }

    /** Checkpoint folders that are complete (renamed into place). */
    private static List<String> versions(Path checkpoints) {
        if (!Files.isDirectory(checkpoints)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(checkpoints)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.matches("v\\d{6}")).toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static long lastStep(Path trace) {
        try {
            return Files.exists(trace) ? readTrace(trace).stream().mapToLong(l -> l[0]).max().orElse(0) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** The step of the newest complete checkpoint, read without opening the store (the trainer owns it). */
    private static long manifestStep(Path checkpoints, List<String> versions) {
        String newest = versions.stream().max(String::compareTo).orElseThrow();
        try {
            return Json.read(Files.readAllBytes(checkpoints.resolve(newest).resolve(CheckpointStore.MANIFEST))).integer("step");
        } catch (IOException e) {
            return Long.MAX_VALUE / 2;
        }
    }

    /** Trace lines {@code step partition offset from to}; a torn last line (SIGKILL) is ignored. */
    private static List<long[]> readTrace(Path trace) throws IOException {
        List<long[]> lines = new ArrayList<>();
        String text = Files.readString(trace);
        String[] rows = text.split("\n", -1);
        for (int i = 0; i < rows.length - 1; i++) {    // the part after the last newline is torn or empty
            String[] f = rows[i].split(" ");
            lines.add(new long[] {Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2]),
                    Long.parseLong(f[3]), Long.parseLong(f[4])});
        }
        return lines;
    }

    private static Map<Integer, Long> endOffsets(KafkaBroker broker, String topic) {
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(broker.consumerProperties("end-offsets"))) {
            List<TopicPartition> tps = c.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
            Map<Integer, Long> ends = new HashMap<>();
            c.endOffsets(tps).forEach((tp, end) -> ends.put(tp.partition(), end));
            return ends;
        }
    }
}
