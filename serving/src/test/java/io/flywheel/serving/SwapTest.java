package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static io.flywheel.serving.CompletionsTest.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.records.CheckpointEvent;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Hot swap against the running app: new checkpoints promoted on {@code checkpoints} while clients
 * send requests without pause; a checkpoint whose hash does not match; pin and unpin.
 */
@QuarkusTest
@WithTestResource(ServingResource.class)
class SwapTest {

    @TestHTTPResource("/")
    URI root;

    @BeforeEach
    void modelLoaded() throws Exception {
        CompletionsTest.awaitReady(root);
    }

    @Test
    void fiveSwapsUnderLoadFailNoRequestAndVersionsOnlyGoUp() throws Exception {
        long start = servedVersion();
        double swapsBefore = metric("flywheel_serving_swaps_total", null);
        AtomicBoolean stop = new AtomicBoolean();
        List<List<Long>> versions = new ArrayList<>();
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        List<Thread> clients = new ArrayList<>();
        for (int c = 0; c < 4; c++) {
            List<Long> seen = new ArrayList<>();
            versions.add(seen);
            boolean stream = c % 2 == 1;
            Thread t = new Thread(() -> {
                while (!stop.get()) {
                    try {
                        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                                .header("Authorization", "Bearer " + ServingResource.API_KEY).header("Content-Type", "application/json")
                                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"the cat\",\"max_tokens\":8"
                                        + (stream ? ",\"stream\":true}" : "}")))
                                .build(), HttpResponse.BodyHandlers.ofString());
                        if (r.statusCode() != 200 || (stream && !r.body().endsWith("data: [DONE]\n\n")) || r.body().contains("\"error\"")) {
                            failures.add(r.statusCode() + " " + r.body());
                        }
                        seen.add(Long.parseLong(r.headers().firstValue("X-Flywheel-Model-Version").orElse("-1")));
                    } catch (Exception e) {
                        failures.add(e.toString());
                    }
                }
            }, "client-" + c);
            clients.add(t);
            t.start();
        }
        try {
            for (long v = start + 1; v <= start + 5; v++) {
                ServingResource.publish(ServingResource.checkpoint(v, 100 + v));
                long target = v;
                awaitVersion(served -> served == target);
            }
        } finally {
            stop.set(true);
            for (Thread t : clients) {
                t.join(60_000);
            }
        }
        assertEquals(List.of(), failures, "no request failed during the swaps");
        int requests = 0;
        for (List<Long> seen : versions) {
            requests += seen.size();
            for (int i = 1; i < seen.size(); i++) {
                assertTrue(seen.get(i) >= seen.get(i - 1), "versions only go up for a client: " + seen);
            }
        }
        assertTrue(requests >= 20, "the clients kept the server busy: " + requests + " requests");
        assertTrue(versions.stream().flatMap(List::stream).anyMatch(v -> v > start), "answers came from the new checkpoints");
        assertEquals(swapsBefore + 5, metric("flywheel_serving_swaps_total", null));
    }

    @Test
    void aCheckpointWithAWrongHashIsRefusedAndTheServedVersionStays() throws Exception {
        long before = servedVersion();
        double failuresBefore = metric("flywheel_serving_swap_failures_total", "verify");
        CheckpointEvent good = ServingResource.checkpoint(before + 1, 7);
        CheckpointEvent forged = new CheckpointEvent(good.version(), good.uri(), "0".repeat(64), good.parent(), good.tokenizer(),
                good.metrics(), good.offsets());
        ServingResource.publish(forged);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (metric("flywheel_serving_swap_failures_total", "verify") < failuresBefore + 1) {
            assertTrue(System.nanoTime() < deadline, "the forged checkpoint was never refused");
            Thread.sleep(50);
        }
        assertEquals(before, servedVersion(), "still serving the version from before");
        // The genuine event for the same files is accepted.
        ServingResource.publish(good);
        awaitVersion(v -> v == good.version());
    }

    @Test
    void pinRollsBackAndUnpinReturnsToTheLatest() throws Exception {
        long latest = servedVersion();
        HttpResponse<String> anonymous = admin("/admin/models/pin", null, "{\"version\":1}");
        CompletionsTest.assertError(anonymous, 401, "invalid_api_key", null);
        CompletionsTest.assertError(admin("/admin/models/pin", ServingResource.ADMIN_KEY, "{\"version\":999}"),
                404, "checkpoint_unavailable", null);
        try {
            HttpResponse<String> pinned = admin("/admin/models/pin", ServingResource.ADMIN_KEY, "{\"version\":1}");
            assertEquals(200, pinned.statusCode(), pinned.body());
            assertEquals(1, servedVersion());
            assertTrue(JSON.readTree(get("/v1/models").body()).get("data").get(0).get("pinned").asBoolean());
        } finally {
            assertEquals(200, admin("/admin/models/unpin", ServingResource.ADMIN_KEY, "").statusCode());
        }
        awaitVersion(v -> v == latest);
    }

    // --- helpers ---------------------------------------------------------------------------------

    private long servedVersion() throws Exception {
        return JSON.readTree(get("/v1/models").body()).get("data").get(0).get("model_version").asLong();
    }

    private void awaitVersion(LongPredicate wanted) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!wanted.test(servedVersion())) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for a version; serving " + servedVersion());
            Thread.sleep(25);
        }
    }

    private HttpResponse<String> get(String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(root.resolve(path)).header("Authorization", "Bearer " + ServingResource.API_KEY).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> admin(String path, String key, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(root.resolve(path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A sample's value from /q/metrics (0 when absent), optionally the one with {@code reason="..."}. */
    private double metric(String name, String reason) throws Exception {
        String body = HTTP.send(HttpRequest.newBuilder(root.resolve("/q/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        Pattern p = Pattern.compile("^" + Pattern.quote(name) + "(\\{[^}]*})? ([0-9.eE+-]+)$", Pattern.MULTILINE);
        Matcher m = p.matcher(body);
        while (m.find()) {
            if (reason == null || (m.group(1) != null && m.group(1).contains("reason=\"" + reason + "\""))) {
                return Double.parseDouble(m.group(2));
            }
        }
        return 0;
    }
}
