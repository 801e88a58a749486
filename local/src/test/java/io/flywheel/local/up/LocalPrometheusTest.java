package io.flywheel.local.up;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The local Prometheus of {@code up --prometheus}: its config and rules pass promtool, and a real
 * Prometheus started with them loads every alert of k8s/. Skipped, with a message, where Prometheus
 * is not installed; `.ci/run` installs it.
 */
class LocalPrometheusTest {

    @TempDir
    Path data;

    @Test
    void theRulesFileIsTheSpecOfThePrometheusRule() throws Exception {
        String rules = LocalPrometheus.rulesFile(LocalPrometheus.bundledRule());
        assertTrue(rules.contains("\ngroups:\n  - name: flywheel.training\n"), rules);
        assertTrue(rules.contains("\n    - alert: FlywheelTrainerStalled\n") || rules.contains("\n      - alert: FlywheelTrainerStalled\n"), rules);
        assertTrue(!rules.contains("apiVersion") && !rules.contains("kind: PrometheusRule"), rules);
    }

    @Test
    void promtoolAcceptsTheConfigAndItsRules() throws Exception {
        LocalPrometheus.writeConfig(data, new LocalLoop.Ports(8000, 9410, 9420, 9430, 9090));
        Process p;
        try {
            p = new ProcessBuilder("promtool", "check", "config", LocalPrometheus.dir(data).resolve("prometheus.yml").toString())
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("promtool not installed (Debian: apt-get install prometheus): config not checked");
            return;
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("10 rules found"), out);
    }

    @Test
    void prometheusLoadsEveryAlert() throws Exception {
        Path binary;
        try {
            binary = LocalPrometheus.binary();
        } catch (RuntimeException e) {
            Assumptions.abort(e.getMessage());
            return;
        }
        LocalPrometheus.writeConfig(data, new LocalLoop.Ports(8000, 9410, 9420, 9430, 9090));
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (ChildProcess prometheus = ChildProcess.program("prometheus", LocalPrometheus.command(binary, data, port),
                java.util.Map.of(), data.resolve("logs"))) {
            assertTrue(ChildProcess.ownedBy(ProcessHandle.of(prometheus.pid()).orElseThrow().info().commandLine().orElse(""),
                    data.toString()), "a later up recognises it as its own");
            HttpClient http = HttpClient.newHttpClient();
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            String rules = "";
            while (System.nanoTime() < deadline && !rules.contains("FlywheelTimeToFirstTokenHigh")) {
                assertTrue(prometheus.alive(), prometheus.tail(20));
                try {
                    rules = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/rules")).build(),
                            HttpResponse.BodyHandlers.ofString()).body();
                } catch (IOException notYet) {
                    Thread.sleep(200);
                }
            }
            for (String alert : List.of("FlywheelTrainerStalled", "FlywheelCheckpointStale", "FlywheelTrainerLagGrowing",
                    "FlywheelGateRejectingRepeatedly", "FlywheelConsumerLagGrowing", "FlywheelRejectedRecordRate",
                    "FlywheelServingSwapFailures", "FlywheelServedVersionBehind", "FlywheelServingErrorRate", "FlywheelTimeToFirstTokenHigh")) {
                assertTrue(rules.contains("\"" + alert + "\""), alert + " not loaded: " + rules);
            }
            String targets = "";
            while (System.nanoTime() < deadline && !targets.contains("\"job\":\"serving\"")) {
                targets = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/targets")).build(),
                        HttpResponse.BodyHandlers.ofString()).body();
                if (!targets.contains("\"job\":\"serving\"")) {
                    Thread.sleep(200);
                }
            }
            for (String job : List.of("tokenizer-stream", "feedback", "trainer", "serving")) {
                assertTrue(targets.contains("\"job\":\"" + job + "\""), job + " not scraped: " + targets);
            }
        }
        assertTrue(Files.exists(LocalPrometheus.dir(data).resolve("tsdb")));
    }
}
