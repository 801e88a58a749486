package io.flywheel.local.up;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/** One read of a service's Prometheus text endpoint, for the status line; empty when it is down. */
final class Scrape {

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();

    private final Map<String, Double> series = new HashMap<>();

    static Scrape of(String url) {
        Scrape s = new Scrape();
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() == 200) {
                for (String line : r.body().split("\n")) {
                    int space = line.lastIndexOf(' ');
                    if (!line.startsWith("#") && space > 0) {
                        try {
                            s.series.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
                        } catch (NumberFormatException ignored) {
                            // a timestamped or odd line: not one the status line uses
                        }
                    }
                }
            }
        } catch (java.io.IOException e) {
            // not up (yet): the status line shows what it has
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return s;
    }

    /** The sum over every series of a metric (all label values); NaN when absent. */
    double sum(String name) {
        double total = 0;
        boolean found = false;
        for (var e : series.entrySet()) {
            if (e.getKey().equals(name) || e.getKey().startsWith(name + "{")) {
                total += e.getValue();
                found = true;
            }
        }
        return found ? total : Double.NaN;
    }

    /** One series, exactly as exported; NaN when absent. */
    double get(String seriesName) {
        return series.getOrDefault(seriesName, Double.NaN);
    }

    /** Whether an HTTP GET answers 200 (a health endpoint). */
    static boolean ok(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        } catch (java.io.IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
