package io.flywheel.local.up;

import io.flywheel.core.cli.UsageError;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code up --prometheus}: a local Prometheus (the one on the PATH; Debian's {@code prometheus}
 * package has it) that scrapes every service of the loop and evaluates the same alert rules as the
 * cluster, read from k8s/'s PrometheusRule (bundled into this jar by the build).
 */
final class LocalPrometheus {

    private LocalPrometheus() {}

    /** The binary: {@code FLYWHEEL_PROMETHEUS}, else {@code prometheus} on the PATH; a usage error if neither. */
    static Path binary() {
        String explicit = System.getenv("FLYWHEEL_PROMETHEUS");
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit);
            if (Files.isExecutable(p)) {
                return p;
            }
            throw new UsageError("--prometheus: FLYWHEEL_PROMETHEUS=" + explicit + " is not an executable file");
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, "prometheus");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        throw new UsageError("--prometheus: no 'prometheus' on the PATH. Install it (Debian: apt-get install --no-install-recommends "
                + "prometheus) or set FLYWHEEL_PROMETHEUS to the binary.");
    }

    static Path dir(Path data) {
        return data.resolve("prometheus");
    }

    /** The flag that names this data folder's config: also how a later {@code up} recognises an orphan. */
    static String configFlag(Path data) {
        return "--config.file=" + dir(data).resolve("prometheus.yml");
    }

    static List<String> command(Path binary, Path data, int port) {
        return List.of(binary.toString(), configFlag(data),
                "--storage.tsdb.path=" + dir(data).resolve("tsdb"),
                "--storage.tsdb.retention.time=7d",
                // The default binds every interface; the loop's services listen on loopback only.
                "--web.listen-address=127.0.0.1:" + port);
    }

    /** Writes {@code DATA/prometheus/prometheus.yml} and the rules file it loads. */
    static void writeConfig(Path data, LocalLoop.Ports ports) throws IOException {
        Path dir = dir(data);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("flywheel-rules.yaml"), rulesFile(bundledRule()), StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("prometheus.yml"), config(ports), StandardCharsets.UTF_8);
    }

    static String config(LocalLoop.Ports ports) {
        return """
                # Written by ./flywheel up --prometheus; rewritten at every start.
                global:
                  scrape_interval: 5s
                  evaluation_interval: 15s
                rule_files:
                  - flywheel-rules.yaml
                scrape_configs:
                  - job_name: tokenizer-stream
                    static_configs:
                      - targets: ["127.0.0.1:%d"]
                  - job_name: feedback
                    static_configs:
                      - targets: ["127.0.0.1:%d"]
                  - job_name: trainer
                    static_configs:
                      - targets: ["127.0.0.1:%d"]
                  - job_name: serving
                    metrics_path: /q/metrics
                    static_configs:
                      - targets: ["127.0.0.1:%d"]
                """.formatted(ports.streamMetrics(), ports.feedbackMetrics(), ports.trainerMetrics(), ports.api());
    }

    static String bundledRule() throws IOException {
        try (InputStream in = LocalPrometheus.class.getResourceAsStream("prometheus-rule.yaml")) {
            if (in == null) {
                throw new IOException("prometheus-rule.yaml is not in the jar: rebuild with ./mvnw -B install -DskipTests");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /**
     * A PrometheusRule's {@code spec} is a Prometheus rules file one level down: the lines after
     * {@code spec:}, two spaces to the left.
     */
    static String rulesFile(String prometheusRule) {
        StringBuilder out = new StringBuilder("# From k8s/base/monitoring/prometheus-rule.yaml (its spec).\n");
        boolean inSpec = false;
        for (String line : prometheusRule.split("\n", -1)) {
            if (inSpec) {
                if (!line.isBlank() && !line.startsWith("  ")) {
                    break;   // the next top-level key
                }
                out.append(line.length() >= 2 ? line.substring(2) : line.strip()).append('\n');
            } else if (line.equals("spec:")) {
                inSpec = true;
            }
        }
        if (!inSpec) {
            throw new IllegalStateException("no 'spec:' in the bundled PrometheusRule");
        }
        return out.toString();
    }
}
