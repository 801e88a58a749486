package io.flywheel.core.metrics;

import com.sun.net.httpserver.HttpExchange;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.BooleanSupplier;

/**
 * Metrics and health for the services that are not Quarkus apps (stream apps, trainer, broker
 * launcher): one Prometheus registry with the JVM metrics, served over HTTP at
 * <ul>
 *   <li>{@code /metrics}: the Prometheus text format (and OpenMetrics when asked);</li>
 *   <li>{@code /health/live}: 200 while the process runs;</li>
 *   <li>{@code /health/ready}: 200 when the service's own readiness check says so, else 503;</li>
 * </ul>
 * the same paths Kubernetes probes and Prometheus scrape configs use for every service.
 */
public final class MetricsServer implements AutoCloseable {

    private final PrometheusRegistry registry;
    private final HTTPServer server;

    private MetricsServer(PrometheusRegistry registry, HTTPServer server) {
        this.registry = registry;
        this.server = server;
    }

    /**
     * Starts the server.
     *
     * @param host  address to bind ({@code 127.0.0.1} locally, {@code 0.0.0.0} in a container)
     * @param port  port to bind, 0 for any free one
     * @param ready readiness check, called on each probe
     */
    public static MetricsServer start(String host, int port, BooleanSupplier ready) throws IOException {
        PrometheusRegistry registry = new PrometheusRegistry();
        JvmMetrics.builder().register(registry);
        HTTPServer server = HTTPServer.builder()
                .hostname(host)
                .port(port)
                .registry(registry)
                .registerHealthHandler(false)
                .defaultHandler(exchange -> health(exchange, ready))
                .buildAndStart();
        return new MetricsServer(registry, server);
    }

    private static void health(HttpExchange exchange, BooleanSupplier ready) throws IOException {
        try (exchange) {
            String path = exchange.getRequestURI().getPath();
            int status;
            String body;
            switch (path) {
                case "/health/live" -> {
                    status = 200;
                    body = "{\"status\":\"UP\"}";
                }
                case "/health/ready", "/health" -> {
                    boolean up = ready.getAsBoolean();
                    status = up ? 200 : 503;
                    body = up ? "{\"status\":\"UP\"}" : "{\"status\":\"DOWN\"}";
                }
                default -> {
                    status = 404;
                    body = "{\"error\":\"not found: use /metrics, /health/live or /health/ready\"}";
                }
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    /** The registry the service adds its own counters, gauges and histograms to. */
    public PrometheusRegistry registry() {
        return registry;
    }

    public int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        server.close();
    }
}
