package io.flywheel.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The alert rules through promtool: they parse, and the unit tests in rules-test.yaml (each alert
 * fires when it should and stays quiet when it should not) pass. Skipped, with a message, where
 * promtool is not installed; `.ci/run` installs it.
 */
class RulesTest {

    @TempDir
    static Path dir;

    @BeforeAll
    static void writeRulesFile() throws Exception {
        // The PrometheusRule's spec is a Prometheus rules file: write it out as one.
        JsonNode rule = Manifests.read(Manifests.ROOT.resolve("base/monitoring/prometheus-rule.yaml")).get(0);
        Files.writeString(dir.resolve("flywheel-rules.yaml"), Manifests.toYaml(List.of(rule.path("spec"))));
        try (var in = RulesTest.class.getResourceAsStream("/rules-test.yaml")) {
            Files.write(dir.resolve("rules-test.yaml"), in.readAllBytes());
        }
    }

    private static String promtool(String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of("promtool"));
        cmd.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("promtool not installed (Debian: apt-get install prometheus): alert rules not checked");
            return "";
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("promtool timed out");
        }
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ":\n" + out);
        return out;
    }

    @Test
    void rulesParse() throws Exception {
        String out = promtool("check", "rules", "flywheel-rules.yaml");
        System.out.println(out);
    }

    @Test
    void alertUnitTestsPass() throws Exception {
        String out = promtool("test", "rules", "rules-test.yaml");
        System.out.println(out);
    }
}
