package io.flywheel.feedback;

import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

/**
 * {@code feedback.raw} joined with {@code responses} to {@code preferences} (and
 * {@code feedback.rejected}). {@link #build()} is the whole data flow: feedback is repartitioned by
 * who said what about which responses, so that repeats meet; every feedback record ends as one
 * outcome, joined or rejected with its reason; joined feedback meets the other answers to its
 * prompt after a repartition by prompt hash, where pairs and supervised examples are built.
 */
public final class FeedbackTopology {

    private final FeedbackConfig config;
    private final Tokenizer tokenizer;
    private final FeedbackMetrics metrics;

    FeedbackTopology(FeedbackConfig config, Tokenizer tokenizer, FeedbackMetrics metrics) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.metrics = metrics;
    }

    public Topology build() {
        StreamsBuilder builder = new StreamsBuilder();

        // Every response, on every instance: comparisons name two responses from any partition.
        builder.addGlobalStore(FeedbackJoiner.responsesStore(), config.topics().name(Topic.RESPONSES),
                Consumed.with(Serdes.String(), Serdes.ByteArray()), MirrorResponses::new);

        // Repeated feedback must meet in one task whatever partition it was sent to (a comparison's
        // two orders have different keys): repartition by its identity, then count it once.
        FeedbackJoiner.stores(config.dedupRetention()).forEach(builder::addStateStore);
        KStream<String, Outcome> outcomes = builder
                .stream(config.topics().name(Topic.FEEDBACK_RAW), Consumed.with(Serdes.String(), Serdes.ByteArray()))
                .selectKey((key, value) -> FeedbackJoiner.identity(key, value), Named.as("key-by-identity"))
                .repartition(Repartitioned.with(Serdes.String(), Serdes.ByteArray()).withName("by-identity"))
                .process(() -> new FeedbackJoiner(config, metrics), Named.as("validate-and-join"),
                        FeedbackJoiner.SEEN_STORE, FeedbackJoiner.WAITING_STORE);

        outcomes.filter((key, outcome) -> outcome.isRejected(), Named.as("rejections"))
                .mapValues(Outcome::rejected, Named.as("rejected"))
                .to(config.topics().name(Topic.FEEDBACK_REJECTED), Produced.with(Serdes.String(), RejectedText.CODEC.serde()));

        builder.addStateStore(PairBuilder.store());
        outcomes.filterNot((key, outcome) -> outcome.isRejected(), Named.as("joined"))
                .map((key, outcome) -> KeyValue.pair(Joined.promptHash(outcome.joined().prompt()), outcome.joined()),
                        Named.as("key-by-prompt"))
                .repartition(Repartitioned.with(Serdes.String(), Joined.CODEC.serde()).withName("by-prompt"))
                .process(() -> new PairBuilder(tokenizer, metrics, config.maxRatedPerPrompt()), Named.as("build-pairs"),
                        PairBuilder.RATED_STORE)
                .to(config.topics().name(Topic.PREFERENCES), Produced.with(Serdes.String(), PreferenceRecord.CODEC.serde()));

        return builder.build();
    }

    /** Keeps the global store equal to the compacted topic: a tombstone deletes. */
    private static final class MirrorResponses implements Processor<String, byte[], Void, Void> {
        private org.apache.kafka.streams.state.KeyValueStore<String, byte[]> store;

        @Override
        public void init(ProcessorContext<Void, Void> context) {
            store = context.getStateStore(FeedbackJoiner.RESPONSES_STORE);
        }

        @Override
        public void process(Record<String, byte[]> record) {
            if (record.key() == null) {
                return;
            }
            if (record.value() == null) {
                store.delete(record.key());
            } else {
                store.put(record.key(), record.value());
            }
        }
    }
}
