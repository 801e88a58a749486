package io.flywheel.core.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.prometheus.metrics.core.metrics.Counter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class MetricsServerTest {

    private static HttpResponse<String> get(int port, String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void servesMetricsAndHealthOverHttp() throws Exception {
        AtomicBoolean ready = new AtomicBoolean(false);
        try (MetricsServer server = MetricsServer.start("127.0.0.1", 0, ready::get)) {
            Counter docs = Counter.builder().name("flywheel_test_documents_total").help("documents seen").labelNames("source")
                    .register(server.registry());
            docs.labelValues("cli").inc(3);

            HttpResponse<String> metrics = get(server.port(), "/metrics");
            assertEquals(200, metrics.statusCode());
            assertTrue(metrics.body().contains("flywheel_test_documents_total{source=\"cli\"} 3.0"), metrics.body());
            assertTrue(metrics.body().contains("jvm_memory_used_bytes"), "JVM metrics are registered");

            assertEquals(200, get(server.port(), "/health/live").statusCode());
            assertEquals(503, get(server.port(), "/health/ready").statusCode());
            ready.set(true);
            assertEquals(200, get(server.port(), "/health/ready").statusCode());
            assertEquals(404, get(server.port(), "/nope").statusCode());
        }
    }
}
