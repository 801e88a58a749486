package io.flywheel.ingest.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.records.RawText;
import io.flywheel.core.records.DocumentIds;
import io.flywheel.testsupport.KafkaBroker;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.io.ByteArrayOutputStream;
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
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The gateway running for real (Quarkus on a random port) in front of a real broker; requests go
 * through Java's HTTP client and what they send is read back from the topic.
 */
@QuarkusTest
@WithTestResource(BrokerResource.class)
class DocumentsResourceTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TestHTTPResource("/v1/documents")
    URI documents;

    @TestHTTPResource("/")
    URI root;

    @Test
    void oneJsonDocumentIsAcceptedWithItsDerivedIdAndLandsOnTheTopic() throws Exception {
        String text = "The committee adopted the report " + UUID.randomUUID();
        HttpResponse<String> response = post("application/json", Map.of("X-Flywheel-Source", "news-app"),
                JSON.writeValueAsString(Map.of("text", text, "meta", Map.of("lang", "en"))));

        assertEquals(202, response.statusCode(), response.body());
        JsonNode body = JSON.readTree(response.body());
        assertEquals("list", body.get("object").asText());
        String id = body.get("data").get(0).get("id").asText();
        assertEquals(DocumentIds.of("news-app", text), id);

        RawText landed = awaitRecords(List.of(id)).get(id);
        assertEquals(text, landed.text());
        assertEquals("news-app", landed.source());
        assertEquals(Map.of("lang", "en"), landed.meta());
        assertTrue(landed.ts() > 0);
    }

    @Test
    void anNdjsonBatchIsAcceptedInOrderWithGivenAndDerivedIds() throws Exception {
        String tag = UUID.randomUUID().toString();
        String batch = "{\"text\": \"first " + tag + "\", \"id\": \"given-" + tag + "\"}\n"
                + "\n"
                + "{\"text\": \"second " + tag + "\", \"source\": \"feed-a\"}\r\n"
                + "{\"text\": \"third " + tag + "\", \"id\": 42}";
        HttpResponse<String> response = post("application/x-ndjson", Map.of(), batch);

        assertEquals(202, response.statusCode(), response.body());
        List<String> ids = new ArrayList<>();
        JSON.readTree(response.body()).get("data").forEach(item -> ids.add(item.get("id").asText()));
        assertEquals(List.of("given-" + tag, DocumentIds.of("feed-a", "second " + tag), "42"), ids);

        Map<String, RawText> landed = awaitRecords(ids);
        assertEquals("first " + tag, landed.get("given-" + tag).text());
        assertEquals("http", landed.get("given-" + tag).source());
        assertEquals("feed-a", landed.get(ids.get(1)).source());
        assertEquals("third " + tag, landed.get("42").text());
    }

    @Test
    void aMalformedLineFailsTheWholeBatchNamingTheLineAndNothingIsSent() throws Exception {
        String tag = UUID.randomUUID().toString();
        String batch = "{\"text\": \"good one " + tag + "\"}\n{\"text\": \"broken " + tag + "\"\n{\"text\": \"good two " + tag + "\"}\n";

        HttpResponse<String> response = post("application/x-ndjson", Map.of(), batch);

        assertError(response, 400, "invalid_json");
        JsonNode error = JSON.readTree(response.body()).get("error");
        assertEquals(2, error.get("line").asInt());
        assertTrue(error.get("message").asText().startsWith("line 2: "), error.toString());
        assertNothingLandedContaining(tag);
    }

    @Test
    void documentRulesAreCheckedPerLine() throws Exception {
        assertLineError("{\"txt\": \"typo\"}", "unknown_field");
        assertLineError("{\"id\": \"x\"}", "invalid_document");
        assertLineError("{\"text\": 7}", "invalid_document");
        assertLineError("{\"text\": \"   \"}", "invalid_document");
        assertLineError("{\"text\": \"ok\", \"id\": {\"a\": 1}}", "invalid_document");
        assertLineError("{\"text\": \"ok\", \"meta\": {\"n\": 1}}", "invalid_document");
        assertLineError("[\"text\"]", "invalid_document");
        assertLineError("{\"text\": \"a\"} {\"text\": \"b\"}", "invalid_json");
    }

    @Test
    void invalidUtf8IsABadRequest() throws Exception {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes("{\"text\": \"fine\"}\n{\"text\": \"bad ".getBytes(StandardCharsets.UTF_8));
        body.write(0xC3);
        body.write(0x28);
        body.writeBytes("\"}\n".getBytes(StandardCharsets.UTF_8));
        HttpResponse<String> response = send(request("application/x-ndjson", Map.of())
                .POST(HttpRequest.BodyPublishers.ofByteArray(body.toByteArray())));

        assertError(response, 400, "invalid_utf8");
        assertEquals(2, JSON.readTree(response.body()).get("error").get("line").asInt());
    }

    @Test
    void emptyBodiesAreBadRequests() throws Exception {
        assertError(post("application/json", Map.of(), ""), 400, "empty_body");
        assertError(post("application/x-ndjson", Map.of(), "\n  \n"), 400, "empty_batch");
    }

    @Test
    void limitsAnswer413() throws Exception {
        String tag = UUID.randomUUID().toString();
        // Test limits (BrokerResource): 1,000-byte documents, 20,000-byte bodies, 50 documents.
        String big = "{\"text\": \"" + "é".repeat(501) + tag + "\"}";
        HttpResponse<String> document = post("application/x-ndjson", Map.of(), "{\"text\": \"small " + tag + "\"}\n" + big);
        assertError(document, 413, "document_too_large");
        assertEquals(2, JSON.readTree(document.body()).get("error").get("line").asInt());

        StringBuilder many = new StringBuilder();
        for (int i = 0; i < 51; i++) {
            many.append("{\"text\": \"doc ").append(i).append(' ').append(tag).append("\"}\n");
        }
        HttpResponse<String> count = post("application/x-ndjson", Map.of(), many.toString());
        assertError(count, 413, "too_many_documents");
        assertEquals(51, JSON.readTree(count.body()).get("error").get("line").asInt());

        StringBuilder bytes = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            bytes.append("{\"text\": \"").append("x".repeat(600)).append(' ').append(tag).append("\"}\n");
        }
        assertError(post("application/x-ndjson", Map.of(), bytes.toString()), 413, "batch_too_large");
        // Without a Content-Length (chunked), the limit is enforced while reading.
        HttpResponse<String> chunked = send(request("application/x-ndjson", Map.of()).POST(
                HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(
                        bytes.toString().getBytes(StandardCharsets.UTF_8)))));
        assertError(chunked, 413, "batch_too_large");

        assertNothingLandedContaining(tag);
    }

    @Test
    void apiKeysAreRequiredOnV1() throws Exception {
        String body = "{\"text\": \"auth check\"}";
        HttpResponse<String> none = send(HttpRequest.newBuilder(documents).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)));
        assertError(none, 401, "invalid_api_key");
        assertEquals("Bearer", none.headers().firstValue("WWW-Authenticate").orElse(""));

        HttpResponse<String> wrong = send(HttpRequest.newBuilder(documents).header("Content-Type", "application/json")
                .header("Authorization", "Bearer test-key-10").POST(HttpRequest.BodyPublishers.ofString(body)));
        assertError(wrong, 401, "invalid_api_key");

        HttpResponse<String> second = send(HttpRequest.newBuilder(documents).header("Content-Type", "application/json")
                .header("Authorization", "Bearer test-key-2").POST(HttpRequest.BodyPublishers.ofString(body)));
        assertEquals(202, second.statusCode(), second.body());
    }

    @Test
    void otherContentTypesAndMethodsGetJsonErrors() throws Exception {
        assertError(post("text/plain", Map.of(), "hello"), 415, "unsupported_media_type");
        assertError(send(request("application/json", Map.of()).GET()), 405, "method_not_allowed");
    }

    @Test
    void healthIsReadyAndMetricsCountDocumentsAndFailures() throws Exception {
        HttpResponse<String> ready = send(HttpRequest.newBuilder(root.resolve("/q/health/ready")).GET());
        assertEquals(200, ready.statusCode(), ready.body());
        assertEquals("UP", JSON.readTree(ready.body()).get("status").asText());

        assertEquals(202, post("application/json", Map.of(), "{\"text\": \"counted " + UUID.randomUUID() + "\"}").statusCode());
        assertEquals(400, post("application/json", Map.of(), "{").statusCode());

        String metrics = send(HttpRequest.newBuilder(root.resolve("/q/metrics")).GET()).body();
        assertTrue(metricValue(metrics, "flywheel_gateway_documents_total") >= 1, metrics);
        assertTrue(metricValue(metrics, "flywheel_gateway_document_bytes_total") > 0, metrics);
        assertTrue(metricValue(metrics, "flywheel_gateway_requests_failed_total{code=\"invalid_json\"") >= 1, metrics);
        assertTrue(metrics.contains("flywheel_gateway_send_seconds_count"), metrics);
        assertTrue(metrics.contains("http_server_requests_seconds_count{"), metrics);
    }

    // --- helpers ---

    private void assertLineError(String badLine, String code) throws Exception {
        String tag = UUID.randomUUID().toString();
        HttpResponse<String> response = post("application/x-ndjson", Map.of(),
                "{\"text\": \"fine " + tag + "\"}\n" + badLine + "\n");
        assertError(response, 400, code);
        assertEquals(2, JSON.readTree(response.body()).get("error").get("line").asInt(), response.body());
    }

    private static void assertError(HttpResponse<String> response, int status, String code) throws Exception {
        assertEquals(status, response.statusCode(), response.body());
        assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("application/json"),
                response.headers().toString());
        JsonNode error = JSON.readTree(response.body()).get("error");
        assertNotNull(error, response.body());
        assertEquals(code, error.get("code").asText(), response.body());
        assertFalse(error.get("message").asText().isBlank());
        assertTrue(error.has("type") && error.has("param"), response.body());
        assertFalse(response.body().contains("Exception"), response.body());
    }

    private HttpRequest.Builder request(String contentType, Map<String, String> headers) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(documents)
                .header("Content-Type", contentType)
                .header("Authorization", "Bearer " + BrokerResource.API_KEY);
        headers.forEach(builder::header);
        return builder;
    }

    private HttpResponse<String> post(String contentType, Map<String, String> headers, String body) throws Exception {
        return send(request(contentType, headers).POST(HttpRequest.BodyPublishers.ofString(body)));
    }

    private static HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
        return HTTP.send(request.timeout(Duration.ofSeconds(60)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static double metricValue(String exposition, String prefix) {
        return exposition.lines().filter(l -> l.startsWith(prefix))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                .sum();
    }

    /** Reads the topic from the start until every id is there, or fails at the deadline. */
    private static Map<String, RawText> awaitRecords(List<String> ids) {
        Map<String, RawText> found = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = consumer()) {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!found.keySet().containsAll(ids) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    String key = new String(r.key(), StandardCharsets.UTF_8);
                    if (ids.contains(key)) {
                        found.put(key, RawText.CODEC.decode(r.value()));
                    }
                }
            }
        }
        assertTrue(found.keySet().containsAll(ids), "missing on the topic: " + ids + " found " + found.keySet());
        return found;
    }

    /**
     * Reads the whole topic up to its end offsets as they are now. A failed request has been
     * answered, so anything it had sent would already be acknowledged and below these offsets.
     */
    private void assertNothingLandedContaining(String tag) {
        List<String> leaked = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(
                BrokerResource.broker.consumerProperties(KafkaBroker.uniqueName("gateway-test")))) {
            List<TopicPartition> partitions = consumer.partitionsFor(BrokerResource.topic).stream()
                    .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                assertTrue(System.nanoTime() < deadline, "could not read the topic to its end");
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    String text = RawText.CODEC.decode(r.value()).text();
                    if (text.contains(tag)) {
                        leaked.add(text);
                    }
                }
            }
        }
        assertEquals(List.of(), leaked);
    }

    private static KafkaConsumer<byte[], byte[]> consumer() {
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(
                BrokerResource.broker.consumerProperties(KafkaBroker.uniqueName("gateway-test")));
        consumer.subscribe(List.of(BrokerResource.topic));
        return consumer;
    }
}
