package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static io.flywheel.serving.CompletionsTest.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;

/** {@code serving.quantize=int8}: the app starts with an int8 engine and answers as usual. */
@QuarkusTest
@WithTestResource(value = ServingResource.class, initArgs = @ResourceArg(name = "quantize", value = "int8"))
class QuantizedTest {

    @TestHTTPResource("/")
    URI root;

    @Test
    void anInt8EngineAnswers() throws Exception {
        CompletionsTest.awaitReady(root);
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                .header("Authorization", "Bearer " + ServingResource.API_KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"the cat\",\"max_tokens\":8,\"temperature\":0}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        JsonNode choice = JSON.readTree(r.body()).get("choices").get(0);
        assertFalse(choice.get("text").asText().isEmpty(), r.body());

        // The gauge is this app's (each app takes its gauges out of the shared test registry as it stops):
        // the matrices in a byte per weight, well under the float32 model's four bytes per parameter.
        String metrics = HTTP.send(HttpRequest.newBuilder(root.resolve("/q/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        double bytes = metrics.lines().filter(l -> l.startsWith("flywheel_serving_model_weight_bytes"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).findFirst().orElseThrow();
        long float32 = 4 * (ServingResource.config.parameterCount() + ServingResource.config.width() + 1);
        assertTrue(bytes > 0 && bytes < 0.75 * float32, bytes + " bytes of weights against " + float32 + " in float32");
    }
}
