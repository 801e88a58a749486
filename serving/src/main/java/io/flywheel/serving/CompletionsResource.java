package io.flywheel.serving;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.records.ResponseRecord;
import io.flywheel.core.serde.Json;
import io.flywheel.model.Batcher;
import io.flywheel.model.Generator;
import io.smallrye.common.annotation.Blocking;
import io.vertx.ext.web.RoutingContext;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;
import org.jboss.logging.Logger;

/**
 * OpenAI's {@code /v1/completions}, {@code /v1/chat/completions} and {@code /v1/models}. A request
 * waits for a slot ({@link Admission}), then leases the engine serving at that moment and keeps it
 * to its last byte, whatever swaps happen meanwhile. Every answer names the checkpoint version that
 * produced it: the {@code model_version} field and the {@code X-Flywheel-Model-Version} header.
 */
@Path("/v1")
@Blocking
public class CompletionsResource {

    static final String VERSION_HEADER = "X-Flywheel-Model-Version";
    /** Counted for requests whose client left before the answer was complete (nginx's convention). */
    static final int CLIENT_CLOSED = 499;
    private static final Logger LOG = Logger.getLogger(CompletionsResource.class);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final char[] ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".toCharArray();

    private final ModelRegistry registry;
    private final Admission admission;
    private final ServingConfig config;
    private final ServingMetrics metrics;
    private final EventSink events;

    CompletionsResource(ModelRegistry registry, Admission admission, ServingConfig config, ServingMetrics metrics, EventSink events) {
        this.registry = registry;
        this.admission = admission;
        this.config = config;
        this.metrics = metrics;
        this.events = events;
    }

    @GET
    @Path("/models")
    @Produces(MediaType.APPLICATION_JSON)
    public Response models() {
        ArrayNode data = Json.object().arrayNode();
        registry.version().ifPresent(version -> data.add(Json.object().put("id", config.modelName()).put("object", "model")
                .put("created", System.currentTimeMillis() / 1000).put("owned_by", "flywheel").put("model_version", version)
                .put("pinned", registry.pinnedVersion().isPresent())));
        metrics.request(200);
        Response.ResponseBuilder r = Response.ok(Json.write(Json.object().put("object", "list").set("data", data)));
        registry.version().ifPresent(v -> r.header(VERSION_HEADER, v));
        return r.build();
    }

    @POST
    @Path("/completions")
    @Consumes(MediaType.APPLICATION_JSON)
    public Response completions(JsonNode body, RoutingContext http) {
        return complete(body, false, http);
    }

    @POST
    @Path("/chat/completions")
    @Consumes(MediaType.APPLICATION_JSON)
    public Response chatCompletions(JsonNode body, RoutingContext http) {
        return complete(body, true, http);
    }

    private Response complete(JsonNode body, boolean chat, RoutingContext http) {
        long arrived = System.nanoTime();
        CompletionRequest request = CompletionRequest.parse(body, chat, registry.tokenizer(), config.modelName());
        if (registry.version().isEmpty()) {
            throw ApiError.modelNotLoaded();
        }
        Generation generation = hold();
        http.addEndHandler(ended -> generation.abandon());
        if (http.response().closed()) {
            generation.abandon();     // it left while waiting for its slot, before the handler was there
        }
        if (!request.stream()) {
            try (generation) {
                if (!generation.claim()) {
                    throw new Generation.ClientGone();
                }
                Answer answer = answer(request, generation, arrived);
                ObjectNode json = answer.whole();
                metrics.request(200);
                return Response.ok(Json.write(json), MediaType.APPLICATION_JSON_TYPE).header(VERSION_HEADER, answer.version()).build();
            }
        }
        Answer answer;
        try {
            answer = answer(request, generation, arrived);
        } catch (RuntimeException e) {
            generation.close();
            throw e;
        }
        // From here the stream's writer owns the hold; if it never runs (the client left before the
        // answer began), the connection's end handler gives the hold back.
        // Counted once, when it ends: 200 streamed to its end, 499 when its client left.
        StreamingOutput sse = out -> {
            if (!generation.claim()) {
                metrics.request(CLIENT_CLOSED);
                return;
            }
            try (generation) {
                answer.stream(out);
                metrics.request(200);
            } catch (Generation.ClientGone | IOException gone) {
                metrics.request(CLIENT_CLOSED);
            }
        };
        return Response.ok(sse, "text/event-stream").header(VERSION_HEADER, answer.version())
                .header("Cache-Control", "no-cache").header("X-Accel-Buffering", "no").build();
    }

    /** A generation slot, then a lease on the engine serving at that moment. */
    private Generation hold() {
        Admission.Slot slot = admission.enter();
        try {
            return new Generation(slot, registry.lease().orElseThrow(ApiError::modelNotLoaded));
        } catch (RuntimeException e) {
            slot.close();
            throw e;
        }
    }

    private Answer answer(CompletionRequest request, Generation generation, long arrived) {
        int context = generation.engine().config().contextLength();
        if (request.promptTokens().length >= context) {
            throw ApiError.contextLength(request.chat() ? "messages" : "prompt", request.promptTokens().length, context);
        }
        int room = context - request.promptTokens().length;
        int maxTokens = Math.min(room, request.maxTokens() != null ? request.maxTokens() : config.defaultMaxTokens());
        return new Answer(request, generation, maxTokens, arrived, (request.chat() ? "chatcmpl-" : "cmpl-") + randomId());
    }

    private static String randomId() {
        char[] id = new char[24];
        for (int i = 0; i < id.length; i++) {
            id[i] = ID_CHARS[RANDOM.nextInt(ID_CHARS.length)];
        }
        return new String(id);
    }

    /** One request's answer, produced on the engine it leased. */
    private final class Answer {
        private final CompletionRequest request;
        private final Generation generation;
        private final Engine engine;
        private final int maxTokens;
        private final long arrived;
        private final String id;
        private final long created = System.currentTimeMillis() / 1000;
        private long lastToken;
        private boolean firstToken = true;
        private int generated;

        Answer(CompletionRequest request, Generation generation, int maxTokens, long arrived, String id) {
            this.request = request;
            this.generation = generation;
            this.engine = generation.engine();
            this.maxTokens = maxTokens;
            this.arrived = arrived;
            this.id = id;
        }

        long version() {
            return engine.version();
        }

        /**
         * Generates choice {@code index} in the engine's batch, passing text pieces to
         * {@code onText} as they become final; this thread writes them while the batch goes on.
         */
        private Generator.Completion choice(int index, Consumer<String> onText) {
            TokenStream stream = new TokenStream();
            Batcher.Job job = engine.generate(request.promptTokens(), request.sampling(index, maxTokens), request.chat(),
                    stream::text, stream::token);
            Generator.Completion c = stream.drain(job, onText, token -> {
                generation.checkClient();
                long now = System.nanoTime();
                if (firstToken) {
                    metrics.firstToken(now - arrived);
                    firstToken = false;
                } else {
                    metrics.interToken(now - lastToken);
                }
                lastToken = now;
            }, generation::checkClient);
            generated += c.tokens().length;
            return c;
        }

        /** Each returned choice is a response of its own for feedback: the id, then "-1", "-2" for the others. */
        private void publish(int index, Generator.Completion c) {
            String responseId = index == 0 ? id : id + "-" + index;
            events.response(new ResponseRecord(responseId, engine.version(), request.promptText(), c.text(), System.currentTimeMillis()));
        }

        /** A generated candidate and, with best_of, its reward. */
        private record Candidate(Generator.Completion completion, double reward) {}

        /**
         * The choices: {@code n} generations, or with {@code best_of} that many candidates of which
         * the {@code n} with the highest reward, best first.
         */
        private List<Candidate> candidates() {
            int count = request.bestOf() == null ? request.n() : request.bestOf();
            List<Candidate> all = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                Generator.Completion c = choice(i, null);
                double reward = request.bestOf() == null ? Double.NaN : engine.reward(request.promptTokens(), c.text(), request.chat());
                all.add(new Candidate(c, reward));
            }
            if (request.bestOf() != null) {
                all.sort(Comparator.comparingDouble(Candidate::reward).reversed());
            }
            return all.subList(0, request.n());
        }

        ObjectNode whole() {
            ArrayNode choices = Json.object().arrayNode();
            List<Candidate> best = candidates();
            for (int i = 0; i < best.size(); i++) {
                Generator.Completion c = best.get(i).completion();
                publish(i, c);
                ObjectNode choice = Json.object().put("index", i);
                if (request.bestOf() != null) {
                    choice.put("reward", best.get(i).reward());    // the reward head's score (an extension)
                }
                if (request.chat()) {
                    choice.set("message", Json.object().put("role", "assistant").put("content", c.text()).putNull("refusal"));
                } else {
                    choice.put("text", c.text());
                }
                choice.putNull("logprobs");
                choice.put("finish_reason", finishReason(c));
                choices.add(choice);
            }
            metrics.finished(System.nanoTime() - arrived, request.promptTokens().length, generated);
            ObjectNode json = envelope(request.chat() ? "chat.completion" : "text_completion");
            json.set("choices", choices);
            json.set("usage", usage());
            return json;
        }

        /** Server-Sent Events as OpenAI sends them, ending with {@code data: [DONE]}. */
        void stream(OutputStream out) throws IOException {
            try {
                for (int i = 0; i < request.n(); i++) {
                    int index = i;
                    if (request.chat()) {
                        send(out, chunk(index, Json.object().put("role", "assistant").put("content", ""), null));
                    }
                    Generator.Completion c = choice(index, text -> send(out, request.chat()
                            ? chunk(index, Json.object().put("content", text), null)
                            : chunk(index, text, null)));
                    publish(index, c);
                    send(out, request.chat() ? chunk(index, Json.object(), finishReason(c)) : chunk(index, "", finishReason(c)));
                }
                metrics.finished(System.nanoTime() - arrived, request.promptTokens().length, generated);
                if (request.streamUsage()) {
                    ObjectNode last = envelope(request.chat() ? "chat.completion.chunk" : "text_completion");
                    last.set("choices", Json.object().arrayNode());
                    last.set("usage", usage());
                    send(out, last);
                }
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                out.flush();
            } catch (UncheckedIOException e) {
                throw e.getCause();     // the client went away
            } catch (Generation.ClientGone e) {
                throw e;
            } catch (RuntimeException e) {
                // The status line is sent: report the failure in the stream, as OpenAI does.
                LOG.error("generation failed", e);
                send(out, Json.object().set("error", Json.object().put("message", "The server had an error while generating")
                        .put("type", "server_error").putNull("param").put("code", "internal_error")));
            }
        }

        private ObjectNode chunk(int index, ObjectNode delta, String finish) {
            ObjectNode choice = Json.object().put("index", index);
            choice.set("delta", delta);
            choice.putNull("logprobs");
            if (finish == null) {
                choice.putNull("finish_reason");
            } else {
                choice.put("finish_reason", finish);
            }
            ObjectNode json = envelope("chat.completion.chunk");
            json.set("choices", Json.object().arrayNode().add(choice));
            return json;
        }

        private ObjectNode chunk(int index, String text, String finish) {
            ObjectNode choice = Json.object().put("text", text).put("index", index);
            choice.putNull("logprobs");
            if (finish == null) {
                choice.putNull("finish_reason");
            } else {
                choice.put("finish_reason", finish);
            }
            ObjectNode json = envelope("text_completion");
            json.set("choices", Json.object().arrayNode().add(choice));
            return json;
        }

        private void send(OutputStream out, ObjectNode event) {
            try {
                out.write(("data: " + new String(Json.write(event), StandardCharsets.UTF_8) + "\n\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        private ObjectNode envelope(String object) {
            return Json.object().put("id", id).put("object", object).put("created", created).put("model", config.modelName())
                    .put("system_fingerprint", "flywheel-v" + engine.version()).put("model_version", engine.version());
        }

        private ObjectNode usage() {
            int prompt = request.promptTokens().length;
            return Json.object().put("prompt_tokens", prompt).put("completion_tokens", generated).put("total_tokens", prompt + generated);
        }

        private String finishReason(Generator.Completion c) {
            return c.finish() == Generator.Finish.STOP ? "stop" : "length";
        }
    }
}
