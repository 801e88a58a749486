package io.flywheel.feedback;

import io.flywheel.core.cli.CommandLines;
import io.flywheel.core.config.Settings;
import io.flywheel.core.streams.StreamsApp;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code flywheel feedback} (and the main class of the stream's own jar): runs the feedback stream
 * until SIGTERM or Ctrl-C. The flags cover what is usually changed; every setting of
 * {@link FeedbackConfig} can be given with {@code --set key=value} or its environment variable.
 */
@Command(name = "feedback", mixinStandardHelpOptions = true,
        description = {"Run the feedback stream: feedback.raw joined with responses -> preferences (+ feedback.rejected).",
                "Runs until Ctrl-C or SIGTERM; /metrics and /health/ready on --metrics-port."})
public final class FeedbackCommand implements Callable<Integer> {

    @Option(names = "--bootstrap", paramLabel = "HOST:PORT", description = "Kafka bootstrap servers (default: 127.0.0.1:19092).")
    String bootstrap;

    @Option(names = "--tokenizer", paramLabel = "FILE|NAME", description = "The model's tokenizer: a file, or a public vocabulary name (default: cl100k_base).")
    String tokenizer;

    @Option(names = "--state-dir", paramLabel = "DIR", description = "Local state (waiting feedback, dedup, rated answers) (default: .flywheel/feedback).")
    Path stateDir;

    @Option(names = "--guarantee", paramLabel = "MODE", description = "exactly_once_v2 (default) or at_least_once.")
    String guarantee;

    @Option(names = "--metrics-port", paramLabel = "PORT", description = "Port of /metrics and /health (default: 9430).")
    Integer metricsPort;

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = {"Any setting, e.g. --set feedback.join-wait-ms=60000 (see README.md).",
            "Keys starting with 'streams.' go to Kafka Streams as they are, e.g. --set streams.session.timeout.ms=10000."})
    Map<String, String> set = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        StreamsApp.Overrides overrides = StreamsApp.Overrides.split(Settings.fromEnvironment(), set);
        Settings settings = overrides.settings().with("kafka.bootstrap", bootstrap).with("feedback.tokenizer", tokenizer)
                .with("feedback.state-dir", stateDir).with("feedback.guarantee", guarantee).with("feedback.metrics.port", metricsPort);
        FeedbackConfig config = FeedbackConfig.from(settings);
        Tokenizer tok = CommandLines.tokenizer(config.tokenizer());
        StreamsApp stream = FeedbackStream.start(config, tok, overrides.streams()).closeOnShutdown("feedback");
        System.out.println("feedback: " + config.topics().name(Topic.FEEDBACK_RAW) + " + " + config.topics().name(Topic.RESPONSES)
                    + " -> " + config.topics().name(Topic.PREFERENCES) + " with tokenizer " + tok.name()
                    + " (" + tok.id().substring(0, 12) + "), " + config.guarantee());
        System.out.println("metrics: http://" + config.metricsHost() + ":" + stream.metricsPort() + "/metrics");
        System.out.flush();
        stream.awaitShutdown();
        return 0;
    }

    public static void main(String[] args) {
        System.exit(CommandLines.execute("feedback", new FeedbackCommand(), args));
    }
}
