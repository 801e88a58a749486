package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static io.flywheel.serving.CompletionsTest.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import io.flywheel.model.Blas;
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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The engine's settings: {@code serving.kv-cache-dtype=bfloat16} starts a bfloat16 cache, and
 * {@code serving.decode-threads=2} splits its steps' multiplies, answering several requests at once;
 * {@code serving.blas-threads} is what OpenBLAS is given (the build runs tests with
 * {@code OMP_NUM_THREADS=1}, so 2 shows the setting at work).
 */
@QuarkusTest
@WithTestResource(value = ServingResource.class, initArgs = {@ResourceArg(name = "kv-cache-dtype", value = "bfloat16"),
    @ResourceArg(name = "blas-threads", value = "2"), @ResourceArg(name = "decode-threads", value = "2")})
class EngineSettingsTest {

    @TestHTTPResource("/")
    URI root;

    @Test
    void openBlasGetsTheThreadsConfigured() throws Exception {
        CompletionsTest.awaitReady(root);      // the engine's registry has started
        assertEquals(2, Blas.threads());
    }

    @Test
    void aBfloat16CacheServesCompletionsThatShareDecodeSteps() throws Exception {
        CompletionsTest.awaitReady(root);
        List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
        for (String prompt : List.of("the cat", "once upon a time there", "a")) {
            answers.add(HTTP.sendAsync(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                    .header("Authorization", "Bearer " + ServingResource.API_KEY).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"" + prompt
                            + "\",\"max_tokens\":12,\"temperature\":0}"))
                    .build(), HttpResponse.BodyHandlers.ofString()));
        }
        for (CompletableFuture<HttpResponse<String>> answer : answers) {
            HttpResponse<String> r = answer.get(60, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.body());
            JsonNode body = JSON.readTree(r.body());
            JsonNode choice = body.get("choices").get(0);
            int tokens = body.get("usage").get("completion_tokens").asInt();
            // Twelve tokens, or fewer where the model chose to end.
            assertEquals(tokens == 12 ? "length" : "stop", choice.get("finish_reason").asText(), r.body());
            assertFalse(tokens == 12 && choice.get("text").asText().isEmpty(), r.body());
        }
    }
}
