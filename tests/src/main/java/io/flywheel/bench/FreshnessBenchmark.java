package io.flywheel.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.config.Settings;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.records.RawText;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.streams.StreamsApp;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.local.Flywheel;
import io.flywheel.local.broker.BrokerProcess;
import io.flywheel.local.up.DemoCorpus;
import io.flywheel.tokenizerstream.StreamConfig;
import io.flywheel.tokenizerstream.TokenizerStream;
import io.flywheel.trainer.Trainer;
import io.flywheel.trainer.TrainerConfig;
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
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Freshness: seconds from a document's publish to the first served checkpoint that trained on it,
 * with the loop as {@code ./flywheel up} runs it (the default model, a checkpoint every 20 s): a
 * broker child process, the tokenizer stream and the trainer in this JVM, serving as a child
 * process. Documents of the demo corpus arrive at a steady rate the trainer keeps up with; every
 * {@code probe-seconds} one of them is a probe. A probe is trained when the trainer's trace shows
 * the slice holding its closing {@code <|endoftext|>}; it is served when {@code /v1/models} first
 * reports a promoted version whose checkpoint step is at or after that step.
 *
 * <p>Arguments: {@code [minutes 6] [docs-per-second 2] [probe-seconds 10] [checkpoint-seconds 20]}.
 */
public final class FreshnessBenchmark {

    private static final ObjectMapper JSON = new ObjectMapper();

    record Placed(int partition, long offset, int tokens, Split split) {}

    public static void main(String[] args) throws Exception {
        double minutes = args.length > 0 ? Double.parseDouble(args[0]) : 6;
        double rate = args.length > 1 ? Double.parseDouble(args[1]) : 2;
        int probeSeconds = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        int checkpointSeconds = args.length > 3 ? Integer.parseInt(args[3]) : 20;
        Path dir = Files.createTempDirectory("flywheel-freshness");
        Path corpus = DemoCorpus.extract(dir.resolve("europarl-en.txt"));
        List<String> docs = Files.readAllLines(corpus, StandardCharsets.UTF_8);
        Path tokenizerFile = dir.resolve("tokenizer.json");
        if (Flywheel.run("tokenizer", "train", "--vocab-size", "4096", "--out", tokenizerFile.toString(), corpus.toString()) != 0) {
            throw new IllegalStateException("tokenizer training failed");
        }
        Tokenizer tokenizer = TokenizerFiles.load(tokenizerFile.toString());
        TopicCatalog topics = TopicCatalog.defaults();

        var options = new BrokerProcess.Options(dir.resolve("data"), "127.0.0.1", 29792, 29793, "512m", Duration.ofSeconds(90));
        try (BrokerProcess broker = BrokerProcess.start(options, topics, System.out)) {
            String bootstrap = broker.bootstrap();
            Settings streamSettings = Settings.of(Map.of(), Map.of()).with("kafka.bootstrap", bootstrap)
                    .with("stream.state-dir", dir.resolve("streams")).with("stream.metrics.port", 0)
                    .with("stream.validation-share", 0.05);
            Path trace = dir.resolve("trace.txt");
            Settings trainerSettings = Settings.of(Map.of(), Map.of()).with("kafka.bootstrap", bootstrap)
                    .with("trainer.tokenizer", tokenizerFile).with("trainer.checkpoint-dir", dir.resolve("checkpoints"))
                    .with("trainer.metrics.port", 0).with("trainer.trace", trace)
                    .with("checkpoint.every-seconds", checkpointSeconds);
            int port = 28000;
            Process serving = startServing(port, bootstrap, tokenizerFile, dir.resolve("serving.log"));
            Map<String, Placed> placed = new ConcurrentHashMap<>();
            Map<Long, Long> checkpointStep = new ConcurrentHashMap<>();
            TreeMap<Long, Long> firstServedAt = new TreeMap<>();      // version -> first time serving reported it
            try (StreamsApp stream = TokenizerStream.start(StreamConfig.from(streamSettings), tokenizer, Map.of())) {
                Trainer trainer = Trainer.start(TrainerConfig.from(trainerSettings), tokenizer);
                Thread training = new Thread(trainer::run, "trainer");
                training.start();
                Thread tokensReader = reader(bootstrap, topics.name(Topic.TOKENS), r -> {
                    TokenRecord t = TokenRecord.CODEC.decode(r.value());
                    placed.put(new String(r.key(), StandardCharsets.UTF_8), new Placed(r.partition(), r.offset(), t.ids().length, t.split()));
                });
                Thread checkpointsReader = reader(bootstrap, topics.name(Topic.CHECKPOINTS), r -> {
                    CheckpointEvent e = CheckpointEvent.CODEC.decode(r.value());
                    try {
                        long step = JSON.readTree(Path.of(URI.create(e.uri())).resolve("manifest.json").toFile()).path("step").asLong();
                        checkpointStep.put(e.version(), step);
                    } catch (java.io.IOException ex) {
                        throw new java.io.UncheckedIOException(ex);
                    }
                });
                Thread servedPoller = new Thread(() -> pollServed(port, firstServedAt), "served-poller");
                servedPoller.setDaemon(true);
                servedPoller.start();

                Map<String, Long> probes = new TreeMap<>();
                Properties p = new Properties();
                p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                p.put(ProducerConfig.ACKS_CONFIG, "all");
                long start = System.nanoTime();
                long lastProbe = 0;
                int i = 0;
                try (var producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
                    while ((System.nanoTime() - start) / 60e9 < minutes) {
                        String id = "doc-" + i;
                        RawText doc = new RawText(id, "freshness", docs.get(i % docs.size()) + " (" + i + ")", System.currentTimeMillis(), Map.of());
                        producer.send(new ProducerRecord<>(topics.name(Topic.TEXT_RAW), id.getBytes(StandardCharsets.UTF_8), RawText.CODEC.encode(doc))).get();
                        long now = System.currentTimeMillis();
                        // Probes after a minute of warm-up: the first checkpoints include the JIT's and the broker's start.
                        if ((System.nanoTime() - start) / 1e9 > 60 && now - lastProbe >= probeSeconds * 1000L) {
                            probes.put(id, now);
                            lastProbe = now;
                        }
                        i++;
                        Thread.sleep((long) (1000 / rate));
                    }
                }
                Thread.sleep(Duration.ofSeconds(2L * checkpointSeconds + 20).toMillis());   // let the last probes land
                trainer.requestStop();
                trainer.awaitStop(Duration.ofMinutes(2));
                trainer.close();
                tokensReader.interrupt();
                checkpointsReader.interrupt();

                Map<String, Long> trainedStep = trainedSteps(trace, placed);
                System.out.printf(Locale.ROOT, "sent %d documents at %.1f/s; %d checkpoints promoted; served versions %s%n",
                        i, rate, checkpointStep.size(), firstServedAt.keySet());
                System.out.println("| probe | split | published | trained at step | first served version | seconds to served |");
                System.out.println("|---|---|---|---|---|---|");
                List<Double> seconds = new ArrayList<>();
                for (var e : probes.entrySet()) {
                    Placed at = placed.get(e.getKey());
                    Long step = trainedStep.get(e.getKey());
                    if (at == null || at.split() != Split.TRAIN || step == null) {
                        System.out.printf(Locale.ROOT, "| %s | %s | | not trained in the run | | |%n", e.getKey(), at == null ? "?" : at.split());
                        continue;
                    }
                    Long version = checkpointStep.entrySet().stream().filter(c -> c.getValue() >= step)
                            .map(Map.Entry::getKey).min(Long::compare).orElse(null);
                    Long served = version == null ? null : firstServedAt.entrySet().stream().filter(s -> s.getKey() >= version)
                            .map(Map.Entry::getValue).min(Long::compare).orElse(null);
                    if (served == null) {
                        System.out.printf(Locale.ROOT, "| %s | train | | %d | not served in the run | |%n", e.getKey(), step);
                        continue;
                    }
                    double s = (served - e.getValue()) / 1000.0;
                    seconds.add(s);
                    System.out.printf(Locale.ROOT, "| %s | train | +%.0f s | %d | v%d | %.1f |%n", e.getKey(),
                            (e.getValue() - probes.values().iterator().next()) / 1000.0, step, version, s);
                }
                seconds.sort(Double::compare);
                if (!seconds.isEmpty()) {
                    System.out.printf(Locale.ROOT, "freshness over %d probes: median %.1f s, p90 %.1f s, max %.1f s%n", seconds.size(),
                            seconds.get(seconds.size() / 2), seconds.get((int) Math.min(seconds.size() - 1, Math.ceil(seconds.size() * 0.9) - 1)),
                            seconds.get(seconds.size() - 1));
                }
            } finally {
                serving.destroy();
                serving.waitFor();
            }
        }
    }

    /** Probe id -> the step whose slice holds the record's closing end-of-text (index tokens). */
    private static Map<String, Long> trainedSteps(Path trace, Map<String, Placed> placed) throws java.io.IOException {
        Map<String, String> byPosition = new HashMap<>();
        placed.forEach((id, at) -> byPosition.put(at.partition() + "@" + at.offset(), id));
        Map<String, Long> out = new HashMap<>();
        for (String line : Files.readAllLines(trace)) {
            String[] f = line.trim().split(" ");
            String id = byPosition.get(f[1] + "@" + f[2]);
            if (id != null && Integer.parseInt(f[4]) == placed.get(id).tokens() + 1) {
                out.put(id, Long.parseLong(f[0]));
            }
        }
        return out;
    }

    private static Thread reader(String bootstrap, String topic, java.util.function.Consumer<ConsumerRecord<byte[], byte[]>> each) {
        Thread t = new Thread(() -> {
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            try (var consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                var partitions = consumer.partitionsFor(topic).stream()
                        .map(i -> new org.apache.kafka.common.TopicPartition(topic, i.partition())).toList();
                consumer.assign(partitions);
                consumer.seekToBeginning(partitions);
                while (!Thread.currentThread().isInterrupted()) {
                    consumer.poll(Duration.ofMillis(200)).forEach(each);
                }
            } catch (org.apache.kafka.common.errors.InterruptException e) {
                // stopped
            }
        }, "reader-" + topic);
        t.setDaemon(true);
        t.start();
        return t;
    }

    private static void pollServed(int port, TreeMap<Long, Long> firstServedAt) {
        HttpClient http = HttpClient.newHttpClient();
        while (true) {
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/models")).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    long v = JSON.readTree(r.body()).path("data").path(0).path("model_version").asLong(-1);
                    synchronized (firstServedAt) {
                        firstServedAt.putIfAbsent(v, System.currentTimeMillis());
                    }
                }
                Thread.sleep(200);
            } catch (java.io.IOException e) {
                // not up yet
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private static Process startServing(int port, String bootstrap, Path tokenizer, Path log) throws java.io.IOException {
        Path jar = Path.of("..", "serving", "target", "quarkus-app", "quarkus-run.jar").toAbsolutePath().normalize();
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "-XX:+UseSerialGC", "--add-modules", "jdk.incubator.vector", "-Dorg.bytedeco.javacpp.maxbytes=1g", "-Dorg.bytedeco.javacpp.maxphysicalbytes=2g", "-jar", jar.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().putAll(Map.of("OMP_NUM_THREADS", "1", "FLYWHEEL_KAFKA_BOOTSTRAP", bootstrap,
                "FLYWHEEL_SERVING_TOKENIZER", tokenizer.toString(), "FLYWHEEL_SERVING_PORT", Integer.toString(port)));
        return pb.start();
    }
}
