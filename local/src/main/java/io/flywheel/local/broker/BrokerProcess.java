package io.flywheel.local.broker;

import io.flywheel.core.process.ParentWatch;
import io.flywheel.core.topics.TopicCatalog;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Uuid;

/**
 * A real Kafka broker as a child process, from the Kafka jars on our own classpath: KRaft combined
 * mode (broker and controller in one node), data under {@code <data-dir>/broker}, heap capped, the
 * log cleaner's dedupe buffer small. Storage is formatted on first start; later starts reuse it, so
 * topics and offsets survive restarts.
 */
public final class BrokerProcess implements AutoCloseable {

    /** Where and how to run the broker. */
    public record Options(Path dataDir, String host, int port, int controllerPort, String heap, Duration startTimeout) {
        public Path brokerDir() {
            return dataDir.resolve("broker");
        }

        public String bootstrap() {
            return host + ":" + port;
        }
    }

    private final Options options;
    private final Process process;
    private final Path logFile;

    private BrokerProcess(Options options, Process process, Path logFile) {
        this.options = options;
        this.process = process;
        this.logFile = logFile;
    }

    /**
     * Formats storage if needed, starts the broker, waits until it answers and creates the topic
     * catalog. Fails with a {@link BrokerException} that says what went wrong and where the log is.
     */
    public static BrokerProcess start(Options options, TopicCatalog catalog, PrintStream status) throws IOException, InterruptedException {
        Path dir = options.brokerDir();
        Path dataDir = dir.resolve("data");
        Path logsDir = dir.resolve("logs");
        Files.createDirectories(dataDir);
        Files.createDirectories(logsDir);
        Path pidFile = dir.resolve("broker.pid");
        stopOrphan(pidFile, dir.resolve("server.properties"), status);
        ensurePortFree(options.host(), options.port(), "--port");
        ensurePortFree(options.host(), options.controllerPort(), "--controller-port");

        Path config = dir.resolve("server.properties");
        Files.writeString(config, serverProperties(options, dataDir), StandardCharsets.UTF_8);
        Path log4j = dir.resolve("log4j2.properties");
        Files.writeString(log4j, log4jProperties(logsDir), StandardCharsets.UTF_8);

        if (!Files.exists(dataDir.resolve("meta.properties"))) {
            String clusterId = Uuid.randomUuid().toString();
            status.println("broker: formatting storage in " + dataDir + " (cluster " + clusterId + ")");
            Path formatLog = logsDir.resolve("format.log");
            Process format = java(options, log4j, "kafka.tools.StorageTool", "format", "--config", config.toString(),
                    "--cluster-id", clusterId, "--standalone")
                    .redirectErrorStream(true).redirectOutput(formatLog.toFile()).start();
            if (!format.waitFor(120, TimeUnit.SECONDS) || format.exitValue() != 0) {
                format.destroyForcibly();
                throw new BrokerException("formatting broker storage failed; see " + formatLog + ":\n" + tail(formatLog));
            }
        }

        Path out = logsDir.resolve("broker.out");
        Process process = java(options, log4j, "kafka.Kafka", config.toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(out.toFile())).start();
        Files.writeString(pidFile, Long.toString(process.pid()));
        BrokerProcess broker = new BrokerProcess(options, process, out);
        // One admin client for the readiness probe and the topics: it reconnects by itself while the
        // broker comes up.
        try (Admin admin = broker.admin()) {
            broker.awaitReady(admin);
            List<String> created = catalog.ensureCreated(admin);
            if (!created.isEmpty()) {
                status.println("broker: created topics " + String.join(", ", created));
            }
        } catch (InterruptedException | RuntimeException e) {
            broker.close();
            throw e;
        }
        return broker;
    }

    /**
     * A broker of ours whose launcher died without stopping it (kill -9, a crashed terminal) still
     * holds the ports and the data folder. Stop it the proper way before starting a new one.
     */
    private static void stopOrphan(Path pidFile, Path config, PrintStream status) throws IOException {
        if (!Files.exists(pidFile)) {
            return;
        }
        long pid;
        try {
            pid = Long.parseLong(Files.readString(pidFile).trim());
        } catch (NumberFormatException e) {
            Files.delete(pidFile);
            return;
        }
        ProcessHandle.of(pid)
                .filter(ProcessHandle::isAlive)
                .filter(h -> isBrokerFor(h, config))
                .ifPresent(orphan -> {
                    status.println("broker: stopping the broker an earlier run left behind (pid " + pid + ")");
                    orphan.destroy();
                    try {
                        orphan.onExit().get(30, TimeUnit.SECONDS);
                    } catch (Exception e) {
                        orphan.destroyForcibly();
                    }
                });
        Files.deleteIfExists(pidFile);
    }

    private static boolean isBrokerFor(ProcessHandle h, Path config) {
        String cmd = h.info().commandLine().orElse("");
        // The JDK may truncate a long command line (our classpath is long): look for the marker
        // that the launch puts first.
        return cmd.contains(marker(config));
    }

    private static String marker(Path config) {
        return "-Dflywheel.broker.config=" + config.toAbsolutePath();
    }

    private static ProcessBuilder java(Options options, Path log4j, String mainClass, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaExecutable());
        cmd.add(marker(options.brokerDir().resolve("server.properties")));
        cmd.add("-Xms32m");
        cmd.add("-Xmx" + options.heap());
        cmd.add("-XX:+UseG1GC");
        cmd.add("-XX:MaxGCPauseMillis=20");
        cmd.add("-Djava.awt.headless=true");
        cmd.add("-Dlog4j2.configurationFile=" + log4j);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(ParentWatch.class.getName());      // the broker ends with its launcher
        cmd.add(mainClass);
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put(ParentWatch.ENV, Long.toString(ProcessHandle.current().pid()));
        return pb;
    }

    static String javaExecutable() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    static String serverProperties(Options o, Path dataDir) {
        String host = o.host();
        return String.join("\n",
                "# Written by flywheel on every start; edit the flags, not this file.",
                "process.roles=broker,controller",
                "node.id=1",
                "controller.quorum.bootstrap.servers=" + host + ":" + o.controllerPort(),
                "listeners=PLAINTEXT://" + host + ":" + o.port() + ",CONTROLLER://" + host + ":" + o.controllerPort(),
                "advertised.listeners=PLAINTEXT://" + host + ":" + o.port(),
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs=" + dataDir.toAbsolutePath(),
                "num.partitions=1",
                // One node: every internal topic has one replica, or transactions and exactly-once
                // Streams never become ready.
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                // The cleaner's default 128 MB on-heap buffer is most of a small heap.
                "log.cleaner.dedupe.buffer.size=8388608",
                "message.max.bytes=" + TopicCatalog.MAX_MESSAGE_BYTES,
                "replica.fetch.max.bytes=" + TopicCatalog.MAX_MESSAGE_BYTES,
                "");
    }

    static String log4jProperties(Path logsDir) {
        return String.join("\n",
                "appender.file.type=RollingFile",
                "appender.file.name=file",
                "appender.file.fileName=" + logsDir.resolve("server.log").toAbsolutePath(),
                "appender.file.filePattern=" + logsDir.resolve("server.log.%i").toAbsolutePath(),
                "appender.file.layout.type=PatternLayout",
                "appender.file.layout.pattern=[%d] %p %m (%c)%n",
                "appender.file.policies.type=Policies",
                "appender.file.policies.size.type=SizeBasedTriggeringPolicy",
                "appender.file.policies.size.size=20MB",
                "appender.file.strategy.type=DefaultRolloverStrategy",
                "appender.file.strategy.max=3",
                "rootLogger.level=INFO",
                "rootLogger.appenderRef.file.ref=file",
                "");
    }

    private static void ensurePortFree(String host, int port, String flag) {
        try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getByName(host))) {
            socket.setReuseAddress(true);
        } catch (IOException e) {
            throw new BrokerException("port " + port + " on " + host + " is taken (is a broker already running?): choose another with " + flag);
        }
    }

    private void awaitReady(Admin admin) throws InterruptedException {
        long deadline = System.nanoTime() + options.startTimeout().toNanos();
        String lastError = null;
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new BrokerException("the broker exited with code " + process.exitValue() + "; see "
                        + options.brokerDir().resolve("logs") + ":\n" + tail(logFile));
            }
            try {
                admin.describeCluster().nodes().get(2, TimeUnit.SECONDS);
                return;
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                lastError = e.getMessage();
            }
            process.waitFor(200, TimeUnit.MILLISECONDS);
        }
        throw new BrokerException("the broker did not answer within " + options.startTimeout().toSeconds() + " s"
                + (lastError == null ? "" : " (" + lastError + ")") + "; see " + logFile);
    }

    private Admin admin() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, options.bootstrap());
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        return Admin.create(props);
    }

    public String bootstrap() {
        return options.bootstrap();
    }

    public boolean alive() {
        return process.isAlive();
    }

    /** The broker's process, for its CPU time or to signal it. */
    public ProcessHandle handle() {
        return process.toHandle();
    }

    /** The exit code of a broker that has exited. */
    public int exitCode() {
        return process.exitValue();
    }

    /** Blocks until the broker process exits; returns its exit code. */
    public int waitFor() throws InterruptedException {
        return process.waitFor();
    }

    /** Stops the broker with SIGTERM (a controlled shutdown), killing it only if it hangs. */
    @Override
    public void close() {
        try {
            stop();
        } finally {
            try {
                Files.deleteIfExists(options.brokerDir().resolve("broker.pid"));
            } catch (IOException ignored) {
                // Harmless: the next start checks whether the recorded process is still ours.
            }
        }
    }

    private void stop() {
        if (!process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    static String tail(Path file) {
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** The broker could not be started; the message says why and where to look. */
    public static final class BrokerException extends RuntimeException {
        public BrokerException(String message) {
            super(message);
        }
    }
}
