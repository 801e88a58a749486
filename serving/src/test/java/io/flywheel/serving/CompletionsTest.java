package io.flywheel.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.records.Feedback;
import io.flywheel.core.records.ResponseRecord;
import io.flywheel.core.topics.Topic;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The OpenAI-compatible API, running for real (Quarkus on a random port, a real broker, a real
 * checkpoint), through Java's HTTP client.
 */
@QuarkusTest
@WithTestResource(ServingResource.class)
class CompletionsTest {

    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();

    @TestHTTPResource("/")
    URI root;

    /** The app answers 503 until its follower has loaded the promoted checkpoint: wait for readiness. */
    @BeforeEach
    void modelLoaded() throws Exception {
        awaitReady(root);
    }

    static void awaitReady(URI root) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (HTTP.send(HttpRequest.newBuilder(root.resolve("/q/health/ready")).build(), HttpResponse.BodyHandlers.discarding())
                .statusCode() != 200) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("serving never became ready");
            }
            Thread.sleep(50);
        }
    }

    // --- completions and chat --------------------------------------------------------------------

    @Test
    void aCompletionAnswersInOpenAisShapeAndNamesItsVersion() throws Exception {
        HttpResponse<String> r = post("/v1/completions", ServingResource.API_KEY,
                "{\"model\":\"test-model\",\"prompt\":\"the cat\",\"max_tokens\":5,\"temperature\":0}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode body = JSON.readTree(r.body());
        assertTrue(body.get("id").asText().startsWith("cmpl-"));
        assertEquals("text_completion", body.get("object").asText());
        assertEquals("test-model", body.get("model").asText());
        long version = body.get("model_version").asLong();
        assertTrue(version >= 1);
        assertEquals(Long.toString(version), r.headers().firstValue("X-Flywheel-Model-Version").orElseThrow());
        JsonNode choice = body.get("choices").get(0);
        assertTrue(choice.get("text").isTextual());
        assertTrue(List.of("stop", "length").contains(choice.get("finish_reason").asText()));
        JsonNode usage = body.get("usage");
        int promptTokens = ServingResource.tokenizer.encode("the cat").length + 1;   // <|endoftext|> first
        assertEquals(promptTokens, usage.get("prompt_tokens").asInt());
        assertTrue(usage.get("completion_tokens").asInt() >= 1 && usage.get("completion_tokens").asInt() <= 5);
        assertEquals(usage.get("prompt_tokens").asInt() + usage.get("completion_tokens").asInt(), usage.get("total_tokens").asInt());
    }

    @Test
    void chatAnswersAsTheAssistantAndNChoicesComeBack() throws Exception {
        HttpResponse<String> r = post("/v1/chat/completions", ServingResource.API_KEY, """
                {"model":"test-model","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"the dog"}],
                 "max_tokens":4,"n":2,"seed":7,"user":"u-1"}""");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode body = JSON.readTree(r.body());
        assertTrue(body.get("id").asText().startsWith("chatcmpl-"));
        assertEquals("chat.completion", body.get("object").asText());
        assertEquals(2, body.get("choices").size());
        for (int i = 0; i < 2; i++) {
            JsonNode choice = body.get("choices").get(i);
            assertEquals(i, choice.get("index").asInt());
            assertEquals("assistant", choice.get("message").get("role").asText());
            assertTrue(choice.get("message").get("content").isTextual());
        }
    }

    @Test
    void aStreamedChatArrivesChunkByChunkAndEqualsTheWholeAnswer() throws Exception {
        String request = "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"a bird\"}],"
                + "\"max_tokens\":12,\"temperature\":0%s}";
        JsonNode whole = JSON.readTree(post("/v1/chat/completions", ServingResource.API_KEY, request.formatted("")).body());
        HttpResponse<Stream<String>> r = HTTP.send(request("/v1/chat/completions", ServingResource.API_KEY)
                .POST(HttpRequest.BodyPublishers.ofString(request.formatted(",\"stream\":true,\"stream_options\":{\"include_usage\":true}")))
                .build(), HttpResponse.BodyHandlers.ofLines());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("content-type").orElseThrow().startsWith("text/event-stream"));
        List<JsonNode> chunks = new ArrayList<>();
        boolean done = false;
        for (String line : (Iterable<String>) r.body()::iterator) {
            if (line.isEmpty()) {
                continue;
            }
            assertTrue(line.startsWith("data: "), line);
            assertFalse(done, "nothing after [DONE]");
            String data = line.substring(6);
            if (data.equals("[DONE]")) {
                done = true;
            } else {
                chunks.add(JSON.readTree(data));
            }
        }
        assertTrue(done, "the stream ends with data: [DONE]");
        String id = chunks.get(0).get("id").asText();
        assertEquals("assistant", chunks.get(0).get("choices").get(0).get("delta").get("role").asText());
        StringBuilder content = new StringBuilder();
        String finish = null;
        JsonNode usage = null;
        for (JsonNode chunk : chunks) {
            assertEquals(id, chunk.get("id").asText(), "one id for every chunk");
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            if (chunk.get("choices").isEmpty()) {
                usage = chunk.get("usage");
                continue;
            }
            JsonNode choice = chunk.get("choices").get(0);
            if (choice.get("delta").has("content")) {
                content.append(choice.get("delta").get("content").asText());
            }
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asText();
            }
        }
        JsonNode wholeChoice = whole.get("choices").get(0);
        assertEquals(wholeChoice.get("message").get("content").asText(), content.toString(), "greedy: streamed == whole");
        assertEquals(wholeChoice.get("finish_reason").asText(), finish);
        assertEquals(whole.get("usage"), usage);
    }

    @Test
    void aStreamedCompletionUsesTextChunks() throws Exception {
        HttpResponse<String> r = post("/v1/completions", ServingResource.API_KEY,
                "{\"model\":\"test-model\",\"prompt\":\"the\",\"max_tokens\":3,\"stream\":true}");
        assertEquals(200, r.statusCode());
        List<String> events = r.body().lines().filter(l -> !l.isEmpty()).toList();
        assertEquals("data: [DONE]", events.get(events.size() - 1));
        JsonNode last = JSON.readTree(events.get(events.size() - 2).substring(6));
        assertEquals("text_completion", last.get("object").asText());
        assertFalse(last.get("choices").get(0).get("finish_reason").isNull());
    }

    @Test
    void concurrentStreamsShareDecodeStepsAndEachGetsWhatItGetsAlone() throws Exception {
        String[] prompts = {"the cat", "a dog ran", "once", "the quick brown fox"};
        List<String> alone = new ArrayList<>();
        for (String p : prompts) {
            alone.add(streamedText(p));
        }
        // Requests this small finish in milliseconds, so rounds of them are sent until two overlap
        // in the batch (with a deadline); every round's answers must equal the ones given alone.
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        do {
            List<java.util.concurrent.CompletableFuture<String>> together = new ArrayList<>();
            for (String p : prompts) {
                together.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                    try {
                        return streamedText(p);
                    } catch (Exception e) {
                        throw new java.util.concurrent.CompletionException(e);
                    }
                }));
            }
            for (int i = 0; i < prompts.length; i++) {
                assertEquals(alone.get(i), together.get(i).get(60, java.util.concurrent.TimeUnit.SECONDS), "prompt " + i);
            }
        } while (maxBatch() < 2 && System.nanoTime() < deadline);
        assertTrue(maxBatch() >= 2, "some decode step ran more than one generation (max " + maxBatch() + ")");
    }

    /** A greedy streamed completion's text, put together from its chunks. */
    private String streamedText(String prompt) throws Exception {
        HttpResponse<String> r = post("/v1/completions", ServingResource.API_KEY, JSON.createObjectNode().put("model", "test-model")
                .put("prompt", prompt).put("max_tokens", 40).put("temperature", 0).put("stream", true).toString());
        assertEquals(200, r.statusCode(), r.body());
        StringBuilder text = new StringBuilder();
        r.body().lines().filter(l -> l.startsWith("data: {")).forEach(l -> {
            try {
                text.append(JSON.readTree(l.substring(6)).get("choices").get(0).get("text").asText());
            } catch (Exception e) {
                throw new AssertionError(l, e);
            }
        });
        return text.toString();
    }

    private double maxBatch() throws Exception {
        String metrics = HTTP.send(HttpRequest.newBuilder(root.resolve("/q/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        return metrics.lines().filter(l -> l.startsWith("flywheel_serving_decode_batch_size_max"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).max().orElse(0);
    }

    @Test
    void modelsListsTheServedModelWithItsVersion() throws Exception {
        HttpResponse<String> r = get("/v1/models", ServingResource.OTHER_KEY);
        assertEquals(200, r.statusCode(), r.body());
        JsonNode model = JSON.readTree(r.body()).get("data").get(0);
        assertEquals("test-model", model.get("id").asText());
        assertTrue(model.get("model_version").asLong() >= 1);
    }

    @Test
    void theVllmStyleMetricsAreExported() throws Exception {
        assertEquals(200, post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"prompt\":\"the\",\"max_tokens\":3}").statusCode());
        String metrics = HTTP.send(HttpRequest.newBuilder(root.resolve("/q/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        for (String name : List.of("flywheel_serving_requests_total{status=\"200\"}", "flywheel_serving_time_to_first_token_seconds_bucket",
                "flywheel_serving_time_per_output_token_seconds_bucket", "flywheel_serving_e2e_request_latency_seconds_bucket",
                "flywheel_serving_prompt_tokens_total", "flywheel_serving_generation_tokens_total", "flywheel_serving_num_requests_running",
                "flywheel_serving_num_requests_waiting", "flywheel_serving_model_version", "flywheel_serving_swaps_total",
                "flywheel_serving_swap_failures_total{reason=\"verify\"}", "flywheel_serving_swap_duration_seconds",
                "flywheel_serving_model_weight_bytes")) {
            assertTrue(metrics.contains(name), name + " in /q/metrics");
        }
    }

    // --- errors ----------------------------------------------------------------------------------

    @Test
    void badParametersAre400NamingTheParameter() throws Exception {
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"prompt\":\"x\",\"temperature\":3}"),
                400, "invalid_value", "temperature");
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"prompt\":\"x\"}"), 400, "invalid_value", "model");
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"prompt\":\"x\",\"max_tokens\":0}"),
                400, "invalid_value", "max_tokens");
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"),
                400, "invalid_value", "stop");
        assertError(post("/v1/chat/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}"),
                400, "invalid_value", "messages[0].role");
        assertError(post("/v1/chat/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"messages\":[]}"),
                400, "invalid_value", "messages");
        assertError(post("/v1/chat/completions", ServingResource.API_KEY,
                "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}"), 400, "invalid_value", "tools");
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"prompt\":\"x\",\"tools\":[]}"),
                400, "unknown_parameter", "tools");
        assertError(post("/v1/completions", ServingResource.API_KEY, "{not json"), 400, "invalid_json", null);
    }

    @Test
    void bestOfAnswersTheNCandidatesTheRewardHeadRanksHighest() throws Exception {
        HttpResponse<String> r = post("/v1/completions", ServingResource.API_KEY,
                "{\"model\":\"test-model\",\"prompt\":\"the cat\",\"max_tokens\":6,\"n\":2,\"best_of\":5,\"seed\":3}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode json = JSON.readTree(r.body());
        JsonNode choices = json.path("choices");
        assertEquals(2, choices.size());
        double first = choices.get(0).path("reward").asDouble(Double.NaN);
        double second = choices.get(1).path("reward").asDouble(Double.NaN);
        assertTrue(Double.isFinite(first) && Double.isFinite(second), r.body());
        assertTrue(first >= second, "best first: " + r.body());
        assertEquals(0, choices.get(0).path("index").asInt());
        assertEquals(1, choices.get(1).path("index").asInt());
        // Five candidates of up to 6 tokens were generated; the two returned hold at most 12.
        assertTrue(json.path("usage").path("completion_tokens").asInt() > 12, "usage counts every candidate: " + json.path("usage"));
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"prompt\":\"x\",\"n\":3,\"best_of\":2}"),
                400, "invalid_value", "best_of");
        assertError(post("/v1/completions", ServingResource.API_KEY,
                "{\"model\":\"test-model\",\"prompt\":\"x\",\"best_of\":2,\"stream\":true}"), 400, "invalid_value", "best_of");
        assertTrue(JSON.readTree(post("/v1/completions", ServingResource.API_KEY,
                "{\"model\":\"test-model\",\"prompt\":\"x\",\"max_tokens\":2}").body()).path("choices").get(0).path("reward").isMissingNode(),
                "no reward without best_of");
    }

    @Test
    void aMissingOrWrongKeyIs401() throws Exception {
        assertError(post("/v1/completions", null, "{\"model\":\"test-model\",\"prompt\":\"x\"}"), 401, "invalid_api_key", null);
        assertError(post("/v1/completions", "wrong", "{\"model\":\"test-model\",\"prompt\":\"x\"}"), 401, "invalid_api_key", null);
    }

    @Test
    void anUnknownModelIs404() throws Exception {
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"gpt-4\",\"prompt\":\"x\"}"), 404, "model_not_found", "model");
    }

    @Test
    void aPromptLongerThanTheContextIs413() throws Exception {
        StringBuilder ids = new StringBuilder();
        for (int i = 0; i < ServingResource.config.contextLength(); i++) {
            ids.append(i == 0 ? "" : ",").append(40 + i % 50);
        }
        assertError(post("/v1/completions", ServingResource.API_KEY, "{\"model\":\"test-model\",\"prompt\":[" + ids + "]}"),
                413, "context_length_exceeded", "prompt");
    }

    // --- what goes to Kafka ----------------------------------------------------------------------

    @Test
    void everyCompletionIsOnTheResponsesTopic() throws Exception {
        String prompt = "the mat " + UUID.randomUUID();
        JsonNode body = JSON.readTree(post("/v1/completions", ServingResource.API_KEY,
                "{\"model\":\"test-model\",\"prompt\":\"" + prompt + "\",\"max_tokens\":3}").body());
        String id = body.get("id").asText();
        ResponseRecord record = ResponseRecord.CODEC.decode(awaitRecord(Topic.RESPONSES, id));
        assertEquals(prompt, record.prompt());
        assertEquals(body.get("choices").get(0).get("text").asText(), record.completion());
        assertEquals(body.get("model_version").asLong(), record.modelVersion());
    }

    @Test
    void feedbackIsAcceptedAndLandsOnFeedbackRaw() throws Exception {
        String responseId = "cmpl-" + UUID.randomUUID();
        HttpResponse<String> r = post("/v1/feedback", ServingResource.API_KEY,
                "{\"response_id\":\"" + responseId + "\",\"rating\":-1,\"comment\":\"too short\",\"user\":\"u-9\"}");
        assertEquals(202, r.statusCode(), r.body());
        Feedback.Rating rating = (Feedback.Rating) Feedback.CODEC.decode(awaitRecord(Topic.FEEDBACK_RAW, responseId));
        assertEquals(-1, rating.rating());
        assertEquals("too short", rating.comment());
        assertEquals("u-9", rating.user());

        String chosen = "chatcmpl-" + UUID.randomUUID();
        assertEquals(202, post("/v1/feedback", ServingResource.API_KEY,
                "{\"chosen_id\":\"" + chosen + "\",\"rejected_id\":\"chatcmpl-other\"}").statusCode());
        Feedback.Comparison comparison = (Feedback.Comparison) Feedback.CODEC.decode(awaitRecord(Topic.FEEDBACK_RAW, chosen));
        assertEquals("chatcmpl-other", comparison.rejectedId());

        assertError(post("/v1/feedback", ServingResource.API_KEY, "{\"response_id\":\"x\",\"rating\":5}"), 400, "invalid_value", "rating");
        assertError(post("/v1/feedback", ServingResource.API_KEY, "{\"chosen_id\":\"x\",\"rejected_id\":\"x\"}"), 400, "invalid_value", "rejected_id");
    }

    // --- helpers ---------------------------------------------------------------------------------

    static void assertError(HttpResponse<String> r, int status, String code, String param) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("content-type").orElseThrow().startsWith("application/json"));
        JsonNode error = JSON.readTree(r.body()).get("error");
        assertEquals(code, error.get("code").asText());
        assertTrue(error.get("message").asText().length() > 5);
        assertTrue(error.has("type") && error.has("param"));
        if (param == null) {
            assertTrue(error.get("param").isNull(), r.body());
        } else {
            assertEquals(param, error.get("param").asText());
        }
        assertFalse(r.body().contains("Exception"), "no stack trace: " + r.body());
    }

    HttpRequest.Builder request(String path, String key) {
        HttpRequest.Builder b = HttpRequest.newBuilder(root.resolve(path)).header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(60));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return b;
    }

    HttpResponse<String> post(String path, String key, String body) throws Exception {
        return HTTP.send(request(path, key).POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> get(String path, String key) throws Exception {
        return HTTP.send(request(path, key).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Reads a topic from the start until the record with {@code key} appears, or a deadline passes. */
    static byte[] awaitRecord(Topic topic, String key) {
        String name = ServingResource.topics.name(topic);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(ServingResource.broker.consumerProperties("test-" + UUID.randomUUID()))) {
            List<TopicPartition> tps = c.partitionsFor(name).stream().map(p -> new TopicPartition(name, p.partition())).toList();
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            Map<String, byte[]> seen = new HashMap<>();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    seen.put(new String(r.key(), StandardCharsets.UTF_8), r.value());
                }
                if (seen.containsKey(key)) {
                    return seen.get(key);
                }
            }
        }
        throw new AssertionError("no record " + key + " on " + name);
    }
}
