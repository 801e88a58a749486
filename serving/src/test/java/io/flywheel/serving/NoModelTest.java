package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;

/** A model that was never promoted: not ready, and requests are 503 until a checkpoint arrives. */
@QuarkusTest
@WithTestResource(value = ServingResource.class, initArgs = @ResourceArg(name = "model-name", value = "never-promoted"))
class NoModelTest {

    @TestHTTPResource("/")
    URI root;

    @Test
    void withoutAModelReadinessIsDownAndCompletionsAre503() throws Exception {
        assertEquals(503, HTTP.send(HttpRequest.newBuilder(root.resolve("/q/health/ready")).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode());
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                .header("Authorization", "Bearer " + ServingResource.API_KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"never-promoted\",\"prompt\":\"the\"}")).build(),
                HttpResponse.BodyHandlers.ofString());
        CompletionsTest.assertError(r, 503, "model_not_loaded", null);
        assertEquals("5", r.headers().firstValue("Retry-After").orElseThrow());
    }
}
