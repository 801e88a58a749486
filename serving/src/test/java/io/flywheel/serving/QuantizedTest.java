package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static io.flywheel.serving.CompletionsTest.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import io.flywheel.model.Decoder;
import io.flywheel.model.Gpt;
import io.flywheel.model.Quantization;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;

/** {@code serving.quantize=int8}: the served engine holds int8 weights and answers as usual. */
@QuarkusTest
@WithTestResource(value = ServingResource.class, initArgs = @ResourceArg(name = "quantize", value = "int8"))
class QuantizedTest {

    @TestHTTPResource("/")
    URI root;

    @Test
    void anInt8EngineAnswersAndHoldsTheInt8Bytes() throws Exception {
        CompletionsTest.awaitReady(root);
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                .header("Authorization", "Bearer " + ServingResource.API_KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"the cat\",\"max_tokens\":8,\"temperature\":0}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        JsonNode choice = JSON.readTree(r.body()).get("choices").get(0);
        assertFalse(choice.get("text").asText().isEmpty(), r.body());

        // Every version of the test model has the same shape, so the same bytes; float32 would hold about 3x more.
        long expected;
        try (Decoder int8 = Decoder.copyOf(ServingResource.config, Gpt.initialize(ServingResource.config, 1).parameters(),
                Quantization.INT8)) {
            expected = int8.weightBytes();
        }
        String metrics = HTTP.send(HttpRequest.newBuilder(root.resolve("/q/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        double served = metrics.lines().filter(l -> l.startsWith("flywheel_serving_model_weight_bytes "))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).findFirst()
                .orElseThrow(() -> new AssertionError("no flywheel_serving_model_weight_bytes in /q/metrics"));
        assertEquals(expected, served, 0.5);
    }
}
