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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code flywheel up} through the real CLI, as a newcomer runs it: the broker, a tokenizer trained
 * on the corpus, the four services, the corpus ingested; a chat answer from a trained checkpoint;
 * SIGTERM stops everything; a second {@code up} on the same folder resumes (no new tokenizer, no
 * second ingest, the trainer resumes from its checkpoint); and an {@code up} whose launcher was killed
 * outright has its services stopped by the next one.
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
        List<String> argList = new ArrayList<>(List.of("up", "--data-dir", data.toString(), "--port", String.valueOf(port),
                "--controller-port", String.valueOf(controller), "--api-port", String.valueOf(api), "--corpus", corpus.toString(),
                "--vocab-size", "600", "--checkpoint-seconds", "5"));
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
        } finally {
            stop(first);
        }
        assertFalse(prometheus && BrokerCliTest.listening(prometheusPort), "prometheus is gone");
        assertFalse(BrokerCliTest.listening(api), "serving is gone");
        assertFalse(BrokerCliTest.listening(9420), "the trainer is gone");
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
            // A launcher killed outright (a crashed terminal) leaves its services running.
            second.process().destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        assertTrue(BrokerCliTest.listening(api), "serving outlived its killed launcher");

        // The next up stops what the killed one left behind, then runs as usual.
        BrokerCliTest.Running third = BrokerCliTest.start(env, args);
        try {
            third.await("Flywheel is up.", Duration.ofMinutes(4));
            assertTrue(third.seen().stream().anyMatch(l -> l.startsWith("flywheel: stopping a service an earlier run left behind")),
                    third.seen().toString());
            awaitServedVersion(api, 1);
        } finally {
            stop(third);
        }
        assertFalse(BrokerCliTest.listening(api), "serving is gone");
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
