package io.flywheel.local.cli;

import io.flywheel.core.cli.UsageError;
import io.flywheel.core.config.Settings;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.local.broker.BrokerProcess;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code flywheel broker}: a local KRaft broker with the topic catalog, until Ctrl-C. */
@Command(name = "broker", mixinStandardHelpOptions = true,
        description = {"Run a local Kafka broker (KRaft, one node) with Flywheel's topics, until Ctrl-C.",
                "Prints 'kafka: HOST:PORT' when it is ready."})
public final class BrokerCommand implements Callable<Integer> {

    /** Options shared by every command that starts the local broker. */
    public static final class BrokerOptions {
        @Option(names = "--data-dir", defaultValue = ".flywheel", paramLabel = "DIR",
                description = "Where all local state lives (default: ${DEFAULT-VALUE}).")
        public Path dataDir;

        @Option(names = "--port", defaultValue = "19092", description = "Broker port (default: ${DEFAULT-VALUE}).")
        public int port;

        @Option(names = "--controller-port", defaultValue = "19093", description = "KRaft controller port (default: ${DEFAULT-VALUE}).")
        public int controllerPort;

        @Option(names = "--broker-heap", defaultValue = "256m", description = "Broker JVM heap (default: ${DEFAULT-VALUE}).")
        public String heap;

        public BrokerProcess.Options options() {
            if (port < 1 || port > 65535 || controllerPort < 1 || controllerPort > 65535) {
                throw new UsageError("ports must be between 1 and 65535");
            }
            if (port == controllerPort) {
                throw new UsageError("--port and --controller-port must differ");
            }
            if (!heap.matches("\\d+[mMgG]")) {
                throw new UsageError("--broker-heap must look like 256m or 1g, was '" + heap + "'");
            }
            return new BrokerProcess.Options(dataDir, "127.0.0.1", port, controllerPort, heap, Duration.ofSeconds(90));
        }
    }

    @picocli.CommandLine.Mixin
    BrokerOptions broker;

    @Override
    public Integer call() throws Exception {
        return runUntilStopped(broker.options(), "broker: ready; Ctrl-C to stop");
    }

    /** Starts the broker, prints its address and waits for Ctrl-C or the broker's exit. */
    static int runUntilStopped(BrokerProcess.Options options, String readyLine) throws Exception {
        BrokerProcess process;
        try {
            process = BrokerProcess.start(options, TopicCatalog.from(Settings.fromEnvironment()), System.out);
        } catch (BrokerProcess.BrokerException e) {
            System.err.println("flywheel: " + e.getMessage());
            return 1;
        }
        java.util.concurrent.atomic.AtomicBoolean stopping = new java.util.concurrent.atomic.AtomicBoolean();
        Thread hook = new Thread(() -> {
            stopping.set(true);
            System.out.println("broker: stopping");
            process.close();
            System.out.println("broker: stopped");
        }, "flywheel-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        System.out.println("kafka: " + process.bootstrap());
        System.out.println(readyLine);
        System.out.flush();
        int code = process.waitFor();
        if (stopping.get()) {
            return 0;
        }
        // The broker went away by itself: say so and exit non-zero.
        System.err.println("flywheel: the broker exited with code " + code + "; see " + options.brokerDir().resolve("logs"));
        return 1;
    }
}
