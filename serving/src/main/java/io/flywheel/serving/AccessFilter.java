package io.flywheel.serving;

import io.vertx.core.http.HttpServerRequest;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.HttpHeaders;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;

/**
 * Who may call what, and how often: {@code Authorization: Bearer KEY} on {@code /v1} when API keys
 * are configured, the admin key on {@code /admin} when one is, and a per-key rate limit (a token
 * bucket of {@code rate-limit-per-minute}, refilled continuously) on {@code /v1}. Health and
 * metrics stay open for probes and scrapers. Errors are thrown as {@link ApiError}s.
 */
public class AccessFilter {

    private final List<byte[]> apiKeys;
    private final byte[] adminKey;
    private final int perMinute;
    private final Map<String, Bucket> buckets = new ConcurrentHashMap<>();

    AccessFilter(ServingConfig config) {
        this.apiKeys = config.apiKeys().orElse(List.of()).stream().filter(k -> !k.isBlank())
                .map(k -> k.strip().getBytes(StandardCharsets.UTF_8)).toList();
        this.adminKey = config.adminKey().filter(k -> !k.isBlank()).map(k -> k.strip().getBytes(StandardCharsets.UTF_8)).orElse(null);
        this.perMinute = config.rateLimitPerMinute();
    }

    @ServerRequestFilter
    public void check(ContainerRequestContext request, HttpServerRequest http) {
        String path = request.getUriInfo().getPath();
        if (path.startsWith("/admin")) {
            if (adminKey != null && !matches(bearer(request), List.of(adminKey))) {
                throw ApiError.unauthorized("the admin endpoints need the admin key: \"Authorization: Bearer ADMIN_KEY\"");
            }
            return;
        }
        if (!path.startsWith("/v1")) {
            return;
        }
        String key = bearer(request);
        if (!apiKeys.isEmpty()) {
            if (key == null) {
                throw ApiError.unauthorized("You didn't provide an API key: send the header \"Authorization: Bearer YOUR_KEY\"");
            }
            if (!matches(key, apiKeys)) {
                throw ApiError.unauthorized("Incorrect API key provided");
            }
        }
        if (perMinute > 0) {
            String client = key != null ? "key:" + key : "address:" + http.remoteAddress().host();
            Bucket bucket = buckets.computeIfAbsent(client, c -> new Bucket(perMinute));
            int retryAfter = bucket.take();
            if (retryAfter > 0) {
                throw ApiError.rateLimited(perMinute, retryAfter);
            }
        }
    }

    private static String bearer(ContainerRequestContext request) {
        String header = request.getHeaderString(HttpHeaders.AUTHORIZATION);
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        return header.substring(7).strip();
    }

    /** Compares against every key in constant time, so timing does not reveal a key's prefix. */
    private static boolean matches(String given, List<byte[]> keys) {
        if (given == null) {
            return false;
        }
        byte[] bytes = given.getBytes(StandardCharsets.UTF_8);
        boolean found = false;
        for (byte[] key : keys) {
            found |= MessageDigest.isEqual(key, bytes);
        }
        return found;
    }

    /** A token bucket holding up to a minute's requests, refilled at perMinute / 60 per second. */
    private static final class Bucket {
        private final int capacity;
        private double tokens;
        private long refilled = System.nanoTime();

        Bucket(int capacity) {
            this.capacity = capacity;
            this.tokens = capacity;
        }

        /** @return 0 when a request may go, else the seconds until one may */
        synchronized int take() {
            long now = System.nanoTime();
            tokens = Math.min(capacity, tokens + (now - refilled) / 60e9 * capacity);
            refilled = now;
            if (tokens >= 1) {
                tokens -= 1;
                return 0;
            }
            return (int) Math.ceil((1 - tokens) * 60.0 / capacity);
        }
    }
}
