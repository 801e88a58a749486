package io.flywheel.trainer;

import io.flywheel.core.cli.CommandLines;
import io.flywheel.core.config.Settings;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code flywheel train} (and the main class of the trainer's own jar): trains online until SIGTERM
 * or Ctrl-C, then writes a final checkpoint. Every setting of {@link TrainerConfig} can be given
 * with {@code --set key=value} or its environment variable.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train the model online from the tokens topic; checkpoint, gate and promote to serving.",
                "Resumes from the latest checkpoint in --checkpoint-dir. Runs until Ctrl-C or SIGTERM, which write a final checkpoint.",
                "/metrics and /health/ready on --metrics-port."})
public final class TrainCommand implements Callable<Integer> {

    @Option(names = "--bootstrap", paramLabel = "HOST:PORT", description = "Kafka bootstrap servers (default: 127.0.0.1:19092).")
    String bootstrap;

    @Option(names = "--tokenizer", paramLabel = "FILE|NAME", description = "The tokenizer the token records were made with (default: cl100k_base).")
    String tokenizer;

    @Option(names = "--checkpoint-dir", paramLabel = "DIR", description = "The checkpoint store (default: .flywheel/checkpoints).")
    Path checkpointDir;

    @Option(names = "--init", paramLabel = "CHECKPOINT", description = "Start from this checkpoint folder (fine-tuning) when the store is empty.")
    Path init;

    @Option(names = "--model-name", paramLabel = "NAME", description = "Key of the model's events on the checkpoints topic (default: flywheel).")
    String modelName;

    @Option(names = "--metrics-port", paramLabel = "PORT", description = "Port of /metrics and /health (default: 9420).")
    Integer metricsPort;

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = {"Any setting, e.g. --set train.batch=16 --set model.layers=6 (see README.md)."})
    Map<String, String> set = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        Settings settings = Settings.fromEnvironment();
        for (var e : set.entrySet()) {
            settings = settings.with(e.getKey(), e.getValue());
        }
        settings = settings.with("kafka.bootstrap", bootstrap).with("trainer.tokenizer", tokenizer)
                .with("trainer.checkpoint-dir", checkpointDir).with("trainer.init", init)
                .with("trainer.model-name", modelName).with("trainer.metrics.port", metricsPort);
        TrainerConfig config = TrainerConfig.from(settings);
        Tokenizer tok = CommandLines.tokenizer(config.tokenizer());
        Trainer trainer = Trainer.start(config, tok);
        // Ctrl-C and SIGTERM: finish the step, write a final checkpoint, then let the JVM exit.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            trainer.requestStop();
            try {
                trainer.awaitStop(Duration.ofMinutes(2));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            trainer.close();
        }, "trainer-shutdown"));
        System.out.println("train: " + config.topics().name(Topic.TOKENS) + " -> " + config.checkpointDir().toAbsolutePath()
                + " (model " + trainer.modelConfig() + ", tokenizer " + tok.name() + ")");
        System.out.println("metrics: http://" + config.metricsHost() + ":" + trainer.metricsPort() + "/metrics");
        System.out.flush();
        trainer.run();
        return 0;
    }

    public static void main(String[] args) {
        System.exit(CommandLines.execute("train", new TrainCommand(), args));
    }
}
