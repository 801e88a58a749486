package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Clients that misbehave, over raw sockets so that the server sees exactly what a browser tab
 * closed mid-answer or a client stuck half-way through its body does: the slots, leases and
 * workers they held come back, and everyone else keeps being answered. Two generation slots, a
 * body deadline of 20 s, and more slow clients than there are worker threads.
 */
@QuarkusTest
@WithTestResource(value = ServingResource.class, initArgs = {
        @ResourceArg(name = "max-running", value = "2"),
        @ResourceArg(name = "body-timeout", value = "20s"),
        @ResourceArg(name = "max-body-bytes", value = "1048576")})
class ClientFaultsTest {

    private static final String RUNNING = "flywheel_serving_num_requests_running";
    private static final String WAITING = "flywheel_serving_num_requests_waiting";

    @Inject
    Admission admission;

    @TestHTTPResource("/")
    URI root;

    private final List<Socket> open = new ArrayList<>();

    @BeforeEach
    void modelLoaded() throws Exception {
        CompletionsTest.awaitReady(root);
    }

    @AfterEach
    void closeSockets() throws IOException {
        for (Socket s : open) {
            s.close();
        }
    }

    @Test
    void streamsClosedByTheirClientsGiveTheirSlotsBack() throws Exception {
        String body = "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"the cat\"}],"
                + "\"max_tokens\":60,\"n\":8,\"stream\":true}";
        // Clients that leave while they wait in line: both slots are held here, two streams queue
        // behind them and go away, then the slots come free.
        Admission.Slot first = admission.enter();
        Admission.Slot second = admission.enter();
        List<Socket> queued = List.of(send("/v1/chat/completions", body), send("/v1/chat/completions", body));
        awaitGauge(WAITING, 2);
        for (Socket s : queued) {
            reset(s);
        }
        first.close();
        second.close();
        // Clients that leave mid-answer: after the headers, after the first event.
        for (String marker : List.of("\r\n\r\n", "data: ")) {
            List<Socket> pair = List.of(send("/v1/chat/completions", body), send("/v1/chat/completions", body));
            for (Socket s : pair) {
                readUntil(s, marker);
                reset(s);
            }
        }
        awaitGauge(RUNNING, 0);
        HttpResponse<String> r;
        try {
            r = completion(Duration.ofSeconds(30));
        } catch (java.net.http.HttpTimeoutException e) {
            // The server runs in this JVM: say where its threads are, so that a hang can be read from the report.
            throw new AssertionError("a completion after the clients left got no answer in 30 s; threads:\n" + threadDump(), e);
        }
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(200, HTTP.send(HttpRequest.newBuilder(root.resolve("/q/health/ready")).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode());
    }

    @Test
    void slowBodiesCostAConnectionNotAWorker() throws Exception {
        // More stalled bodies than there are worker threads: each promises 200,000 bytes (more than the framework buffers before it hands a body to a worker) and sends 20.
        for (int i = 0; i < 80; i++) {
            Socket s = new Socket(root.getHost(), root.getPort());
            open.add(s);
            OutputStream out = s.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer "
                    + ServingResource.API_KEY + "\r\nContent-Length: 200000\r\n\r\n"
                    + "{\"model\":\"test-mod").getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
        // Everyone else is answered meanwhile, long before the stalled bodies' 20 s deadline:
        // health, metrics and generations.
        for (int i = 0; i < 3; i++) {
            HttpResponse<String> r = completion(Duration.ofSeconds(5));
            assertEquals(200, r.statusCode(), r.body());
        }
        assertEquals(200, HTTP.send(HttpRequest.newBuilder(root.resolve("/q/health/live")).timeout(Duration.ofSeconds(5)).build(),
                HttpResponse.BodyHandlers.discarding()).statusCode());
        // And the stalled ones hear why once their deadline passes.
        String answer = readAll(open.get(0), Duration.ofSeconds(40));
        assertTrue(answer.startsWith("HTTP/1.1 408"), answer);
        assertTrue(answer.contains("\"code\":\"request_timeout\""), answer);
    }

    @Test
    void anOversizedBodyIs413WithAnOpenAiError() throws Exception {
        // Declared too large: refused before it is read.
        HttpResponse<String> declared = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + ServingResource.API_KEY)
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"" + "x".repeat(2 << 20) + "\"}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        CompletionsTest.assertError(declared, 413, "request_too_large", null);
        // Sent in chunks with no length given: refused when it passes the limit.
        Socket s = new Socket(root.getHost(), root.getPort());
        open.add(s);
        OutputStream out = s.getOutputStream();
        out.write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer "
                + ServingResource.API_KEY + "\r\nTransfer-Encoding: chunked\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        byte[] chunk = "x".repeat(64 << 10).getBytes(StandardCharsets.UTF_8);
        try {
            for (int i = 0; i < 40; i++) {
                out.write((Integer.toHexString(chunk.length) + "\r\n").getBytes(StandardCharsets.UTF_8));
                out.write(chunk);
                out.write("\r\n".getBytes(StandardCharsets.UTF_8));
            }
            out.flush();
        } catch (IOException closedByTheServer) {
            // expected once the limit is passed
        }
        String answer = readAll(s, Duration.ofSeconds(20));
        assertTrue(answer.startsWith("HTTP/1.1 413"), answer);
        assertTrue(answer.contains("\"code\":\"request_too_large\""), answer);
    }

    @Test
    void tokenIdsOfAnyWidthOutsideTheVocabularyAre400() throws Exception {
        for (String id : List.of("4294967496", "-1", "9223372036854775807", "18446744073709551616", "1e3")) {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                    .header("Content-Type", "application/json").header("Authorization", "Bearer " + ServingResource.API_KEY)
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":[40," + id + "],\"max_tokens\":2}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            CompletionsTest.assertError(r, 400, "invalid_value", "prompt");
        }
    }

    @Test
    void unknownParametersAre400NamingThem() throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/chat/completions"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + ServingResource.API_KEY)
                .POST(HttpRequest.BodyPublishers.ofString(
                        "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temprature\":0.5}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        CompletionsTest.assertError(r, 400, "unknown_parameter", "temprature");
        assertTrue(r.body().contains("temprature"), r.body());
        // What OpenAI's own clients send besides the sampling parameters is accepted.
        HttpResponse<String> ok = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/chat/completions"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + ServingResource.API_KEY)
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\","
                        + "\"name\":\"ann\"}],\"max_tokens\":2,\"store\":false,\"metadata\":{\"a\":\"b\"},\"parallel_tool_calls\":null}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, ok.statusCode(), ok.body());
    }

    @Test
    void aFeedbackCommentOverItsLimitIs413NotARetry() throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/feedback"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + ServingResource.API_KEY)
                .POST(HttpRequest.BodyPublishers.ofString("{\"response_id\":\"cmpl-1\",\"rating\":1,\"comment\":\""
                        + "y".repeat(FeedbackResource.MAX_COMMENT_BYTES + 1) + "\"}")).build(), HttpResponse.BodyHandlers.ofString());
        CompletionsTest.assertError(r, 413, "comment_too_long", "comment");
    }

    @Test
    void errorMessagesNameNoPathsOrInternals() throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + ServingResource.API_KEY)
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"x\"")).build(),
                HttpResponse.BodyHandlers.ofString());
        CompletionsTest.assertError(r, 400, "invalid_json", null);
        for (String internal : List.of("com.fasterxml", "jackson", "Source:", "line: 1, column", "REDACTED", "/tmp", "org.apache")) {
            assertFalse(r.body().contains(internal), internal + " in " + r.body());
        }
    }

    // --- helpers ---------------------------------------------------------------------------------

    private Socket send(String path, String body) throws IOException {
        Socket s = new Socket(root.getHost(), root.getPort());
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        s.getOutputStream().write(("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer "
                + ServingResource.API_KEY + "\r\nContent-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        s.getOutputStream().write(bytes);
        s.getOutputStream().flush();
        return s;
    }

    private static void readUntil(Socket s, String marker) throws IOException {
        s.setSoTimeout(30_000);
        InputStream in = s.getInputStream();
        StringBuilder seen = new StringBuilder();
        int b;
        while ((b = in.read()) >= 0) {
            seen.append((char) b);
            if (seen.indexOf(marker) >= 0) {
                return;
            }
        }
        throw new AssertionError("the connection ended before " + marker + ": " + seen);
    }

    private static String readAll(Socket s, Duration timeout) throws IOException {
        s.setSoTimeout((int) timeout.toMillis());
        return new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
    }

    private HttpResponse<String> completion(Duration timeout) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions")).timeout(timeout)
                .header("Content-Type", "application/json").header("Authorization", "Bearer " + ServingResource.API_KEY)
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"test-model\",\"prompt\":\"the\",\"max_tokens\":4}")).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** Polls a gauge of /q/metrics until it reads {@code value}, or fails at a deadline. */
    private void awaitGauge(String name, int value) throws Exception {
        Pattern line = Pattern.compile("(?m)^" + name + "(?:\\{[^}]*})? (\\S+)$");
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        int seen = -1;
        while (System.nanoTime() < deadline) {
            String metrics = HTTP.send(HttpRequest.newBuilder(root.resolve("/q/metrics")).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            Matcher m = line.matcher(metrics);
            assertTrue(m.find(), name + " in /q/metrics");
            seen = (int) Double.parseDouble(m.group(1));
            if (seen == value) {
                return;
            }
            Thread.sleep(50);
        }
        throw new AssertionError(name + " stayed at " + seen + ", expected " + value);
    }

    private static String threadDump() {
        StringBuilder dump = new StringBuilder();
        Thread.getAllStackTraces().forEach((thread, stack) -> {
            dump.append('"').append(thread.getName()).append("\" ").append(thread.getState()).append('\n');
            for (StackTraceElement frame : stack) {
                dump.append("    at ").append(frame).append('\n');
            }
        });
        return dump.toString();
    }

    /** Closes with a reset, as a killed client leaves its connection. */
    private static void reset(Socket s) throws IOException {
        s.setSoLinger(true, 0);
        s.close();
    }
}
