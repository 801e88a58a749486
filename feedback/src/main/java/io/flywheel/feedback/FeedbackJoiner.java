package io.flywheel.feedback;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.records.Feedback;
import io.flywheel.core.records.ResponseRecord;
import io.flywheel.core.serde.Json;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * Validates each feedback record, counts it once per (user, response), and joins it with the
 * responses it names, read from the global {@value #RESPONSES_STORE} store that mirrors the
 * compacted {@code responses} topic.
 *
 * <p>Feedback can overtake its response: serving publishes both, and the global store is filled by
 * its own thread. Feedback whose response is not there yet waits in {@value #WAITING_STORE} (a
 * changelogged store, so waiting survives restarts) and is tried again every retry interval; after
 * the join wait it is rejected as {@code unknown_response}. Every record ends as one outcome.
 */
final class FeedbackJoiner implements Processor<String, byte[], String, Outcome> {

    static final String RESPONSES_STORE = "responses";
    static final String SEEN_STORE = "feedback-seen";
    static final String WAITING_STORE = "feedback-waiting";

    private final FeedbackConfig config;
    private final FeedbackMetrics metrics;

    private ProcessorContext<String, Outcome> context;
    private KeyValueStore<String, byte[]> responses;
    private WindowStore<Bytes, byte[]> seen;
    private KeyValueStore<String, byte[]> waiting;
    /** This task's waiting records, for the gauge that sums every task's. */
    private String taskId;
    private long waitingCount;

    FeedbackJoiner(FeedbackConfig config, FeedbackMetrics metrics) {
        this.config = config;
        this.metrics = metrics;
    }

    /** The responses mirror: raw topic bytes by response id, read-only to processors. */
    static StoreBuilder<KeyValueStore<String, byte[]>> responsesStore() {
        return Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(RESPONSES_STORE), Serdes.String(), Serdes.ByteArray())
                .withLoggingDisabled();   // a global store restores from its own topic
    }

    static Set<StoreBuilder<?>> stores(Duration dedupRetention) {
        return Set.of(
                // Window size = retention, as in the tokenizer stream's dedup: whole segments expire.
                Stores.windowStoreBuilder(Stores.persistentWindowStore(SEEN_STORE, dedupRetention, dedupRetention, false),
                        Serdes.Bytes(), Serdes.ByteArray()),
                Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(WAITING_STORE), Serdes.String(), Serdes.ByteArray()));
    }

    @Override
    public void init(ProcessorContext<String, Outcome> context) {
        this.context = context;
        this.responses = context.getStateStore(RESPONSES_STORE);
        this.seen = context.getStateStore(SEEN_STORE);
        this.waiting = context.getStateStore(WAITING_STORE);
        this.taskId = context.taskId().toString();
        try (KeyValueIterator<String, byte[]> it = waiting.all()) {
            while (it.hasNext()) {
                it.next();
                waitingCount++;
            }
        }
        metrics.waiting(taskId, waitingCount);
        context.schedule(config.retryInterval(), PunctuationType.WALL_CLOCK_TIME, this::retryWaiting);
    }

    @Override
    public void close() {
        metrics.waiting(taskId, 0);     // the task moves away; its new owner counts them
    }

    @Override
    public void process(Record<String, byte[]> record) {
        metrics.in();
        byte[] original = record.value() == null ? new byte[0] : record.value();
        try {
            validateAndJoin(record, original);
        } catch (RuntimeException e) {
            // A bug in a stage must not stop the partition behind it: the record is kept with its reason.
            emit(record.key(), Outcome.reject(Reason.PROCESSING_ERROR, "feedback failed: " + e, original), record.timestamp());
        }
    }

    private void validateAndJoin(Record<String, byte[]> record, byte[] original) {
        Feedback feedback;
        try {
            if (record.value() == null) {
                throw new SerializationException("the record has no value");
            }
            feedback = Feedback.CODEC.decode(record.value());
        } catch (SerializationException e) {
            emit(record.key(), Outcome.reject(Reason.MALFORMED, e.getMessage(), original), record.timestamp());
            return;
        }
        // Repartitioned by identity; what leaves is keyed by the response id again, as on feedback.raw.
        record = record.withKey(feedback.key());
        Bytes seenKey = seenKey(feedback);
        if (seenBefore(seenKey)) {
            emit(record.key(), Outcome.reject(Reason.DUPLICATE, "user '" + (feedback.user() == null ? "" : feedback.user())
                    + "' already gave feedback on " + subject(feedback), original), record.timestamp());
            return;
        }
        seen.put(seenKey, new byte[] {1}, record.timestamp());
        long now = context.currentSystemTimeMs();
        Outcome outcome = join(feedback, original);
        if (outcome != null) {
            emit(record.key(), outcome, record.timestamp());
            return;
        }
        String waitKey = String.format(Locale.ROOT, "%013d/%s", now, context.recordMetadata()
                .map(m -> m.topic() + "-" + m.partition() + "@" + m.offset()).orElse(Long.toString(System.nanoTime())));
        ObjectNode entry = Json.object().put("arrived", now).put("ts", record.timestamp())
                .put("original", Base64.getEncoder().encodeToString(original));
        if (record.key() != null) {
            entry.put("key", record.key());
        }
        waiting.put(waitKey, Json.write(entry));
        metrics.waiting(taskId, ++waitingCount);
    }

    /** Tries every waiting record again; gives up on those older than the join wait. */
    private void retryWaiting(long now) {
        List<KeyValue<String, byte[]>> entries = new ArrayList<>();
        try (KeyValueIterator<String, byte[]> it = waiting.all()) {
            it.forEachRemaining(entries::add);
        }
        long left = 0;
        for (KeyValue<String, byte[]> e : entries) {
            Json.Fields f = Json.read(e.value);
            long arrived = f.integer("arrived");
            long ts = f.integer("ts");
            String key = f.optionalString("key");
            byte[] original = Base64.getDecoder().decode(f.string("original"));
            Feedback feedback = Feedback.CODEC.decode(original);
            Outcome outcome = join(feedback, original);
            if (outcome == null && now - arrived >= config.joinWait().toMillis()) {
                outcome = Outcome.reject(Reason.UNKNOWN_RESPONSE, "no response " + missing(feedback) + " appeared on responses within "
                        + config.joinWait().toSeconds() + " s", original);
            }
            if (outcome == null) {
                left++;
                continue;
            }
            waiting.delete(e.key);
            if (!outcome.isRejected()) {
                metrics.joined(now - arrived);
            }
            emit(key, outcome, ts, false);
        }
        waitingCount = left;
        metrics.waiting(taskId, left);
    }

    /** The outcome once every response it names is visible, or null while one is missing. */
    private Outcome join(Feedback feedback, byte[] original) {
        try {
            if (feedback instanceof Feedback.Rating r) {
                ResponseRecord response = response(r.responseId());
                return response == null ? null
                        : Outcome.join(new Joined.Rated(response.prompt(), answer(response), r.rating()));
            }
            Feedback.Comparison c = (Feedback.Comparison) feedback;
            ResponseRecord chosen = response(c.chosenId());
            ResponseRecord rejected = response(c.rejectedId());
            if (chosen == null || rejected == null) {
                return null;
            }
            if (!chosen.prompt().equals(rejected.prompt())) {
                return Outcome.reject(Reason.PROMPT_MISMATCH, "responses " + c.chosenId() + " and " + c.rejectedId()
                        + " answer different prompts", original);
            }
            if (chosen.completion().equals(rejected.completion())) {
                return Outcome.reject(Reason.IDENTICAL_COMPLETIONS, "responses " + c.chosenId() + " and " + c.rejectedId()
                        + " have the same text", original);
            }
            return Outcome.join(new Joined.Compared(chosen.prompt(), answer(chosen), answer(rejected)));
        } catch (InvalidResponse e) {
            return Outcome.reject(Reason.INVALID_RESPONSE, e.getMessage(), original);
        }
    }

    private ResponseRecord response(String id) {
        byte[] bytes = responses.get(id);
        if (bytes == null) {
            return null;
        }
        try {
            return ResponseRecord.CODEC.decode(bytes);
        } catch (SerializationException e) {
            throw new InvalidResponse("response " + id + " on responses cannot be read: " + e.getMessage());
        }
    }

    private static Joined.Answer answer(ResponseRecord r) {
        return new Joined.Answer(r.id(), r.completion());
    }

    private void emit(String key, Outcome outcome, long timestamp) {
        emit(key, outcome, timestamp, true);
    }

    private void emit(String key, Outcome outcome, long timestamp, boolean countJoin) {
        if (outcome.isRejected()) {
            metrics.rejected(Reason.valueOf(outcome.rejected().reason().toUpperCase(Locale.ROOT)));
        } else if (countJoin) {
            metrics.joined(0);
        }
        context.forward(new Record<>(key, outcome, timestamp));
    }

    /** One user's feedback on one response (a comparison: on that unordered pair) counts once. */
    private static Bytes seenKey(Feedback feedback) {
        return Bytes.wrap(identity(feedback).getBytes(StandardCharsets.UTF_8));
    }

    private static String identity(Feedback feedback) {
        return (feedback.user() == null ? "" : feedback.user()) + '\0' + subject(feedback);
    }

    /**
     * The key feedback is repartitioned by: its identity (user and subject, a comparison's two
     * responses in either order), so that repeats land in one task; a record that does not parse
     * keeps its key (it is rejected whichever task sees it).
     */
    static String identity(String key, byte[] value) {
        if (value == null) {
            return key;
        }
        try {
            return identity(Feedback.CODEC.decode(value));
        } catch (SerializationException e) {
            return key;
        }
    }

    private static String subject(Feedback feedback) {
        if (feedback instanceof Feedback.Comparison c) {
            String a = c.chosenId();
            String b = c.rejectedId();
            return a.compareTo(b) < 0 ? "comparison " + a + " / " + b : "comparison " + b + " / " + a;
        }
        return "response " + ((Feedback.Rating) feedback).responseId();
    }

    private String missing(Feedback feedback) {
        if (feedback instanceof Feedback.Rating r) {
            return r.responseId();
        }
        Feedback.Comparison c = (Feedback.Comparison) feedback;
        return responses.get(c.chosenId()) == null ? c.chosenId() : c.rejectedId();
    }

    private boolean seenBefore(Bytes key) {
        try (WindowStoreIterator<byte[]> it = seen.fetch(key, 0L, Long.MAX_VALUE)) {
            return it.hasNext();
        }
    }

    private static final class InvalidResponse extends RuntimeException {
        InvalidResponse(String message) {
            super(message);
        }
    }
}
