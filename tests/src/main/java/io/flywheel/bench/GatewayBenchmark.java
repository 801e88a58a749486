package io.flywheel.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.local.broker.BrokerProcess;
import java.io.ByteArrayOutputStream;
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
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The HTTP gateway's throughput into the local broker: its own jar as a child process (as in
 * production), NDJSON batches of about 1 MB of Europarl sent by 1 and then 4 concurrent clients,
 * each request answered only once the broker has every document. Arguments: corpus megabytes
 * (default 20). Needs {@code ./mvnw install -DskipTests} first (it runs the built gateway jar).
 */
public final class GatewayBenchmark {

    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        int megabytes = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        byte[] corpus = TokenizerBenchmark.europarl(megabytes * 1024 * 1024);
        List<String> docs = StreamBenchmark.documents(new String(corpus, StandardCharsets.UTF_8), 10);
        Path jar = Path.of("..", "ingest-gateway", "target", "quarkus-app", "quarkus-run.jar").toAbsolutePath().normalize();
        if (!Files.exists(jar)) {
            throw new IllegalStateException(jar + " is missing: run ./mvnw -B install -DskipTests first");
        }

        Path dir = Files.createTempDirectory("flywheel-gateway-bench");
        var options = new BrokerProcess.Options(dir.resolve("data"), "127.0.0.1", 29692, 29693, "512m", Duration.ofSeconds(90));
        try (BrokerProcess broker = BrokerProcess.start(options, TopicCatalog.defaults(), System.out)) {
            int port = 29690;
            // Configured through the environment, as a k8s pod would be.
            ProcessBuilder builder = new ProcessBuilder("java", "-Xmx256m", "-XX:+UseSerialGC", "-jar", jar.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(dir.resolve("gateway.log").toFile());
            builder.environment().put("FLYWHEEL_KAFKA_BOOTSTRAP", broker.bootstrap());
            builder.environment().put("FLYWHEEL_GATEWAY_PORT", Integer.toString(port));
            Process gateway = builder.start();
            try {
                System.out.printf(Locale.ROOT, "gateway on port %d, broker %s%n", port, broker.bootstrap());
                HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
                URI base = URI.create("http://127.0.0.1:" + port);
                awaitReady(http, base, gateway, dir.resolve("gateway.log"));
                for (int round = 0; round < 2; round++) {
                    for (int clients : List.of(1, 4)) {
                        List<byte[]> batches = batches(docs, round + "-" + clients, 1_000_000);
                        long bytes = batches.stream().mapToLong(b -> b.length).sum();
                        double secs = send(http, base.resolve("/v1/documents"), batches, clients);
                        System.out.printf(Locale.ROOT, "%s, %d client(s): %.1f MB/s, %.0f documents/s (%d batches of ~1 MB)%n",
                                round == 0 ? "cold" : "warm", clients, bytes / 1e6 / secs, docs.size() / secs, batches.size());
                    }
                }
            } finally {
                gateway.toHandle().destroy();
                gateway.waitFor();
            }
        }
    }

    private static void awaitReady(HttpClient http, URI base, Process gateway, Path log) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            if (!gateway.isAlive()) {
                throw new IllegalStateException("the gateway exited: " + Files.readString(log));
            }
            try {
                var r = http.send(HttpRequest.newBuilder(base.resolve("/q/health/ready")).build(), HttpResponse.BodyHandlers.discarding());
                if (r.statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("the gateway was not ready within 60 s: " + Files.readString(log));
    }

    /** NDJSON batches of about {@code size} bytes; {@code tag} makes every round's documents new. */
    private static List<byte[]> batches(List<String> docs, String tag, int size) throws IOException {
        List<byte[]> batches = new ArrayList<>();
        ByteArrayOutputStream batch = new ByteArrayOutputStream();
        for (int i = 0; i < docs.size(); i++) {
            batch.write(JSON.writeValueAsBytes(Map.of("text", docs.get(i), "id", tag + "-" + i)));
            batch.write('\n');
            if (batch.size() >= size) {
                batches.add(batch.toByteArray());
                batch.reset();
            }
        }
        if (batch.size() > 0) {
            batches.add(batch.toByteArray());
        }
        return batches;
    }

    private static double send(HttpClient http, URI uri, List<byte[]> batches, int clients) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        long start = System.nanoTime();
        List<Future<Integer>> results = new ArrayList<>();
        for (byte[] batch : batches) {
            results.add(pool.submit(() -> http.send(HttpRequest.newBuilder(uri)
                            .header("Content-Type", "application/x-ndjson")
                            .POST(HttpRequest.BodyPublishers.ofByteArray(batch)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode()));
        }
        for (Future<Integer> result : results) {
            if (result.get() != 202) {
                throw new IllegalStateException("a batch was answered " + result.get());
            }
        }
        double secs = (System.nanoTime() - start) / 1e9;
        pool.shutdown();
        return secs;
    }
}
