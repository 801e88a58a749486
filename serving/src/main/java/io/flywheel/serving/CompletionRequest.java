package io.flywheel.serving;

import com.fasterxml.jackson.databind.JsonNode;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.model.Sampling;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * A {@code /v1/completions} or {@code /v1/chat/completions} body, validated the way OpenAI's API
 * validates it: each problem is a 400 that names its parameter. The prompt is rendered and
 * tokenized here; the context check needs the engine, so it happens later.
 *
 * @param promptText   the prompt as the model sees it (chat messages rendered by the template)
 * @param promptTokens {@code <|endoftext|>} (the model reads every document after one) then the prompt
 * @param maxTokens    {@code max_tokens}, or null for the server's default
 */
record CompletionRequest(boolean chat, String model, String promptText, int[] promptTokens, Integer maxTokens,
                         double temperature, double topP, int topK, Long seed, List<String> stop, int n,
                         Integer bestOf, boolean stream, boolean streamUsage, String user) {

    static final int MAX_N = 8;

    /** Parameters OpenAI offers that this server does not implement: refused rather than ignored. */
    private static final Set<String> UNSUPPORTED = Set.of("tools", "tool_choice", "functions", "function_call",
            "response_format", "suffix", "logit_bias", "audio", "modalities", "prediction", "top_logprobs", "web_search_options");

    /** Every parameter either endpoint knows, as OpenAI names them, plus the {@code top_k} extension. */
    private static final Set<String> COMMON = Set.of("model", "n", "best_of", "stream", "stream_options", "temperature", "top_p",
            "top_k", "seed", "stop", "max_tokens", "max_completion_tokens", "user", "presence_penalty", "frequency_penalty",
            "logit_bias", "logprobs");
    private static final Set<String> COMPLETIONS = Set.of("prompt", "echo", "suffix");
    /**
     * Chat's own; {@code store}, {@code metadata}, {@code service_tier}, {@code parallel_tool_calls}
     * and {@code reasoning_effort} change nothing here and are accepted, as OpenAI's clients send them.
     */
    private static final Set<String> CHAT = Set.of("messages", "top_logprobs", "tools", "tool_choice", "functions",
            "function_call", "response_format", "audio", "modalities", "prediction", "parallel_tool_calls", "store",
            "metadata", "service_tier", "reasoning_effort", "web_search_options");

    /** The sampling of choice {@code index}: its own seed when one was given, so choices differ. */
    Sampling sampling(int index, int maxTokens) {
        return new Sampling(temperature, topP, topK, seed == null ? null : seed + index, maxTokens, stop);
    }

    static CompletionRequest parse(JsonNode body, boolean chat, Tokenizer tokenizer, String servedModel) {
        if (body == null || !body.isObject()) {
            throw ApiError.badRequest("invalid_json", "The request body must be a JSON object");
        }
        // OpenAI answers 400 for an argument it does not recognise; a typo must not pass as a default.
        for (var names = body.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!COMMON.contains(name) && !(chat ? CHAT : COMPLETIONS).contains(name)) {
                throw ApiError.unknownParameter(name);
            }
        }
        for (String name : UNSUPPORTED) {
            if (body.has(name) && !body.get(name).isNull()) {
                throw ApiError.invalid(name, "'" + name + "' is not supported by this server");
            }
        }
        if (body.path("logprobs").asBoolean(false) || body.path("logprobs").isInt() || body.path("echo").asBoolean(false)) {
            throw ApiError.invalid(body.path("echo").asBoolean(false) ? "echo" : "logprobs", "logprobs and echo are not supported by this server");
        }
        for (String penalty : List.of("presence_penalty", "frequency_penalty")) {
            if (body.has(penalty) && !body.get(penalty).isNull() && number(body, penalty, 0, -2, 2) != 0) {
                throw ApiError.invalid(penalty, "'" + penalty + "' is not supported by this server (only 0)");
            }
        }

        JsonNode model = body.get("model");
        if (model == null || !model.isTextual() || model.asText().isBlank()) {
            throw ApiError.invalid("model", "you must provide a model parameter");
        }
        if (!model.asText().equals(servedModel)) {
            throw ApiError.modelNotFound(model.asText(), servedModel);
        }

        String promptText;
        int[] promptTokens;
        if (chat) {
            ChatTemplate.Rendered rendered = ChatTemplate.render(messages(body), tokenizer);
            promptText = rendered.text();
            promptTokens = rendered.tokens();
        } else {
            JsonNode prompt = body.get("prompt");
            int[] ids;
            if (prompt != null && prompt.isArray() && prompt.size() == 1 && prompt.get(0).isTextual()) {
                prompt = prompt.get(0);
            }
            if (prompt != null && prompt.isTextual()) {
                promptText = prompt.asText();
                ids = tokenizer.encode(promptText);
            } else if (prompt != null && prompt.isArray() && prompt.size() > 0 && allInts(prompt)) {
                ids = new int[prompt.size()];
                for (int i = 0; i < ids.length; i++) {
                    // Checked at full width: asInt() would wrap 2^32 + 200 to 200.
                    JsonNode id = prompt.get(i);
                    if (!id.canConvertToInt() || id.asInt() < 0 || id.asInt() >= tokenizer.vocabSize()) {
                        throw ApiError.invalid("prompt", "token id " + id.asText() + " is outside the vocabulary (0.."
                                + (tokenizer.vocabSize() - 1) + ")");
                    }
                    ids[i] = id.asInt();
                }
                promptText = tokenizer.decode(ids);
            } else {
                throw ApiError.invalid("prompt", "'prompt' must be a string, an array of one string, or an array of token ids"
                        + " (one prompt per request)");
            }
            promptTokens = IntStream.concat(IntStream.of(tokenizer.specialId("<|endoftext|>")), IntStream.of(ids)).toArray();
        }

        Integer maxTokens = null;
        for (String name : List.of("max_tokens", "max_completion_tokens")) {
            if (body.has(name) && !body.get(name).isNull()) {
                maxTokens = (int) integer(body, name, 1, 1, Integer.MAX_VALUE);
            }
        }
        double temperature = number(body, "temperature", 1, 0, 2);
        double topP = number(body, "top_p", 1, Double.MIN_VALUE, 1);
        int topK = (int) integer(body, "top_k", 0, 0, Integer.MAX_VALUE);
        int n = (int) integer(body, "n", 1, 1, MAX_N);
        // OpenAI's legacy best_of: generate this many, answer the n best. Ranked here by the
        // checkpoint's reward head; also accepted on chat completions (an extension).
        Integer bestOf = null;
        if (body.has("best_of") && !body.get("best_of").isNull()) {
            bestOf = (int) integer(body, "best_of", n, 1, MAX_N);
            if (bestOf < n) {
                throw ApiError.invalid("best_of", "best_of must be greater than or equal to n");
            }
        }
        Long seed = body.has("seed") && !body.get("seed").isNull() ? integer(body, "seed", 0, Long.MIN_VALUE, Long.MAX_VALUE) : null;
        List<String> stop = stop(body);
        boolean stream = bool(body, "stream");
        boolean streamUsage = body.path("stream_options").path("include_usage").asBoolean(false);
        String user = null;
        if (body.has("user") && !body.get("user").isNull()) {
            if (!body.get("user").isTextual()) {
                throw ApiError.invalid("user", "'user' must be a string");
            }
            user = body.get("user").asText();
        }
        if (bestOf != null && stream) {
            throw ApiError.invalid("best_of", "best_of cannot be used with stream");
        }
        return new CompletionRequest(chat, model.asText(), promptText, promptTokens, maxTokens, temperature, topP, topK,
                seed, stop, n, bestOf, stream, streamUsage, user);
    }

    private static List<ChatTemplate.Message> messages(JsonNode body) {
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiError.invalid("messages", "'messages' must be a non-empty array of {role, content}");
        }
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String param = "messages[" + i + "]";
            if (!m.isObject() || !m.path("role").isTextual()) {
                throw ApiError.invalid(param + ".role", "each message needs a string 'role'");
            }
            String role = m.get("role").asText();
            if (role.equals("developer")) {
                role = "system";
            }
            if (!ChatTemplate.ROLES.contains(role)) {
                throw ApiError.invalid(param + ".role", "role must be one of system, developer, user, assistant; got '" + role + "'");
            }
            out.add(new ChatTemplate.Message(role, content(m.get("content"), param + ".content")));
        }
        return out;
    }

    /** A string, or an array of text parts ({@code {"type":"text","text":...}}). */
    private static String content(JsonNode content, String param) {
        if (content != null && content.isTextual()) {
            return content.asText();
        }
        if (content != null && content.isArray()) {
            StringBuilder text = new StringBuilder();
            for (JsonNode part : content) {
                if (!part.path("type").asText().equals("text") || !part.path("text").isTextual()) {
                    throw ApiError.invalid(param, "only text content parts are supported");
                }
                text.append(part.get("text").asText());
            }
            return text.toString();
        }
        throw ApiError.invalid(param, "'content' must be a string or an array of text parts");
    }

    private static List<String> stop(JsonNode body) {
        JsonNode stop = body.get("stop");
        if (stop == null || stop.isNull()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (stop.isTextual()) {
            out.add(stop.asText());
        } else if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual()) {
                    throw ApiError.invalid("stop", "'stop' must be a string or an array of strings");
                }
                out.add(s.asText());
            }
        } else {
            throw ApiError.invalid("stop", "'stop' must be a string or an array of strings");
        }
        if (out.size() > 4 || out.stream().anyMatch(String::isEmpty)) {
            throw ApiError.invalid("stop", "'stop' takes at most 4 non-empty strings");
        }
        return out;
    }

    private static boolean allInts(JsonNode array) {
        for (JsonNode n : array) {
            if (!n.isIntegralNumber()) {
                return false;
            }
        }
        return true;
    }

    private static double number(JsonNode body, String name, double fallback, double min, double max) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw ApiError.invalid(name, "'" + name + "' must be a number");
        }
        double d = v.asDouble();
        if (!(d >= min && d <= max)) {
            throw ApiError.invalid(name, d + " is out of range for '" + name + "': expected " + (min == Double.MIN_VALUE ? "> 0" : ">= " + min)
                    + " and <= " + max);
        }
        return d;
    }

    private static long integer(JsonNode body, String name, long fallback, long min, long max) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw ApiError.invalid(name, "'" + name + "' must be an integer");
        }
        long l = v.asLong();
        if (l < min || l > max) {
            throw ApiError.invalid(name, l + " is out of range for '" + name + "': expected " + min + " to " + max);
        }
        return l;
    }

    private static boolean bool(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) {
            return false;
        }
        if (!v.isBoolean()) {
            throw ApiError.invalid(name, "'" + name + "' must be a boolean");
        }
        return v.asBoolean();
    }
}
