package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.checkpoint.CheckpointLog;
import io.flywheel.core.config.Settings;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.streams.StreamsApp;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.feedback.FeedbackConfig;
import io.flywheel.feedback.FeedbackStream;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import io.flywheel.testsupport.Scrape;
import io.flywheel.tokenizerstream.StreamConfig;
import io.flywheel.tokenizerstream.TokenizerStream;
import io.flywheel.trainer.Trainer;
import io.flywheel.trainer.TrainerConfig;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole loop through a real broker and the real services: the tokenizer stream, the feedback
 * stream and the trainer in this JVM, the ingest gateway and serving (their built Quarkus apps) as
 * child processes, talked to over HTTP. Every hop is asserted with a deadline: text in, tokens out, a checkpoint trained and
 * promoted, serving on that version, chat answers, feedback accepted, preference pairs built,
 * reward-model steps taken, and a newer checkpoint, trained on the pairs, that serving swaps to.
 * Then the services' real /metrics must hold every metric and label that the alert rules and the
 * Grafana dashboard under k8s/ use ({@link OpsContract}).
 */
@ExtendWith(KafkaBrokerExtension.class)
class LoopEndToEndTest {

    private static final Duration HOP = Duration.ofMinutes(3);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    @Test
    void textBecomesAServedModelAndFeedbackBecomesANewerOne(KafkaBroker broker) throws Exception {
        String prefix = KafkaBroker.uniqueName("loop") + ".";
        Map<String, String> common = new HashMap<>();
        common.put("topics.prefix", prefix);
        common.put("kafka.bootstrap", broker.bootstrapServers());
        TopicCatalog topics = TopicCatalog.from(settings(common));
        topics.ensureCreated(broker.admin());

        List<String> documents = Corpus.lines(400, 200);
        BpeTrainer bpe = new BpeTrainer(PreTokenizer.GPT2, 512, BpeTrainer.DEFAULT_SPECIALS, s -> {});
        documents.forEach(d -> bpe.add(d.getBytes(StandardCharsets.UTF_8)));
        Path tokenizerFile = dir.resolve("tokenizer.json");
        Files.write(tokenizerFile, bpe.train());
        Tokenizer tokenizer = TokenizerFiles.load(tokenizerFile.toString());

        Map<String, String> stream = new HashMap<>(common);
        stream.put("stream.application-id", KafkaBroker.uniqueName("loop-stream"));
        stream.put("stream.state-dir", dir.resolve("streams").toString());
        stream.put("stream.validation-share", "0.1");
        stream.put("stream.metrics.port", "0");
        Map<String, String> feedback = new HashMap<>(common);
        feedback.put("feedback.application-id", KafkaBroker.uniqueName("loop-feedback"));
        feedback.put("feedback.state-dir", dir.resolve("feedback").toString());
        feedback.put("feedback.metrics.port", "0");
        Map<String, String> trainer = new HashMap<>(common);
        trainer.put("trainer.checkpoint-dir", dir.resolve("checkpoints").toString());
        trainer.put("trainer.tokenizer", tokenizerFile.toString());
        trainer.put("trainer.metrics.port", "0");
        trainer.put("trainer.peak-flops", "1e11");
        trainer.put("model.context", "64");
        trainer.put("model.layers", "2");
        trainer.put("model.heads", "2");
        trainer.put("model.width", "64");
        trainer.put("train.batch", "4");
        trainer.put("optim.lr", "3e-3");
        trainer.put("optim.warmup-steps", "10");
        trainer.put("checkpoint.every-seconds", "3");
        trainer.put("pref.every-steps", "1");
        trainer.put("gate.tolerance", "0.5");      // this test follows the loop, not the gate (TrainerGateTest does)

        int port = freePort();
        int gatewayPort = freePort();
        try (StreamsApp tokens = TokenizerStream.start(StreamConfig.from(settings(stream)), tokenizer, Map.of());
             StreamsApp prefs = FeedbackStream.start(FeedbackConfig.from(settings(feedback)), tokenizer, Map.of());
             QuarkusApp gateway = QuarkusApp.start("ingest-gateway", "-Xmx256m", Map.of("FLYWHEEL_KAFKA_BOOTSTRAP", broker.bootstrapServers(),
                     "FLYWHEEL_TOPICS_PREFIX", prefix, "FLYWHEEL_GATEWAY_PORT", Integer.toString(gatewayPort)), dir.resolve("gateway.log"));
             QuarkusApp serving = QuarkusApp.start("serving", "-Xmx768m", Map.of("FLYWHEEL_KAFKA_BOOTSTRAP", broker.bootstrapServers(),
                     "FLYWHEEL_TOPICS_PREFIX", prefix, "FLYWHEEL_SERVING_TOKENIZER", tokenizerFile.toString(),
                     "FLYWHEEL_SERVING_PORT", Integer.toString(port), "FLYWHEEL_SERVING_MODEL_NAME", "flywheel"), dir.resolve("serving.log"))) {
            Trainer learner = Trainer.start(TrainerConfig.from(settings(trainer)), tokenizer);
            Thread training = new Thread(learner::run, "trainer");
            training.start();
            try {
                // text in, through the ingest gateway (one NDJSON batch; and one bad request) -> tokens
                await("the ingest gateway", () -> status("http://127.0.0.1:" + gatewayPort + "/q/health/ready"), c -> c == 200);
                StringBuilder batch = new StringBuilder();
                for (int i = 0; i < documents.size(); i++) {
                    batch.append(JSON.createObjectNode().put("id", "doc-" + i).put("source", "loop-test").put("text", documents.get(i)))
                            .append('\n');
                }
                assertEquals(202, post("http://127.0.0.1:" + gatewayPort + "/v1/documents", "application/x-ndjson", batch.toString()));
                assertEquals(400, post("http://127.0.0.1:" + gatewayPort + "/v1/documents", "application/json", "{\"text\": "));
                int tokenRecords = await("token records", () -> count(broker, topics.name(Topic.TOKENS)), n -> n >= 300);
                assertTrue(tokenRecords <= documents.size());

                // training -> a promoted checkpoint -> serving answers with it
                CheckpointEvent first = await("a promoted checkpoint", () -> latest(broker, topics), Optional::isPresent).orElseThrow();
                long served = await("serving on a trained version", () -> servedVersion(port), v -> v >= first.version());

                // chat -> feedback -> preference pairs
                List<String> feedbackIds = new ArrayList<>();
                for (int i = 0; i < 24; i++) {
                    JsonNode answer = chat(port, documents.get(i).substring(0, 40));
                    assertTrue(answer.path("model_version").asLong() >= served, answer.toString());
                    String id = answer.path("id").asText();
                    assertTrue(id.startsWith("chatcmpl-"), id);
                    assertEquals(202, feedback(port, JSON.createObjectNode().put("chosen_id", id).put("rejected_id", id + "-1")
                            .put("user", "tester")));
                    feedbackIds.add(id);
                }
                int pairs = await("preference pairs", () -> count(broker, topics.name(Topic.PREFERENCES)), n -> n >= 10);
                assertTrue(pairs <= feedbackIds.size());
                List<PreferenceRecord> examples = read(broker, topics.name(Topic.PREFERENCES));
                assertTrue(examples.stream().allMatch(p -> p.kind() == PreferenceRecord.Kind.PAIR
                        && p.tokenizerId().equals(tokenizer.id())), examples.toString());

                // reward-model steps -> a newer checkpoint trained on them -> serving swaps to it
                await("preference steps", () -> Scrape.of(learner.metricsPort()).get("flywheel_trainer_preference_steps_total"), n -> n >= 1);
                CheckpointEvent tuned = await("a promoted checkpoint trained on preferences", () -> latest(broker, topics),
                        e -> e.isPresent() && e.get().metrics().getOrDefault("preference_examples_trained", 0.0) > 0).orElseThrow();
                assertTrue(tuned.version() > first.version());
                await("serving on the preference-trained version", () -> servedVersion(port), v -> v >= tuned.version());
                JsonNode after = chat(port, "The Commission");
                assertTrue(after.path("model_version").asLong() >= tuned.version(), after.toString());

                // operations: every metric and label the alerts and the dashboard (k8s/) use is exported
                List<String> scrapes = List.of(text("http://127.0.0.1:" + tokens.metricsPort() + "/metrics"),
                        text("http://127.0.0.1:" + prefs.metricsPort() + "/metrics"),
                        text("http://127.0.0.1:" + learner.metricsPort() + "/metrics"),
                        text("http://127.0.0.1:" + port + "/q/metrics"),
                        text("http://127.0.0.1:" + gatewayPort + "/q/metrics"));
                assertEquals(List.of(), OpsContract.missing(OpsContract.uses(Path.of("..", "k8s")), OpsContract.exported(scrapes)));
            } finally {
                learner.requestStop();
                assertTrue(learner.awaitStop(HOP));
                learner.close();
            }
        }
    }

    // --- serving and the ingest gateway, the real apps, as child processes ---------------------

    private static final class QuarkusApp implements AutoCloseable {
        private final Process process;
        private final Path log;

        private QuarkusApp(Process process, Path log) {
            this.process = process;
            this.log = log;
        }

        /** Runs {@code <module>/target/quarkus-app/quarkus-run.jar}, built by the reactor before this module. */
        static QuarkusApp start(String module, String heap, Map<String, String> env, Path log) throws IOException {
            Path jar = Path.of("..", module, "target", "quarkus-app", "quarkus-run.jar").toAbsolutePath().normalize();
            assertTrue(Files.exists(jar), module + " is built before this module: " + jar);
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    heap, "-XX:+UseSerialGC"));
            cmd.addAll(List.of(System.getProperty("flywheel.test.nd4j-memory", "").split(" ")));
            if (module.equals("serving")) {
                cmd.addAll(List.of("--add-modules", "jdk.incubator.vector"));   // as ./flywheel up starts it
            }
            cmd.addAll(List.of("-jar", jar.toString()));
            cmd.removeIf(String::isBlank);
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
            pb.environment().put("OMP_NUM_THREADS", "1");
            pb.environment().putAll(env);
            return new QuarkusApp(pb.start(), log);
        }

        @Override
        public void close() throws Exception {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
            System.out.println("--- " + log.getFileName() + " ---\n" + Files.readString(log));
        }
    }

    private static int status(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    private static int post(String url, String contentType, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).header("Content-Type", contentType)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    private static long servedVersion(int port) {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/models")).build(),
                    HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? JSON.readTree(r.body()).path("data").path(0).path("model_version").asLong(-1) : -1;
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    private static String text(String url) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), url);
        return r.body();
    }

    private static JsonNode chat(int port, String question) throws Exception {
        ObjectNode body = JSON.createObjectNode().put("model", "flywheel").put("n", 2).put("max_tokens", 16).put("temperature", 1.0);
        body.putArray("messages").addObject().put("role", "user").put("content", question);
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    private static int feedback(int port, JsonNode body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/feedback"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    // --- topics ----------------------------------------------------------------------------------

    private static Optional<CheckpointEvent> latest(KafkaBroker broker, TopicCatalog topics) {
        try {
            return CheckpointLog.latest(broker.bootstrapServers(), topics.name(Topic.CHECKPOINTS), "flywheel", Duration.ofSeconds(10));
        } catch (Exception e) {
            return Optional.empty();
        }
    }

    private static int count(KafkaBroker broker, String topic) {
        return readRaw(broker, topic).size();
    }

    private static List<PreferenceRecord> read(KafkaBroker broker, String topic) {
        return readRaw(broker, topic).stream().map(r -> PreferenceRecord.CODEC.decode(r.value())).toList();
    }

    /** Every committed record of a topic, read to its end offsets. */
    private static List<ConsumerRecord<byte[], byte[]>> readRaw(KafkaBroker broker, String topic) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(broker.consumerProperties(KafkaBroker.uniqueName("reader")))) {
            var partitions = consumer.partitionsFor(topic).stream()
                    .map(p -> new org.apache.kafka.common.TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<org.apache.kafka.common.TopicPartition, Long> end = consumer.endOffsets(partitions);
            List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp)) && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    // --- helpers ---------------------------------------------------------------------------------

    /** Polls {@code probe} until {@code done} holds or the hop's deadline passes; returns the last value. */
    private static <T> T await(String what, Supplier<T> probe, java.util.function.Predicate<T> done) throws InterruptedException {
        long deadline = System.nanoTime() + HOP.toNanos();
        T value = probe.get();
        while (!done.test(value)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what + " (last: " + value + ")");
            }
            Thread.sleep(250);
            value = probe.get();
        }
        return value;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static Settings settings(Map<String, String> values) {
        Settings s = Settings.of(Map.of(), Map.of());
        for (var e : values.entrySet()) {
            s = s.with(e.getKey(), e.getValue());
        }
        return s;
    }
}
