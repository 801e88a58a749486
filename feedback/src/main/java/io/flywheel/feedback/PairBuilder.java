package io.flywheel.feedback;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.serde.Json;
import io.flywheel.core.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * Turns joined feedback, keyed by prompt hash, into training examples on {@code preferences}:
 * <ul>
 *   <li>a comparison is a (prompt, chosen, rejected) pair as it stands;</li>
 *   <li>a rating is remembered in {@value #RATED_STORE} with its prompt's other rated answers; a
 *       liked answer pairs with every disliked answer of the same prompt and vice versa;</li>
 *   <li>the first like of an answer also makes it a supervised example.</li>
 * </ul>
 * A response counts once however many users rate it the same way. Answers with the same text never
 * pair (no preference to learn). Texts are tokenized with the model's tokenizer: the prompt with its
 * special tokens, the answer as plain text closed by {@code <|end|>} when the prompt is a chat turn.
 */
final class PairBuilder implements Processor<String, Joined, String, PreferenceRecord> {

    static final String RATED_STORE = "feedback-rated";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Tokenizer tokenizer;
    private final FeedbackMetrics metrics;
    private final int maxRatedPerPrompt;

    private ProcessorContext<String, PreferenceRecord> context;
    private KeyValueStore<String, byte[]> rated;

    PairBuilder(Tokenizer tokenizer, FeedbackMetrics metrics, int maxRatedPerPrompt) {
        this.tokenizer = tokenizer;
        this.metrics = metrics;
        this.maxRatedPerPrompt = maxRatedPerPrompt;
    }

    static StoreBuilder<KeyValueStore<String, byte[]>> store() {
        return Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(RATED_STORE), Serdes.String(), Serdes.ByteArray());
    }

    @Override
    public void init(ProcessorContext<String, PreferenceRecord> context) {
        this.context = context;
        this.rated = context.getStateStore(RATED_STORE);
    }

    @Override
    public void process(Record<String, Joined> record) {
        Joined joined = record.value();
        if (joined instanceof Joined.Compared c) {
            emitPair(record, c.prompt(), c.chosen(), c.rejected());
            return;
        }
        Joined.Rated r = (Joined.Rated) joined;
        List<RatedAnswer> answers = load(record.key());
        RatedAnswer earlier = answers.stream().filter(a -> a.id.equals(r.answer().id())).findFirst().orElse(null);
        if (earlier != null && earlier.rating == r.rating()) {
            return;    // this answer already counted with this rating
        }
        answers.remove(earlier);
        for (RatedAnswer other : answers) {
            if (other.rating != r.rating() && !other.completion.equals(r.answer().completion())) {
                Joined.Answer otherAnswer = new Joined.Answer(other.id, other.completion);
                if (r.rating() > 0) {
                    emitPair(record, r.prompt(), r.answer(), otherAnswer);
                } else {
                    emitPair(record, r.prompt(), otherAnswer, r.answer());
                }
            }
        }
        if (r.rating() > 0) {
            int[] completion = completionIds(r.prompt(), r.answer().completion());
            if (completion.length > 0) {
                emit(record, PreferenceRecord.supervised(tokenizer.id(), promptIds(r.prompt()), completion));
            }
        }
        answers.add(new RatedAnswer(r.answer().id(), r.rating(), r.answer().completion()));
        save(record.key(), answers);
    }

    private void emitPair(Record<String, Joined> record, String prompt, Joined.Answer chosen, Joined.Answer rejected) {
        int[] chosenIds = completionIds(prompt, chosen.completion());
        int[] rejectedIds = completionIds(prompt, rejected.completion());
        if (chosenIds.length > 0 && rejectedIds.length > 0) {
            emit(record, PreferenceRecord.pair(tokenizer.id(), promptIds(prompt), chosenIds, rejectedIds));
        }
    }

    private void emit(Record<String, Joined> record, PreferenceRecord example) {
        metrics.example(example.kind());
        context.forward(record.withValue(example));
    }

    private int[] promptIds(String prompt) {
        return tokenizer.encodeWithSpecials(prompt);
    }

    private int[] completionIds(String prompt, String completion) {
        int[] text = tokenizer.encode(completion);
        if (!prompt.endsWith("<|assistant|>") || !tokenizer.specialTokens().containsKey("<|end|>")) {
            return text;
        }
        int[] closed = Arrays.copyOf(text, text.length + 1);
        closed[text.length] = tokenizer.specialId("<|end|>");
        return closed;
    }

    // --- the rated answers of one prompt, newest last, at most maxRatedPerPrompt of each sign ------

    private record RatedAnswer(String id, int rating, String completion) {}

    private List<RatedAnswer> load(String promptHash) {
        byte[] bytes = rated.get(promptHash);
        List<RatedAnswer> answers = new ArrayList<>();
        if (bytes == null) {
            return answers;
        }
        try {
            for (JsonNode n : JSON.readTree(bytes)) {
                answers.add(new RatedAnswer(n.get("id").asText(), n.get("rating").asInt(), n.get("completion").asText()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return answers;
    }

    private void save(String promptHash, List<RatedAnswer> answers) {
        ArrayNode array = JsonNodeFactory.instance.arrayNode();
        int liked = (int) answers.stream().filter(a -> a.rating > 0).count();
        int disliked = answers.size() - liked;
        for (RatedAnswer a : answers) {
            // Drop the oldest of a sign beyond the bound.
            if (a.rating > 0 && liked > maxRatedPerPrompt) {
                liked--;
                continue;
            }
            if (a.rating < 0 && disliked > maxRatedPerPrompt) {
                disliked--;
                continue;
            }
            array.addObject().put("id", a.id).put("rating", a.rating).put("completion", a.completion);
        }
        rated.put(promptHash, Json.write(array));
    }
}
