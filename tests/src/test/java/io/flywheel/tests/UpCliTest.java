package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code flywheel up} through the real CLI, as a newcomer runs it: the broker, a tokenizer trained
 * on the corpus, the four services, the corpus ingested; a chat answer from a trained checkpoint;
 * SIGTERM stops everything; a second {@code up} on the same folder resumes (no new tokenizer, no
 * second ingest, the trainer resumes from its checkpoint); a trainer and a broker killed mid-run are
 * restarted while serving answers, and the loop goes on; and when the launcher itself is killed
 * outright, its services follow it, so no process is left and every port is free.
 */
class UpCliTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void upRunsTheWholeLoopStopsCleanlyAndResumes() throws Exception {
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, String.join("\n\n", Corpus.lines(300, 200)), StandardCharsets.UTF_8);
        Path data = dir.resolve("data");
        int port = BrokerCliTest.freePort();
        int controller = BrokerCliTest.freePort();
        int api = BrokerCliTest.freePort();
        int streamMetrics = BrokerCliTest.freePort();
        int trainerMetrics = BrokerCliTest.freePort();
        int feedbackMetrics = BrokerCliTest.freePort();
        // Every port free and our own: this test passes while a user's `up` runs on the defaults.
        List<String> argList = new ArrayList<>(List.of("up", "--data-dir", data.toString(), "--port", String.valueOf(port),
                "--controller-port", String.valueOf(controller), "--api-port", String.valueOf(api), "--corpus", corpus.toString(),
                "--stream-metrics-port", String.valueOf(streamMetrics), "--trainer-metrics-port", String.valueOf(trainerMetrics),
                "--feedback-metrics-port", String.valueOf(feedbackMetrics), "--vocab-size", "600", "--checkpoint-seconds", "5"));
        // With Prometheus installed (CI installs it), the loop runs with its local Prometheus too.
        boolean prometheus = prometheusInstalled();
        int prometheusPort = BrokerCliTest.freePort();
        if (prometheus) {
            argList.addAll(List.of("--prometheus", "--prometheus-port", String.valueOf(prometheusPort)));
        } else {
            System.out.println("prometheus not installed: up --prometheus is not exercised (Debian: apt-get install prometheus)");
        }
        String[] args = argList.toArray(String[]::new);
        Map<String, String> env = Map.of("FLYWHEEL_HOME", Path.of("..").toAbsolutePath().normalize().toString());

        BrokerCliTest.Running first = BrokerCliTest.start(env, args);
        try {
            first.await("Flywheel is up.", Duration.ofMinutes(4));
            assertTrue(first.seen().stream().anyMatch(l -> l.startsWith("flywheel: training a 600-token BPE tokenizer")), first.seen().toString());
            assertTrue(first.seen().stream().anyMatch(l -> l.startsWith("flywheel: ingesting")), first.seen().toString());
            assertEquals("  OpenAI API   http://127.0.0.1:" + api + "/v1   (model \"flywheel\"; no key needed locally)",
                    first.await("  OpenAI API", Duration.ofSeconds(10)));
            long version = awaitServedVersion(api, 1);
            JsonNode answer = chat(api);
            assertTrue(answer.path("model_version").asLong() >= version, answer.toString());
            assertFalse(answer.path("choices").path(0).path("message").path("content").asText().isEmpty(), answer.toString());
            if (prometheus) {
                assertTrue(first.await("  prometheus", Duration.ofSeconds(10)).startsWith("  prometheus   http://127.0.0.1:" + prometheusPort + "/"),
                        first.seen().toString());
                awaitTargetsUp(prometheusPort, List.of("tokenizer-stream", "feedback", "trainer", "serving"));
            }

            // The trainer dies: up says so and starts it again; serving answers all the while.
            service(data, "-Dflywheel.service=trainer").destroyForcibly();
            String died = first.await("flywheel: trainer exited with code ", Duration.ofSeconds(30));
            assertTrue(died.contains("code 137") && died.contains("(restart 1)"), died);
            assertFalse(died.contains("-cp "), "no classpath dump: " + died);
            chat(api);
            first.await("flywheel: trainer restarted", Duration.ofSeconds(60));
            awaitOk("http://127.0.0.1:" + trainerMetrics + "/health/ready");

            // The broker dies: up starts it again, and the loop goes on through it: a newer
            // checkpoint is trained, announced on the restarted broker and served.
            long before = awaitServedVersion(api, 1);
            service(data, "-Dflywheel.broker.config=").destroyForcibly();
            first.await("flywheel: broker exited with code ", Duration.ofSeconds(30));
            chat(api);
            first.await("flywheel: broker restarted", Duration.ofSeconds(90));
            // New text through the restarted broker (the first corpus may be trained through by now):
            // the tokenizer stream, the trainer and serving's follower all carry on.
            Path more = dir.resolve("more.txt");
            Files.writeString(more, String.join("\n\n", Corpus.lines(600, 200).subList(300, 600)), StandardCharsets.UTF_8);
            Cli.Result ingest = Cli.run("ingest", "--bootstrap", "127.0.0.1:" + port, "--split", "paragraph", more.toString());
            assertEquals(0, ingest.exit(), ingest.stderr());
            awaitServedVersion(api, before + 1);
            everyDocumentHasExactlyOneOutcome("127.0.0.1:" + port);
        } finally {
            stop(first);
        }
        assertFalse(prometheus && BrokerCliTest.listening(prometheusPort), "prometheus is gone");
        assertFalse(BrokerCliTest.listening(api), "serving is gone");
        assertFalse(BrokerCliTest.listening(trainerMetrics), "the trainer is gone");
        assertTrue(first.seen().contains("flywheel: trainer stopped"), first.seen().toString());

        BrokerCliTest.Running second = BrokerCliTest.start(env, args);
        try {
            second.await("Flywheel is up.", Duration.ofMinutes(4));
            assertTrue(second.seen().stream().noneMatch(l -> l.contains("training a") || l.startsWith("flywheel: ingesting")),
                    "the tokenizer and the corpus are reused: " + second.seen());
            awaitServedVersion(api, 1);
            String trainerLog = Files.readString(data.resolve("logs").resolve("trainer.log"));
            assertTrue(trainerLog.contains("resuming from checkpoint"), "the trainer resumes from its checkpoint");
        } finally {
            // A launcher killed outright (a crashed terminal): its services follow it.
            second.process().destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (ProcessHandle.allProcesses().anyMatch(h -> ownedBy(h, data))) {
            assertTrue(System.nanoTime() < deadline, "services outlived their killed launcher: "
                    + ProcessHandle.allProcesses().filter(h -> ownedBy(h, data)).map(ProcessHandle::pid).toList());
            Thread.sleep(200);
        }
        for (int p : List.of(api, port, streamMetrics, trainerMetrics, feedbackMetrics)) {
            assertFalse(BrokerCliTest.listening(p), "port " + p + " is free again");
        }

        // The next up runs as usual on the same folder.
        BrokerCliTest.Running third = BrokerCliTest.start(env, args);
        try {
            third.await("Flywheel is up.", Duration.ofMinutes(4));
            awaitServedVersion(api, 1);
            everyServiceStopsWithinTenSecondsWhileTheBrokerHangs(data);
        } finally {
            stop(third);
        }
        assertFalse(BrokerCliTest.listening(api), "serving is gone");
    }

    /**
     * The counts balance across the broker's death: every document on {@code text.raw}, those of
     * the first corpus and those sent after the restart, has exactly one committed outcome, tokens
     * or a rejection, and none has two.
     */
    private static void everyDocumentHasExactlyOneOutcome(String bootstrap) throws Exception {
        java.util.Set<String> documents = new java.util.TreeSet<>();
        try (var raw = committedReader(bootstrap, List.of("flywheel.text.raw"))) {
            readToEnd(raw, r -> documents.add(r.key()));
        }
        assertTrue(documents.size() > 300, "the corpus and the text sent after the restart: " + documents.size());
        Map<String, Integer> outcomes = new java.util.TreeMap<>();
        try (var out = committedReader(bootstrap, List.of("flywheel.tokens", "flywheel.text.rejected"))) {
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (!outcomes.keySet().containsAll(documents)) {
                assertTrue(System.nanoTime() < deadline, (documents.size() - outcomes.size()) + " documents have no outcome");
                out.poll(Duration.ofMillis(500)).forEach(r -> outcomes.merge(r.key(), 1, Integer::sum));
            }
            readToEnd(out, r -> outcomes.merge(r.key(), 1, Integer::sum));
        }
        assertEquals(documents, outcomes.keySet(), "outcomes for documents that were never sent");
        Map<String, Integer> twice = new java.util.TreeMap<>(outcomes);
        twice.values().removeIf(n -> n == 1);
        assertEquals(Map.of(), twice, "documents with more than one outcome");
    }

    private static KafkaConsumer<String, byte[]> committedReader(String bootstrap, List<String> topics) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "up-test-" + java.util.UUID.randomUUID());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
        consumer.subscribe(topics);
        return consumer;
    }

    /** Polls until assigned and at the end of every partition. */
    private static void readToEnd(KafkaConsumer<String, byte[]> consumer, java.util.function.Consumer<ConsumerRecord<String, byte[]>> each) {
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        do {
            assertTrue(System.nanoTime() < deadline, "could not read " + consumer.subscription() + " to the end");
            consumer.poll(Duration.ofMillis(200)).forEach(each);
        } while (consumer.assignment().isEmpty() || consumer.endOffsets(consumer.assignment()).entrySet().stream()
                .anyMatch(e -> consumer.position(e.getKey()) < e.getValue()));
    }

    /**
     * The broker hangs (SIGSTOP: connections stay open and every request times out, the worst
     * state for a client that is closing): SIGTERM to each service ends it within 10 s all the same.
     */
    private static void everyServiceStopsWithinTenSecondsWhileTheBrokerHangs(Path data) throws Exception {
        ProcessHandle broker = service(data, "-Dflywheel.broker.config=");
        BrokerCliTest.signal(broker, "STOP");
        try {
            Map<String, ProcessHandle> services = new java.util.LinkedHashMap<>();
            for (String name : List.of("tokenizer-stream", "feedback", "trainer", "serving")) {
                services.put(name, service(data, "-Dflywheel.service=" + name + " "));
            }
            long signalled = System.nanoTime();
            Map<String, java.util.concurrent.CompletableFuture<Double>> stopped = new java.util.LinkedHashMap<>();
            services.forEach((name, process) -> {
                process.destroy();
                stopped.put(name, process.onExit().thenApply(p -> (System.nanoTime() - signalled) / 1e9));
            });
            for (var e : stopped.entrySet()) {
                long left = Duration.ofSeconds(10).toNanos() - (System.nanoTime() - signalled);
                try {
                    System.out.printf("%s stopped %.1f s after SIGTERM with the broker hung%n", e.getKey(),
                            e.getValue().get(Math.max(0, left), TimeUnit.NANOSECONDS));
                } catch (java.util.concurrent.TimeoutException late) {
                    throw new AssertionError(e.getKey() + " still runs 10 s after SIGTERM while the broker hangs");
                }
            }
        } finally {
            BrokerCliTest.signal(broker, "CONT");
        }
    }

    /** The process of this loop whose command line holds {@code marker}. */
    private static ProcessHandle service(Path data, String marker) {
        return ProcessHandle.allProcesses().filter(h -> ownedBy(h, data) && h.info().commandLine().orElse("").contains(marker))
                .findFirst().orElseThrow(() -> new AssertionError("no process " + marker + " of " + data));
    }

    /** A service of the up that owns {@code data}: marked with it, or the broker of its folder. */
    private static boolean ownedBy(ProcessHandle h, Path data) {
        String cmd = h.info().commandLine().orElse("");
        return cmd.contains("-Dflywheel.up=" + data.toAbsolutePath()) || cmd.contains("-Dflywheel.broker.config=" + data.toAbsolutePath());
    }

    private static void awaitOk(String url) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (true) {
            try {
                if (http.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                    return;
                }
            } catch (java.io.IOException notYet) {
                // not listening yet
            }
            assertTrue(System.nanoTime() < deadline, url + " never answered 200");
            Thread.sleep(250);
        }
    }

    /** SIGTERM, as Ctrl-C sends: every service stops, then the CLI exits 128 + 15. */
    private static void stop(BrokerCliTest.Running running) throws InterruptedException {
        if (!running.process().isAlive()) {
            return;
        }
        running.process().toHandle().destroy();
        assertTrue(running.process().waitFor(4, TimeUnit.MINUTES), "up stops within 4 minutes");
        running.await("flywheel: broker stopped", Duration.ofSeconds(10));
        assertEquals(143, running.process().exitValue(), running.seen().toString());
    }

    private static boolean prometheusInstalled() {
        return java.util.Arrays.stream(System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator))
                .anyMatch(d -> Files.isExecutable(Path.of(d.isEmpty() ? "." : d, "prometheus")));
    }

    /** Polls Prometheus until every job's target reports health "up". */
    private static void awaitTargetsUp(int port, List<String> jobs) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            JsonNode targets = JSON.readTree(last = http.send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + port + "/api/v1/targets")).build(), HttpResponse.BodyHandlers.ofString()).body());
            List<String> up = new ArrayList<>();
            targets.path("data").path("activeTargets").forEach(t -> {
                if (t.path("health").asText().equals("up")) {
                    up.add(t.path("labels").path("job").asText());
                }
            });
            if (up.containsAll(jobs)) {
                return;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("prometheus does not scrape every service: " + last);
    }

    private static long awaitServedVersion(int api, long atLeast) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (System.nanoTime() < deadline) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + api + "/v1/models")).build(),
                    HttpResponse.BodyHandlers.ofString());
            long v = r.statusCode() == 200 ? JSON.readTree(r.body()).path("data").path(0).path("model_version").asLong(-1) : -1;
            if (v >= atLeast) {
                return v;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("serving did not load a checkpoint within 3 minutes");
    }

    private static JsonNode chat(int api) throws Exception {
        String body = "{\"model\":\"flywheel\",\"messages\":[{\"role\":\"user\",\"content\":\"The Commission\"}],\"max_tokens\":8}";
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + api + "/v1/chat/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }
}
