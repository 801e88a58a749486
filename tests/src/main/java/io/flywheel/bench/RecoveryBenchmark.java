package io.flywheel.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Recovery: seconds from a SIGKILLed trainer or broker to a healthy loop again, with the loop as
 * {@code ./flywheel up} runs it (the demo corpus, default settings, free ports). Healthy again:
 * <ul>
 *   <li>the trainer: its {@code /health/ready} answers 200 (the restarted trainer has resumed
 *       from its checkpoint and is consuming);</li>
 *   <li>the broker: serving stores feedback again ({@code POST /v1/feedback} answers 202, which
 *       needs the broker's acknowledgement) and every service's readiness answers 200.</li>
 * </ul>
 * Chats are sent throughout; the benchmark counts those that failed.
 *
 * <p>Arguments: {@code [rounds 3]}.
 */
public final class RecoveryBenchmark {

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        Path data = Files.createTempDirectory("flywheel-recovery");
        int api = freePort();
        int stream = freePort();
        int trainer = freePort();
        int feedback = freePort();
        Path flywheel = Path.of("..", "flywheel").toAbsolutePath().normalize();
        Process up = new ProcessBuilder(flywheel.toString(), "up", "--data-dir", data.toString(), "--port", Integer.toString(freePort()),
                "--controller-port", Integer.toString(freePort()), "--api-port", Integer.toString(api), "--stream-metrics-port",
                Integer.toString(stream), "--trainer-metrics-port", Integer.toString(trainer), "--feedback-metrics-port",
                Integer.toString(feedback)).redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(up.getInputStream(), StandardCharsets.UTF_8));
        try {
            String line;
            while ((line = out.readLine()) != null && !line.startsWith("Flywheel is up.")) {
                System.out.println("up: " + line);
            }
            Thread drain = new Thread(() -> out.lines().forEach(l -> {
                if (l.startsWith("flywheel:")) {
                    System.out.println("up: " + l);
                }
            }), "up-output");
            drain.setDaemon(true);
            drain.start();
            String ready = "http://127.0.0.1:%d/health/ready";
            List<String> readiness = List.of(ready.formatted(stream), ready.formatted(trainer), ready.formatted(feedback),
                    "http://127.0.0.1:" + api + "/q/health/ready");
            awaitAll(readiness, Duration.ofMinutes(3));

            List<Double> trainerSeconds = new ArrayList<>();
            List<Double> brokerSeconds = new ArrayList<>();
            int failedChats = 0;
            int chats = 0;
            for (int round = 0; round < rounds; round++) {
                Thread.sleep(20_000);     // a checkpoint or two between faults
                long killed = kill(data, "-Dflywheel.service=trainer");
                Thread.sleep(200);
                while (!ok(ready.formatted(trainer))) {
                    chats++;
                    failedChats += chat(api) ? 0 : 1;
                    Thread.sleep(100);
                }
                trainerSeconds.add((System.nanoTime() - killed) / 1e9);
                awaitAll(readiness, Duration.ofMinutes(3));

                Thread.sleep(20_000);
                killed = kill(data, "-Dflywheel.broker.config=");
                Thread.sleep(200);
                while (!feedbackStored(api)) {
                    chats++;
                    failedChats += chat(api) ? 0 : 1;
                    Thread.sleep(100);
                }
                awaitAll(readiness, Duration.ofMinutes(3));
                brokerSeconds.add((System.nanoTime() - killed) / 1e9);
            }
            System.out.println();
            System.out.println("| fault | rounds | seconds to healthy (each) | median | chats during recovery | failed |");
            System.out.println("|---|---|---|---|---|---|");
            System.out.println(row("trainer SIGKILLed", trainerSeconds, chats, failedChats));
            System.out.println(row("broker SIGKILLed", brokerSeconds, -1, -1));
        } finally {
            up.toHandle().destroy();
            up.waitFor(3, TimeUnit.MINUTES);
        }
    }

    private static String row(String fault, List<Double> seconds, int chats, int failed) {
        List<String> each = seconds.stream().map(s -> String.format(Locale.ROOT, "%.1f", s)).toList();
        List<Double> sorted = seconds.stream().sorted().toList();
        return String.format(Locale.ROOT, "| %s | %d | %s | %.1f | %s | %s |", fault, seconds.size(), String.join(", ", each),
                sorted.get(sorted.size() / 2), chats < 0 ? "(below)" : Integer.toString(chats), failed < 0 ? "" : Integer.toString(failed));
    }

    /** SIGKILLs the process of the loop in {@code data} whose command line holds {@code marker}; returns when. */
    private static long kill(Path data, String marker) {
        ProcessHandle victim = ProcessHandle.allProcesses().filter(h -> {
            String cmd = h.info().commandLine().orElse("");
            return cmd.contains(data.toString()) && cmd.contains(marker);
        }).findFirst().orElseThrow(() -> new IllegalStateException("no " + marker + " process"));
        long at = System.nanoTime();
        victim.destroyForcibly();
        System.out.println("killed " + marker + " (pid " + victim.pid() + ")");
        return at;
    }

    private static void awaitAll(List<String> urls, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (String url : urls) {
            while (!ok(url)) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(url + " not ready within " + timeout);
                }
                Thread.sleep(100);
            }
        }
    }

    private static boolean ok(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static boolean chat(int api) {
        return post(api, "/v1/chat/completions",
                "{\"model\":\"flywheel\",\"messages\":[{\"role\":\"user\",\"content\":\"The Commission\"}],\"max_tokens\":8}") == 200;
    }

    private static boolean feedbackStored(int api) {
        return post(api, "/v1/feedback", "{\"response_id\":\"recovery-probe\",\"rating\":1,\"user\":\"bench-" + System.nanoTime() + "\"}")
                == 202;
    }

    private static int post(int api, String path, String body) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + api + path)).timeout(Duration.ofSeconds(30))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
