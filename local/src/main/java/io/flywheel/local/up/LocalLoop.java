package io.flywheel.local.up;

import io.flywheel.core.config.Settings;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.local.Flywheel;
import io.flywheel.local.broker.BrokerProcess;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * {@code ./flywheel up}: the whole loop on one machine. Reads top to bottom in {@link #run()}: the
 * broker and the topics; the corpus and the tokenizer (trained on the corpus the first time);
 * the four services, each in its own JVM with a heap sized for a 2-core, 24 GiB machine; the
 * corpus ingested once; then a status line until Ctrl-C, which stops everything in reverse order
 * (the trainer writes a final checkpoint). Everything lives in the data folder, so a second
 * {@code up} resumes: the broker's log, the streams' state, the checkpoints.
 */
public final class LocalLoop {

    /** What {@code up} was asked for. */
    public record Options(BrokerProcess.Options broker, List<Path> corpus, String tokenizer, int vocabSize, int checkpointSeconds,
                          boolean ingest, Ports ports) {

        /** Whether to start a local Prometheus ({@code --prometheus}). */
        public boolean prometheus() {
            return ports.prometheus() > 0;
        }
    }

    /** Every port of the loop besides the broker's: each a flag of {@code up}; Prometheus 0 = none. */
    public record Ports(int api, int streamMetrics, int trainerMetrics, int feedbackMetrics, int prometheus) {}

    private static final Duration READY_TIMEOUT = Duration.ofMinutes(3);

    private final Options options;
    private final Path data;
    private final List<Supervised> services = Collections.synchronizedList(new ArrayList<>());
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final boolean terminal = System.console() != null;
    private volatile BrokerProcess broker;
    private int brokerRestarts;
    private int brokerFailuresInARow;
    private long brokerStartedAt = System.nanoTime();

    public LocalLoop(Options options) {
        this.options = options;
        this.data = options.broker().dataDir().toAbsolutePath();
    }

    public int run() throws Exception {
        Path prometheus = options.prometheus() ? LocalPrometheus.binary() : null;   // a missing binary stops us before anything starts
        stopOrphans();
        Runtime.getRuntime().addShutdownHook(new Thread(this::stopAll, "flywheel-up-shutdown"));
        try {
            broker = BrokerProcess.start(options.broker(), TopicCatalog.from(Settings.fromEnvironment()), System.out);
        } catch (BrokerProcess.BrokerException e) {
            System.err.println("flywheel: " + e.getMessage());
            return 1;
        }
        String bootstrap = broker.bootstrap();
        System.out.println("kafka: " + bootstrap);

        List<Path> corpus = options.corpus().isEmpty()
                ? List.of(DemoCorpus.extract(data.resolve("corpus").resolve("europarl-en.txt")))
                : options.corpus();
        String tokenizer = tokenizer(corpus);

        Path logs = data.resolve("logs");
        Ports ports = options.ports();
        requireFree(ports.streamMetrics(), "--stream-metrics-port", "the tokenizer stream's metrics");
        requireFree(ports.feedbackMetrics(), "--feedback-metrics-port", "the feedback stream's metrics");
        requireFree(ports.trainerMetrics(), "--trainer-metrics-port", "the trainer's metrics");
        requireFree(ports.api(), "--api-port", "the OpenAI API");
        if (options.prometheus()) {
            requireFree(ports.prometheus(), "--prometheus-port", "Prometheus");
        }
        start("tokenizer-stream", List.of("-Xmx512m", "-XX:+UseSerialGC"),
                List.of("io.flywheel.tokenizerstream.StreamCommand", "--bootstrap", bootstrap, "--tokenizer", tokenizer,
                        "--state-dir", data.resolve("streams").toString(), "--metrics-port", Integer.toString(ports.streamMetrics())),
                Map.of(), logs);
        start("feedback", List.of("-Xmx256m", "-XX:+UseSerialGC"),
                List.of("io.flywheel.feedback.FeedbackCommand", "--bootstrap", bootstrap, "--tokenizer", tokenizer,
                        "--state-dir", data.resolve("feedback").toString(), "--metrics-port", Integer.toString(ports.feedbackMetrics())),
                Map.of(), logs);
        // The trainer and serving share the two cores: one OpenMP thread each, off-heap capped.
        // The Vector API module: the engine's exp runs on it (docs/benchmarks.md).
        start("trainer", List.of("-Xmx1g", "-XX:+UseSerialGC", "--add-modules", "jdk.incubator.vector", "-Dorg.bytedeco.javacpp.maxbytes=1g",
                        "-Dorg.bytedeco.javacpp.maxphysicalbytes=2500m"),
                List.of("io.flywheel.trainer.TrainCommand", "--bootstrap", bootstrap, "--tokenizer", tokenizer,
                        "--checkpoint-dir", data.resolve("checkpoints").toString(), "--metrics-port", Integer.toString(ports.trainerMetrics()),
                        "--set", "checkpoint.every-seconds=" + options.checkpointSeconds()),
                Map.of("OMP_NUM_THREADS", "1"), logs);
        // The Vector API module: the engine's exp, and FLYWHEEL_SERVING_QUANTIZE=int8 (inherited by the child).
        start("serving", List.of("-Xmx1g", "-XX:+UseSerialGC", "--add-modules", "jdk.incubator.vector",
                        "-Dorg.bytedeco.javacpp.maxbytes=1g", "-Dorg.bytedeco.javacpp.maxphysicalbytes=2g"),
                List.of("-jar", servingJar().toString()),
                Map.of("OMP_NUM_THREADS", "1", "FLYWHEEL_KAFKA_BOOTSTRAP", bootstrap, "FLYWHEEL_SERVING_TOKENIZER", tokenizer,
                        "FLYWHEEL_SERVING_PORT", Integer.toString(ports.api())),
                logs);

        if (prometheus != null) {
            LocalPrometheus.writeConfig(data, ports);
            supervise("prometheus", () -> ChildProcess.program("prometheus", LocalPrometheus.command(prometheus, data, ports.prometheus()),
                    Map.of(), logs));
        }

        System.out.println("flywheel: starting services (logs in " + logs + ")");
        if (!await("tokenizer stream", () -> Scrape.ok(metrics(ports.streamMetrics(), "/health/ready")))
                || !await("feedback stream", () -> Scrape.ok(metrics(ports.feedbackMetrics(), "/health/ready")))
                || !await("trainer", () -> Scrape.ok(metrics(ports.trainerMetrics(), "/health/ready")))
                || !await("serving", () -> Scrape.ok(api("/q/health/live")))
                || (prometheus != null && !await("prometheus", () -> Scrape.ok(prometheus("/-/ready"))))) {
            stopAll();
            return 1;
        }

        if (options.ingest() && !ingested(corpus)) {
            System.out.println("flywheel: ingesting " + corpus.size() + " corpus path(s) into text.raw");
            String split = options.corpus().isEmpty() ? "line" : "paragraph";
            List<String> args = new ArrayList<>(List.of("ingest", "--bootstrap", bootstrap, "--split", split));
            corpus.forEach(p -> args.add(p.toString()));
            int code = Flywheel.run(args.toArray(String[]::new));
            if (code == 0) {
                markIngested(corpus);
            } else {
                System.err.println("flywheel: some documents were not ingested (see above); the loop goes on");
            }
        }

        printBanner(bootstrap);
        return statusUntilStopped();
    }

    // --- the tokenizer ---------------------------------------------------------------------------

    /** The given tokenizer, or {@code DATA/tokenizer.json}, trained on the corpus if it is not there yet. */
    private String tokenizer(List<Path> corpus) {
        if (options.tokenizer() != null) {
            return options.tokenizer();
        }
        Path file = data.resolve("tokenizer.json");
        if (!Files.exists(file)) {
            System.out.println("flywheel: training a " + options.vocabSize() + "-token BPE tokenizer on the corpus -> " + file);
            List<String> args = new ArrayList<>(List.of("tokenizer", "train", "--vocab-size", Integer.toString(options.vocabSize()),
                    "--out", file.toString()));
            corpus.forEach(p -> args.add(p.toString()));
            int code = Flywheel.run(args.toArray(String[]::new));
            if (code != 0) {
                throw new IllegalStateException("training the tokenizer failed (exit " + code + ")");
            }
        }
        return file.toString();
    }

    // --- services --------------------------------------------------------------------------------

    private void start(String name, List<String> jvm, List<String> args, Map<String, String> env, Path logs) throws IOException {
        supervise(name, () -> ChildProcess.java(name, data.toString(), jvm, args, env, logs));
    }

    /** Starts a service and keeps it running: {@link #superviseAll} restarts it when it dies. */
    private void supervise(String name, Supervised.Starter starter) throws IOException {
        Supervised service = new Supervised(name, starter);
        services.add(service);
        record(service.start());
    }

    /** Recorded in services.pid, so that a later up finds it if we are killed outright and it outlived us. */
    private void record(ChildProcess child) throws IOException {
        Files.writeString(data.resolve("services.pid"), child.pid() + "\n", StandardCharsets.UTF_8,
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
    }

    /** A port the loop needs, free before its service starts: otherwise the error names it and its flag. */
    private static void requireFree(int port, String flag, String what) {
        try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
            socket.setReuseAddress(true);
        } catch (IOException e) {
            throw new io.flywheel.core.cli.UsageError("port " + port + " (" + what + ") is taken by another program: free it or choose"
                    + " another with " + flag);
        }
    }

    /**
     * Services an earlier {@code up} on this folder left running (it was killed with SIGKILL, or its
     * terminal died) hold the ports and the state: stop them first, as the broker does its own.
     */
    private void stopOrphans() throws IOException {
        Path pids = data.resolve("services.pid");
        if (!Files.exists(pids)) {
            return;
        }
        for (String line : Files.readAllLines(pids)) {
            try {
                ProcessHandle.of(Long.parseLong(line.trim()))
                        .filter(h -> ChildProcess.ownedBy(h.info().commandLine().orElse(""), data.toString()))
                        .ifPresent(orphan -> {
                            System.out.println("flywheel: stopping a service an earlier run left behind (pid " + orphan.pid() + ")");
                            orphan.destroy();
                            try {
                                orphan.onExit().get(2, java.util.concurrent.TimeUnit.MINUTES);
                            } catch (Exception e) {
                                orphan.destroyForcibly();
                            }
                        });
            } catch (NumberFormatException ignored) {
                // not a pid: the file is ours, nothing else writes it
            }
        }
        Files.delete(pids);
    }

    /** Serving's fast-jar, built by ./flywheel beside the command line (-Dflywheel.home or FLYWHEEL_HOME: the checkout). */
    private static Path servingJar() {
        Path home = Path.of(System.getProperty("flywheel.home", System.getenv().getOrDefault("FLYWHEEL_HOME", ".")));
        Path jar = home.resolve("serving/target/quarkus-app/quarkus-run.jar");
        if (!Files.exists(jar)) {
            throw new io.flywheel.core.cli.UsageError("serving is not built (" + jar + "): run ./mvnw -B install -DskipTests");
        }
        return jar;
    }

    /** Polls until ready, a service dies, or the deadline passes; says which. */
    private boolean await(String what, BooleanSupplier ready) throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (!ready.getAsBoolean()) {
            ChildProcess dead = firstDead();
            if (dead != null) {
                reportDead(dead);
                return false;
            }
            if (System.nanoTime() > deadline) {
                System.err.println("flywheel: the " + what + " was not ready within " + READY_TIMEOUT.toMinutes() + " minutes");
                return false;
            }
            Thread.sleep(250);
        }
        System.out.println("flywheel: " + what + " ready");
        return true;
    }

    private ChildProcess firstDead() {
        synchronized (services) {
            return services.stream().map(Supervised::process).filter(p -> !p.alive()).findFirst().orElse(null);
        }
    }

    /**
     * The supervisor's round: a service that died is reported in one line and started again after
     * a backoff, the broker first (the others reconnect to it by themselves). Serving keeps
     * answering while the trainer or a stream restarts; the trainer resumes from its checkpoint,
     * the streams from their committed offsets.
     */
    private void superviseAll() {
        if (broker != null && !broker.alive() && !stopping.get()) {
            restartBroker();
        }
        List<Supervised> all;
        synchronized (services) {
            all = new ArrayList<>(services);
        }
        for (Supervised s : all) {
            if (stopping.get()) {
                return;
            }
            String report = s.check();
            if (report != null) {
                System.out.println((terminal ? "\r\u001b[2K" : "") + report);
            }
            try {
                ChildProcess restarted = s.restartIfDue();
                if (restarted != null) {
                    record(restarted);
                    System.out.println("flywheel: " + s.name() + " restarted (pid " + restarted.pid() + ", restart " + s.restarts() + ")");
                }
            } catch (IOException e) {
                System.out.println("flywheel: " + s.name() + " could not be restarted: " + e.getMessage());
            }
        }
    }

    private void restartBroker() {
        brokerRestarts++;
        System.out.println((terminal ? "\r\u001b[2K" : "") + "flywheel: broker exited with code " + broker.exitCode()
                + "; restarting it (restart " + brokerRestarts + ")");
        try {
            // The same backoff as the services': it grows while the broker keeps dying young, and
            // starts from 1 s again after a healthy run.
            brokerFailuresInARow = Supervised.failuresInARow(brokerFailuresInARow, Duration.ofNanos(System.nanoTime() - brokerStartedAt));
            Thread.sleep(Supervised.backoff(brokerFailuresInARow).toMillis());
            brokerStartedAt = System.nanoTime();
            broker = BrokerProcess.start(options.broker(), TopicCatalog.from(Settings.fromEnvironment()), System.out);
            System.out.println("flywheel: broker restarted on " + broker.bootstrap());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException | RuntimeException e) {
            System.out.println("flywheel: the broker could not be restarted (" + e.getMessage() + "); trying again");
        }
    }

    private static void reportDead(ChildProcess dead) {
        System.err.println("\nflywheel: " + dead.name() + " exited with code " + dead.exitCode() + "; the end of " + dead.log() + ":");
        System.err.println(dead.tail(20));
    }

    /** Ctrl-C: serving first (no new answers), the trainer (final checkpoint), the streams, the broker. */
    private void stopAll() {
        if (!stopping.compareAndSet(false, true)) {
            return;
        }
        System.out.println("\nflywheel: stopping");
        List<ChildProcess> reversed;
        synchronized (services) {
            reversed = new ArrayList<>(services.stream().map(Supervised::stopSupervising).toList());
        }
        Collections.reverse(reversed);
        for (ChildProcess s : reversed) {
            s.stop(s.name().equals("trainer") ? Duration.ofMinutes(2) : Duration.ofSeconds(30));
            System.out.println("flywheel: " + s.name() + " stopped");
        }
        try {
            Files.deleteIfExists(data.resolve("services.pid"));
        } catch (IOException ignored) {
            // harmless: the next start checks whether the recorded processes are still ours
        }
        if (broker != null) {
            broker.close();
            System.out.println("flywheel: broker stopped");
        }
    }

    // --- ingestion, once per corpus ----------------------------------------------------------------

    private boolean ingested(List<Path> corpus) throws IOException {
        Path marker = data.resolve("ingested.txt");
        return Files.exists(marker) && Files.readAllLines(marker).contains(corpusKey(corpus));
    }

    private void markIngested(List<Path> corpus) throws IOException {
        Files.writeString(data.resolve("ingested.txt"), corpusKey(corpus) + "\n", StandardCharsets.UTF_8,
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
    }

    private static String corpusKey(List<Path> corpus) {
        return String.join(" ", corpus.stream().map(p -> p.toAbsolutePath().normalize().toString()).toList());
    }

    // --- what the user sees ------------------------------------------------------------------------

    private String api(String path) {
        return "http://127.0.0.1:" + options.ports().api() + path;
    }

    private String prometheus(String path) {
        return "http://127.0.0.1:" + options.ports().prometheus() + path;
    }

    private static String metrics(int port, String path) {
        return "http://127.0.0.1:" + port + path;
    }

    private void printBanner(String bootstrap) {
        System.out.println();
        System.out.println("Flywheel is up. Data in " + data + "; Ctrl-C stops it, a second 'up' resumes.");
        System.out.println("  OpenAI API   " + api("/v1") + "   (model \"flywheel\"; no key needed locally)");
        Ports ports = options.ports();
        System.out.println("  metrics      serving " + api("/q/metrics") + ", trainer " + metrics(ports.trainerMetrics(), "/metrics")
                + ",");
        System.out.println("               tokenizer stream " + metrics(ports.streamMetrics(), "/metrics") + ", feedback "
                + metrics(ports.feedbackMetrics(), "/metrics"));
        if (options.prometheus()) {
            System.out.println("  prometheus   " + prometheus("/") + "   (scrapes every service; alerts: " + prometheus("/alerts") + ")");
        }
        System.out.println("  kafka        " + bootstrap);
        System.out.println("  try it       curl -s " + api("/v1/chat/completions") + " -H 'Content-Type: application/json' \\");
        System.out.println("                 -d '{\"model\":\"flywheel\",\"messages\":[{\"role\":\"user\",\"content\":\"The Commission\"}],\"max_tokens\":40}'");
        System.out.println("  feedback     curl -s " + api("/v1/feedback") + " -H 'Content-Type: application/json' -d '{\"response_id\":\"ID\",\"rating\":1}'");
        System.out.println("  chat apps    ./flywheel simulate-chat   (plays users who like answers that end a sentence)");
        System.out.println("  (the first model is served after the trainer's first checkpoint, about " + options.checkpointSeconds()
                + " s of training)");
        System.out.println();
    }

    /** Prints the status every two seconds (in place on a terminal) until Ctrl-C, restarting what dies. */
    private int statusUntilStopped() throws InterruptedException {
        long lastPlain = 0;
        while (!stopping.get()) {
            superviseAll();
            if (stopping.get()) {
                break;
            }
            String line = status();
            if (terminal) {
                System.out.print("\r\u001b[2K" + line);
                System.out.flush();
            } else if (System.nanoTime() - lastPlain > Duration.ofSeconds(30).toNanos()) {
                System.out.println(line);
                lastPlain = System.nanoTime();
            }
            Thread.sleep(2000);
        }
        return 0;
    }

    private String status() {
        Ports ports = options.ports();
        Scrape stream = Scrape.of(metrics(ports.streamMetrics(), "/metrics"));
        Scrape trainer = Scrape.of(metrics(ports.trainerMetrics(), "/metrics"));
        Scrape feedback = Scrape.of(metrics(ports.feedbackMetrics(), "/metrics"));
        Scrape serving = Scrape.of(api("/q/metrics"));
        List<String> down = new ArrayList<>();
        if (broker != null && !broker.alive()) {
            down.add("broker");
        }
        synchronized (services) {
            services.stream().filter(s -> !s.process().alive()).forEach(s -> down.add(s.name()));
        }
        String prefix = down.isEmpty() ? "" : "DOWN (restarting): " + String.join(", ", down) + " | ";
        return prefix + String.format(Locale.ROOT,
                "docs %s (rejected %s) | tokens trained %s | loss %s | val ppl %s | ckpt v%s, served v%s | pairs %s | reward acc %s",
                count(stream.sum("flywheel_stream_records_in_total")), count(stream.sum("flywheel_stream_records_rejected_total")),
                count(trainer.sum("flywheel_trainer_tokens_trained_total")), number(trainer.get("flywheel_trainer_loss"), "%.2f"),
                number(trainer.get("flywheel_trainer_validation_perplexity"), "%.1f"),
                count(trainer.get("flywheel_trainer_checkpoint_version")), count(serving.sum("flywheel_serving_model_version")),
                count(feedback.get("flywheel_feedback_preferences_out_total{kind=\"pair\"}")),
                number(trainer.get("flywheel_trainer_reward_accuracy"), "%.2f"));
    }

    private static String count(double v) {
        if (Double.isNaN(v)) {
            return "-";
        }
        if (v >= 1e6) {
            return String.format(Locale.ROOT, "%.1fM", v / 1e6);
        }
        if (v >= 1e4) {
            return String.format(Locale.ROOT, "%.0fk", v / 1e3);
        }
        return String.format(Locale.ROOT, "%.0f", v);
    }

    private static String number(double v, String format) {
        return Double.isNaN(v) || v == 0 ? "-" : String.format(Locale.ROOT, format, v);
    }
}
