package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A server with one generation slot, no queue and 3 requests per minute per key: 429 and 503. */
@QuarkusTest
@WithTestResource(value = ServingResource.class, initArgs = {
        @ResourceArg(name = "max-running", value = "1"),
        @ResourceArg(name = "max-waiting", value = "0"),
        @ResourceArg(name = "rate-limit-per-minute", value = "3")})
class LimitsTest {

    @TestHTTPResource("/")
    URI root;

    @BeforeEach
    void modelLoaded() throws Exception {
        CompletionsTest.awaitReady(root);
    }

    @Test
    void theFourthRequestOfAMinuteIs429WithRetryAfter() throws Exception {
        for (int i = 0; i < 3; i++) {
            assertEquals(200, models("k12").statusCode());
        }
        HttpResponse<String> limited = models("k12");
        CompletionsTest.assertError(limited, 429, "rate_limit_exceeded", null);
        assertTrue(Integer.parseInt(limited.headers().firstValue("Retry-After").orElseThrow()) >= 1);
        assertEquals(200, models("k11").statusCode(), "another key has its own budget");
    }

    @Test
    void requestsBeyondTheSlotAndQueueAre503AndTheRestSucceed() throws Exception {
        CountDownLatch go = new CountDownLatch(1);
        List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
        for (int k = 1; k <= 10; k++) {
            String key = "k" + k;
            answers.add(CompletableFuture.supplyAsync(() -> {
                try {
                    go.await();
                    return HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                            .header("Authorization", "Bearer " + key).header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"the\",\"max_tokens\":60}"))
                            .build(), HttpResponse.BodyHandlers.ofString());
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }));
        }
        go.countDown();
        int ok = 0;
        int overloaded = 0;
        for (CompletableFuture<HttpResponse<String>> a : answers) {
            HttpResponse<String> r = a.get();
            if (r.statusCode() == 200) {
                ok++;
            } else {
                CompletionsTest.assertError(r, 503, "server_overloaded", null);
                overloaded++;
            }
        }
        assertTrue(ok >= 1, "the first request is served");
        assertTrue(overloaded >= 1, "ten at once do not fit one slot and no queue");
        assertEquals(10, ok + overloaded);
    }

    private HttpResponse<String> models(String key) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/models")).header("Authorization", "Bearer " + key).build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
