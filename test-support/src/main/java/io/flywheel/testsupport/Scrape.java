package io.flywheel.testsupport;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.HashMap;
import java.util.Map;

/** One scrape of a service's /metrics, in the Prometheus text format. */
public final class Scrape {

    private static final HttpClient HTTP = HttpClient.newHttpClient();

    /** Samples by series ({@code name{labels}}); empty when the endpoint does not answer. */
    final Map<String, Double> series = new HashMap<>();

    private Scrape() {}

    public static Scrape of(int port) {
        Scrape s = new Scrape();
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString());
            for (String line : r.body().split("\n")) {
                if (!line.startsWith("#") && !line.isBlank()) {
                    int space = line.lastIndexOf(' ');
                    s.series.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
                }
            }
        } catch (IOException e) {
            // not up yet
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return s;
    }

    /** The sum over every series of a metric (all label values). */
    public double sum(String name) {
        return series.entrySet().stream()
                .filter(e -> e.getKey().equals(name) || e.getKey().startsWith(name + "{"))
                .mapToDouble(Map.Entry::getValue).sum();
    }

    /** Whether the series was exported at all. */
    public boolean has(String series) {
        return this.series.containsKey(series);
    }

    /** One series, e.g. {@code get("flywheel_trainer_gate_decisions_total{decision=\"reject\",reason=\"worse\"}")}; 0 if absent. */
    public double get(String series) {
        return this.series.getOrDefault(series, 0.0);
    }
}
