package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code flywheel broker} through the real CLI: the broker runs as a child
 * process of the CLI, creates the topic catalog, keeps its data across restarts and stops on SIGTERM.
 */
class BrokerCliTest {

    @TempDir
    Path dataDir;

    /** A started CLI process and the lines it printed so far. */
    record Running(Process process, Thread reader, LinkedBlockingQueue<String> lines, List<String> seen) {
        /** Waits for a line starting with {@code prefix}; fails after {@code timeout}. */
        String await(String prefix, Duration timeout) throws InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (System.nanoTime() < deadline) {
                String line = lines.poll(200, TimeUnit.MILLISECONDS);
                if (line != null) {
                    seen.add(line);
                    if (line.startsWith(prefix)) {
                        return line;
                    }
                }
                // Once the process is gone and its output fully read, nothing more can come.
                if (line == null && !process.isAlive() && !reader.isAlive() && lines.isEmpty()) {
                    throw new AssertionError("exited with " + process.exitValue() + " before '" + prefix + "': " + seen);
                }
            }
            throw new AssertionError("no '" + prefix + "' within " + timeout + ": " + seen);
        }
    }

    static Running start(String... args) throws IOException {
        return start(java.util.Map.of(), args);
    }

    /** Starts the CLI with extra environment variables, e.g. {@code FLYWHEEL_HOME}. */
    static Running start(java.util.Map<String, String> env, String... args) throws IOException {
        ProcessBuilder builder = Cli.command(List.of(args)).redirectErrorStream(true);
        builder.environment().putAll(env);
        Process p = builder.start();
        LinkedBlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    lines.add(line);
                }
            } catch (IOException ignored) {
                // The process ended.
            }
        });
        reader.setDaemon(true);
        reader.start();
        return new Running(p, reader, lines, Collections.synchronizedList(new ArrayList<>()));
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static boolean listening(int port) {
        try (Socket ignored = new Socket("127.0.0.1", port)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    /** Sends a signal by name (STOP, CONT, ...), which Java's process API cannot. */
    static void signal(ProcessHandle process, String signal) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).inheritIO().start();
        assertTrue(kill.waitFor(10, TimeUnit.SECONDS) && kill.exitValue() == 0, "kill -" + signal + " " + process.pid());
    }

    static void stop(Running running, int port) throws InterruptedException {
        // SIGTERM, as a supervisor would send. Through the handle: Process.destroy() would also close
        // our end of its stdout, and we want to read what it prints while stopping.
        running.process().toHandle().destroy();
        assertTrue(running.process().waitFor(60, TimeUnit.SECONDS), "the CLI stops within 60 s");
        // A JVM stopped by SIGTERM exits with 128+15 after its shutdown hooks ran; ours stops the
        // broker (a controlled shutdown) and says so.
        assertEquals(143, running.process().exitValue(), running.seen().toString());
        running.await("broker: stopped", Duration.ofSeconds(10));
        assertFalse(listening(port), "the broker child process is gone");
    }

    @Test
    void brokerCreatesTheCatalogKeepsDataAcrossRestartsAndStopsCleanly() throws Exception {
        int port = freePort();
        int controller = freePort();
        String[] args = {"broker", "--data-dir", dataDir.toString(), "--port", String.valueOf(port),
                "--controller-port", String.valueOf(controller)};

        Running first = start(args);
        String bootstrap;
        try {
            String line = first.await("kafka: ", Duration.ofSeconds(120));
            assertEquals("kafka: 127.0.0.1:" + port, line);
            bootstrap = line.substring("kafka: ".length());
            TopicCatalog catalog = TopicCatalog.defaults();
            try (Admin admin = admin(bootstrap)) {
                Set<String> topics = admin.listTopics().names().get(30, TimeUnit.SECONDS);
                for (TopicCatalog.Spec spec : catalog.all()) {
                    assertTrue(topics.contains(spec.name()), spec.name() + " in " + topics);
                }
                for (Topic compacted : List.of(Topic.RESPONSES, Topic.CHECKPOINTS)) {
                    ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, catalog.name(compacted));
                    Config config = admin.describeConfigs(List.of(res)).all().get(30, TimeUnit.SECONDS).get(res);
                    assertEquals("compact", config.get("cleanup.policy").value(), compacted.name());
                }
                ConfigResource tokens = new ConfigResource(ConfigResource.Type.TOPIC, catalog.name(Topic.TOKENS));
                assertEquals("delete", admin.describeConfigs(List.of(tokens)).all().get(30, TimeUnit.SECONDS)
                        .get(tokens).get("cleanup.policy").value());
            }
            Properties producer = new Properties();
            producer.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            producer.put(ProducerConfig.ACKS_CONFIG, "all");
            try (var p = new KafkaProducer<>(producer, new StringSerializer(), new StringSerializer())) {
                p.send(new ProducerRecord<>(catalog.name(Topic.TEXT_RAW), "doc-1", "{\"kept\":true}")).get(30, TimeUnit.SECONDS);
            }
        } finally {
            if (first.process().isAlive()) {
                stop(first, port);
            }
        }

        // A second start reuses the formatted storage: no new cluster, the record is still there.
        Running second = start("broker", "--data-dir", dataDir.toString(), "--port", String.valueOf(port),
                "--controller-port", String.valueOf(controller));
        try {
            second.await("kafka: ", Duration.ofSeconds(120));
            assertTrue(second.seen().stream().noneMatch(l -> l.contains("formatting storage")), second.seen().toString());
            Properties consumer = new Properties();
            consumer.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            consumer.put(ConsumerConfig.GROUP_ID_CONFIG, "broker-cli-test");
            consumer.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            List<String> values = new ArrayList<>();
            try (var c = new KafkaConsumer<>(consumer, new StringDeserializer(), new StringDeserializer())) {
                c.subscribe(List.of(TopicCatalog.defaults().name(Topic.TEXT_RAW)));
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (values.isEmpty() && System.nanoTime() < deadline) {
                    c.poll(Duration.ofMillis(250)).forEach(r -> values.add(r.key() + "=" + r.value()));
                }
            }
            assertEquals(List.of("doc-1={\"kept\":true}"), values);
        } finally {
            stop(second, port);
        }
    }

    @Test
    void aBrokerOrphanedByAKilledLauncherIsStoppedOnTheNextStart() throws Exception {
        int port = freePort();
        int controller = freePort();
        String[] args = {"broker", "--data-dir", dataDir.toString(), "--port", String.valueOf(port),
                "--controller-port", String.valueOf(controller)};
        Running first = start(args);
        first.await("kafka: ", Duration.ofSeconds(120));
        // The broker child follows a killed launcher by itself (it watches its parent). One that
        // could not (frozen, or still in its shutdown when the next start comes) is an orphan that
        // holds the port: make one by stopping it before its launcher is SIGKILLed.
        ProcessHandle orphan = first.process().toHandle().descendants()
                .filter(h -> h.info().commandLine().orElse("").contains("-Dflywheel.broker.config=")).findFirst()
                .orElseThrow(() -> new AssertionError("no broker child of " + first.process().pid()));
        signal(orphan, "STOP");
        first.process().destroyForcibly(); // SIGKILL: no shutdown hook runs
        first.process().waitFor(30, TimeUnit.SECONDS);
        assertTrue(listening(port), "the orphaned broker still holds its port");

        Running second = start(args);
        try {
            second.await("broker: stopping the broker an earlier run left behind", Duration.ofSeconds(60));
            signal(orphan, "CONT"); // it now takes the SIGTERM the next start sent it
            assertEquals("kafka: 127.0.0.1:" + port, second.await("kafka: ", Duration.ofSeconds(120)));
            assertFalse(orphan.isAlive(), "the orphan is gone");
        } finally {
            stop(second, port);
        }
    }

    @Test
    void aTakenPortIsAClearError() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            Cli.Result r = Cli.run("broker", "--data-dir", dataDir.toString(), "--port", String.valueOf(taken.getLocalPort()),
                    "--controller-port", String.valueOf(freePort()));
            assertEquals(1, r.exit(), r.out() + r.stderr());
            assertTrue(r.stderr().contains("is taken"), r.stderr());
        }
    }

    @Test
    void environmentVariablesConfigureTheBroker() throws Exception {
        int port = freePort();
        ProcessBuilder pb = Cli.command(List.of("broker")).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.put("FLYWHEEL_DATA_DIR", dataDir.toString());
        env.put("FLYWHEEL_PORT", String.valueOf(port));
        env.put("FLYWHEEL_CONTROLLER_PORT", String.valueOf(freePort()));
        Process p = pb.start();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            String kafka = null;
            while ((line = in.readLine()) != null) {
                if (line.startsWith("kafka: ")) {
                    kafka = line;
                    break;
                }
            }
            assertEquals("kafka: 127.0.0.1:" + port, kafka);
            assertTrue(dataDir.resolve("broker/data/meta.properties").toFile().exists());
        } finally {
            p.destroy();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        }
    }
}
