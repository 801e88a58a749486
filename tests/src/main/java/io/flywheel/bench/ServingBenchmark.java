package io.flywheel.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.local.broker.BrokerProcess;
import io.flywheel.model.Gpt;
import io.flywheel.model.GptConfig;
import io.flywheel.model.ModelCheckpoint;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Serving's benchmarks, against the real app (its own jar as a child process, heap 1g, ND4J caps
 * 1g/2500m, one OpenMP thread) and a local broker, with Java's HTTP client:
 * <ol>
 *   <li>single-stream decode tokens/s for two model sizes, beside the memory-bandwidth bound
 *       (the bytes of weights read per token against this machine's measured copy bandwidth);</li>
 *   <li>throughput, p50/p99 latency and time to first token at 1, 4 and 16 concurrent clients;</li>
 *   <li>p99 latency and errors while a new checkpoint is promoted every 10 s, against none.</li>
 * </ol>
 * Argument: seconds per load level (default 30). Reads ../shared/data/tinyshakespeare.txt for the
 * tokenizer (vocabulary 1024); the weights are random, which does not change the cost of a token.
 */
public final class ServingBenchmark {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String MODEL = "bench";

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        Path jar = Path.of("..", "serving", "target", "quarkus-app", "quarkus-run.jar").toAbsolutePath().normalize();
        if (!Files.exists(jar)) {
            throw new IllegalStateException(jar + " is missing: run ./mvnw -B install -DskipTests first");
        }
        Path dir = Files.createTempDirectory("flywheel-serving-bench");
        Path corpus = Path.of(System.getProperty("bench.data", "../../shared/data")).resolve("tinyshakespeare.txt");
        BpeTrainer bpe = new BpeTrainer(PreTokenizer.GPT2, 1024, BpeTrainer.DEFAULT_SPECIALS, s -> {});
        bpe.add(Files.readAllBytes(corpus));
        Path tokenizerFile = dir.resolve("tokenizer.json");
        Files.write(tokenizerFile, bpe.train());
        Tokenizer tokenizer = TokenizerFiles.load(tokenizerFile.toString());
        CheckpointStore store = CheckpointStore.open(dir.resolve("checkpoints"));
        GptConfig small = new GptConfig(tokenizer.vocabSize(), 256, 4, 4, 128, 4, 0.0, true);
        GptConfig large = new GptConfig(tokenizer.vocabSize(), 256, 8, 8, 512, 4, 0.0, true);

        double bandwidth = io.flywheel.model.MemoryBandwidth.measure();
        System.out.printf(Locale.ROOT, "copy bandwidth (ND4J assign of 256 MB off-heap, best of 5): %.1f GB/s%n", bandwidth / 1e9);

        var options = new BrokerProcess.Options(dir.resolve("data"), "127.0.0.1", 29792, 29793, "512m", Duration.ofSeconds(90));
        try (BrokerProcess broker = BrokerProcess.start(options, TopicCatalog.defaults(), System.out);
             KafkaProducer<byte[], byte[]> producer = producer(broker.bootstrap())) {
            Promoter promoter = new Promoter(store, tokenizer, producer);
            promoter.promote(large, 1);
            int port = 29700;
            // The serving app inherits this environment: FLYWHEEL_SERVING_QUANTIZE=int8 measures int8 weights.
            ProcessBuilder builder = new ProcessBuilder("java", "-Xmx1g", "-XX:+UseSerialGC", "--add-modules", "jdk.incubator.vector",
                    "-Dorg.bytedeco.javacpp.maxbytes=1g", "-Dorg.bytedeco.javacpp.maxphysicalbytes=2500m", "-jar", jar.toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("serving.log").toFile());
            builder.environment().put("OMP_NUM_THREADS", "1");
            builder.environment().put("FLYWHEEL_KAFKA_BOOTSTRAP", broker.bootstrap());
            builder.environment().put("FLYWHEEL_SERVING_PORT", Integer.toString(port));
            builder.environment().put("FLYWHEEL_SERVING_MODEL_NAME", MODEL);
            builder.environment().put("FLYWHEEL_SERVING_TOKENIZER", tokenizerFile.toString());
            Process serving = builder.start();
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI base = URI.create("http://127.0.0.1:" + port);
            try {
                awaitVersion(http, base, 1, serving, dir.resolve("serving.log"));

                if (args.length > 1 && args[1].equals("slow")) {
                    promoter.promote(small, 2);
                    awaitVersion(http, base, 2, serving, dir.resolve("serving.log"));
                    slowClients(http, base, port, seconds);
                    return;
                }
                System.out.println();
                System.out.println("weights: " + System.getenv().getOrDefault("FLYWHEEL_SERVING_QUANTIZE", "none") + " (serving.quantize)");
                System.out.println("| model | parameters | weights | decode tokens/s (1 stream) | bandwidth bound | share of bound |");
                System.out.println("|---|---|---|---|---|---|");
                decode(http, base, large, bandwidth);
                promoter.promote(small, 2);
                awaitVersion(http, base, 2, serving, dir.resolve("serving.log"));
                decode(http, base, small, bandwidth);

                System.out.println();
                System.out.printf(Locale.ROOT, "load, model L4 d128, streamed completions of 32 tokens, %d s per level, "
                        + "max-running 16 (the default):%n", seconds);
                System.out.println("| clients | requests/s | tokens/s | p50 latency | p99 latency | p50 TTFT | p99 TTFT | errors |");
                System.out.println("|---|---|---|---|---|---|---|---|");
                for (int clients : List.of(1, 4, 16)) {
                    System.out.println(load(http, base, clients, seconds, null).row(clients));
                }

                System.out.println();
                System.out.println("swapping: 4 clients, a new checkpoint of the same size promoted every 10 s, against none:");
                System.out.println("| run | requests | p50 latency | p99 latency | p99 TTFT | errors | swaps |");
                System.out.println("|---|---|---|---|---|---|---|");
                Result calm = load(http, base, 4, Math.max(seconds, 60), null);
                System.out.println(calm.swapRow("no swaps", 0));
                AtomicInteger swaps = new AtomicInteger();
                Result swapping = load(http, base, 4, Math.max(seconds, 60), () -> {
                    promoter.promote(small, 3 + swaps.getAndIncrement());
                    return null;
                });
                System.out.println(swapping.swapRow("a swap every 10 s", swaps.get()));
                System.out.printf(Locale.ROOT, "p99 ratio (swapping / calm): %.2f%n", swapping.p99Latency() / calm.p99Latency());
            } finally {
                serving.toHandle().destroy();
                serving.waitFor();
            }
        }
    }

    /** Writes a random model of {@code config} as {@code version} and promotes it on the checkpoints topic. */
    private record Promoter(CheckpointStore store, Tokenizer tokenizer, KafkaProducer<byte[], byte[]> producer) {
        void promote(GptConfig config, long version) throws Exception {
            var stored = ModelCheckpoint.save(store, version, Gpt.initialize(config, version), null,
                    new ModelCheckpoint.State(tokenizer.id(), version, version == 1 ? null : version - 1, Map.of(), Map.of()));
            CheckpointEvent event = new CheckpointEvent(version, stored.folder().toUri().toString(), stored.sha256(),
                    version == 1 ? null : version - 1, tokenizer.id(), Map.of(), Map.of());
            producer.send(new ProducerRecord<>(TopicCatalog.defaults().name(Topic.CHECKPOINTS), MODEL.getBytes(StandardCharsets.UTF_8),
                    CheckpointEvent.CODEC.encode(event))).get();
        }
    }

    private static void decode(HttpClient http, URI base, GptConfig config, double bandwidth) throws Exception {
        String body = "{\"model\":\"" + MODEL + "\",\"prompt\":\"ROMEO:\",\"max_tokens\":200,\"temperature\":0}";
        double best = 0;
        for (int i = 0; i < 4; i++) {      // the first is a warm-up
            long start = System.nanoTime();
            HttpResponse<String> r = http.send(post(base, "/v1/completions", body), HttpResponse.BodyHandlers.ofString());
            double secs = (System.nanoTime() - start) / 1e9;
            int tokens = JSON.readTree(r.body()).get("usage").get("completion_tokens").asInt();
            if (i > 0) {
                best = Math.max(best, tokens / secs);
            }
        }
        double weightBytes = 4.0 * config.parameterCount();
        double bound = bandwidth / weightBytes;
        System.out.printf(Locale.ROOT, "| L%d d%d, context %d | %.2fM | %.1f MB | %.0f | %.0f | %.0f%% |%n", config.layers(), config.width(),
                config.contextLength(), config.parameterCount() / 1e6, weightBytes / 1e6, best, bound, 100 * best / bound);
    }

    /** Latencies and counts of one load level. */
    private record Result(int requests, int errors, long tokens, double seconds, List<Double> latencies, List<Double> ttfts) {
        double p(List<Double> values, double q) {
            if (values.isEmpty()) {
                return Double.NaN;
            }
            List<Double> sorted = new ArrayList<>(values);
            Collections.sort(sorted);
            return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(q * sorted.size()) - 1));
        }

        double p99Latency() {
            return p(latencies, 0.99);
        }

        String row(int clients) {
            return String.format(Locale.ROOT, "| %d | %.1f | %.0f | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %d |", clients, requests / seconds,
                    tokens / seconds, 1000 * p(latencies, 0.5), 1000 * p(latencies, 0.99), 1000 * p(ttfts, 0.5), 1000 * p(ttfts, 0.99), errors);
        }

        String swapRow(String name, int swaps) {
            return String.format(Locale.ROOT, "| %s | %d | %.0f ms | %.0f ms | %.0f ms | %d | %d |", name, requests, 1000 * p(latencies, 0.5),
                    1000 * p(latencies, 0.99), 1000 * p(ttfts, 0.99), errors, swaps);
        }

        String slowRow(String name, int refused) {
            return swapRow(name, refused);
        }
    }

    interface Action {
        Void run() throws Exception;
    }

    /** {@code clients} threads sending streamed completions without pause for {@code seconds}; {@code every10s} runs every 10 s. */
    private static Result load(HttpClient http, URI base, int clients, int seconds, Action every10s) throws Exception {
        String body = "{\"model\":\"" + MODEL + "\",\"prompt\":\"ROMEO:\",\"max_tokens\":32,\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}";
        List<Double> latencies = Collections.synchronizedList(new ArrayList<>());
        List<Double> ttfts = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger errors = new AtomicInteger();
        AtomicInteger tokens = new AtomicInteger();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            Thread t = new Thread(() -> {
                while (!stop.get()) {
                    long start = System.nanoTime();
                    try {
                        HttpResponse<java.util.stream.Stream<String>> r = http.send(post(base, "/v1/completions", body),
                                HttpResponse.BodyHandlers.ofLines());
                        if (r.statusCode() != 200) {
                            errors.incrementAndGet();
                            r.body().close();
                            continue;
                        }
                        double first = -1;
                        boolean done = false;
                        for (String line : (Iterable<String>) r.body()::iterator) {
                            if (!line.startsWith("data: ")) {
                                continue;
                            }
                            if (first < 0) {
                                first = (System.nanoTime() - start) / 1e9;
                            }
                            if (line.equals("data: [DONE]")) {
                                done = true;
                            } else {
                                JsonNode chunk = JSON.readTree(line.substring(6));
                                if (chunk.has("error")) {
                                    errors.incrementAndGet();
                                } else if (chunk.has("usage") && !chunk.get("usage").isNull()) {
                                    tokens.addAndGet(chunk.get("usage").get("completion_tokens").asInt());
                                }
                            }
                        }
                        if (!done) {
                            errors.incrementAndGet();
                            continue;
                        }
                        latencies.add((System.nanoTime() - start) / 1e9);
                        ttfts.add(first);
                    } catch (IOException | InterruptedException e) {
                        errors.incrementAndGet();
                    }
                }
            });
            threads.add(t);
            t.start();
        }
        long start = System.nanoTime();
        long next = start + 10_000_000_000L;
        while (System.nanoTime() - start < seconds * 1_000_000_000L) {
            Thread.sleep(100);
            if (every10s != null && System.nanoTime() >= next) {
                every10s.run();
                next += 10_000_000_000L;
            }
        }
        stop.set(true);
        for (Thread t : threads) {
            t.join();
        }
        double secs = (System.nanoTime() - start) / 1e9;
        return new Result(latencies.size(), errors.get(), tokens.get(), secs, latencies, ttfts);
    }

    /**
     * 4 clients' streamed completions, calm and then while 64 slow clients hold connections: each
     * declares a 200,000-byte body, sends 20 bytes and waits; when the server's body deadline
     * answers it (408) it connects and stalls again at once.
     */
    private static void slowClients(HttpClient http, URI base, int port, int seconds) throws Exception {
        System.out.println();
        System.out.printf(Locale.ROOT, "slow clients: 4 clients, L4 d128, streamed completions of 32 tokens, %d s each:%n", seconds);
        System.out.println("| run | requests | p50 latency | p99 latency | p99 TTFT | errors | slow connections refused (408) |");
        System.out.println("|---|---|---|---|---|---|---|");
        Result calm = load(http, base, 4, seconds, null);
        System.out.println(calm.slowRow("calm", 0));
        AtomicBoolean stalling = new AtomicBoolean(true);
        AtomicInteger timedOut = new AtomicInteger();
        List<Thread> slow = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            Thread t = new Thread(() -> {
                while (stalling.get()) {
                    try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                        s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                + "Content-Length: 200000\r\n\r\n{\"model\":\"" + MODEL + "\",").getBytes(StandardCharsets.UTF_8));
                        s.getOutputStream().flush();
                        s.setSoTimeout(1000);
                        byte[] buffer = new byte[4096];
                        StringBuilder answer = new StringBuilder();
                        while (stalling.get()) {
                            try {
                                int n = s.getInputStream().read(buffer);
                                if (n < 0) {
                                    break;
                                }
                                answer.append(new String(buffer, 0, n, StandardCharsets.ISO_8859_1));
                            } catch (java.net.SocketTimeoutException stillWaiting) {
                                // holding the connection
                            }
                        }
                        if (answer.toString().startsWith("HTTP/1.1 408")) {
                            timedOut.incrementAndGet();
                        }
                    } catch (IOException e) {
                        // connect again
                    }
                }
            }, "slow-" + i);
            t.setDaemon(true);
            t.start();
            slow.add(t);
        }
        Thread.sleep(1000);
        Result stalled = load(http, base, 4, seconds, null);
        stalling.set(false);
        for (Thread t : slow) {
            t.join(5000);
        }
        System.out.println(stalled.slowRow("64 slow clients holding connections", timedOut.get()));
        System.out.printf(Locale.ROOT, "p99 ratio (slow clients / calm): %.2f%n", stalled.p99Latency() / calm.p99Latency());
    }

    private static HttpRequest post(URI base, String path, String body) {
        return HttpRequest.newBuilder(base.resolve(path)).header("Content-Type", "application/json")
                .timeout(Duration.ofMinutes(2)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private static void awaitVersion(HttpClient http, URI base, long version, Process serving, Path log) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (System.nanoTime() < deadline) {
            if (!serving.isAlive()) {
                throw new IllegalStateException("serving exited: " + Files.readString(log));
            }
            try {
                var r = http.send(HttpRequest.newBuilder(base.resolve("/v1/models")).build(), HttpResponse.BodyHandlers.ofString());
                JsonNode data = JSON.readTree(r.body()).path("data");
                if (r.statusCode() == 200 && data.size() > 0 && data.get(0).get("model_version").asLong() == version) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("serving did not load version " + version + " within 120 s: " + Files.readString(log));
    }

    private static KafkaProducer<byte[], byte[]> producer(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /**
     * Bytes per second one core copies between two 256 MB off-heap ND4J arrays (best of 5): where
     * the engine's weights live. (A heap {@code System.arraycopy} measured 4.3 GB/s under SerialGC
     * and 13.4 under G1 on the same machine: the JVM's heap layout, not the memory, differs.)
     */
}
