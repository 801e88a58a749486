package io.flywheel.tokenizerstream;

import io.flywheel.core.records.RawText;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.serde.Binary;
import io.flywheel.core.serde.StrictUtf8;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.function.Function;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.ValueMapper;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;

/**
 * {@code text.raw} to {@code tokens} and {@code text.rejected}. {@link #build()} is the whole data
 * flow; the stages are small functions below it. Every raw record ends as exactly one output
 * record: a stage either passes the document on or rejects it with a reason, and a rejection
 * skips the remaining stages.
 */
public final class TokenizerTopology {

    private final StreamConfig config;
    private final Tokenizer tokenizer;
    /** The record header a producer may name its source in, when the value does not. */
    static final String SOURCE_HEADER = "source";

    private final StreamMetrics metrics;
    private final QualityFilter filter;
    private final MinHash minHash;

    public TokenizerTopology(StreamConfig config, Tokenizer tokenizer, StreamMetrics metrics) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.metrics = metrics;
        this.filter = new QualityFilter(config.minChars(), config.maxChars(), config.minLetterShare(),
                config.maxRepeatedLineShare(), config.blocklist());
        this.minHash = new MinHash(config.shingleWords(), config.bands(), config.rows());
    }

    public Topology build() {
        StreamsBuilder builder = new StreamsBuilder();

        Map<String, KStream<String, Verdict<Candidate>>> cleaned = builder
                .stream(config.topics().name(Topic.TEXT_RAW), Consumed.with(Serdes.String(), Serdes.ByteArray()))
                .processValues(Parse::new, Named.as("parse"))
                .mapValues(stage("html", this::stripHtml), Named.as("html"))
                .mapValues(stage("normalize", this::normalize), Named.as("normalize"))
                .mapValues(stage("filter", filter::check), Named.as("filter"))
                .mapValues(stage("redact", this::redact), Named.as("redact"))
                .mapValues(stage("tokenize", this::tokenize), Named.as("tokenize"))
                .split(Named.as("cleaned-"))
                .branch((id, verdict) -> verdict.isRejected(), Branched.as("rejected"))
                .defaultBranch(Branched.as("kept"));

        // Duplicates must meet in one task: key by content, then repartition into the dedup topic.
        Deduplicator.stores(config.dedupRetention()).forEach(builder::addStateStore);
        KStream<String, Verdict<Candidate>> judged = cleaned.get("cleaned-kept")
                .map((id, verdict) -> {
                    Candidate doc = ((Verdict.Pass<Candidate>) verdict).value();
                    return KeyValue.pair(doc.contentHash(), doc);
                }, Named.as("key-by-content"))
                .repartition(Repartitioned.with(Serdes.ByteArray(), Candidate.CODEC.serde())
                        .withName("dedup").withNumberOfPartitions(config.dedupPartitions()))
                .process(() -> new Deduplicator(minHash, config.nearDedup(), config.nearThreshold()), Named.as("dedup"),
                        Deduplicator.EXACT_STORE, Deduplicator.BANDS_STORE, Deduplicator.SIGNATURES_STORE);

        KStream<String, Verdict<Candidate>> outcomes = cleaned.get("cleaned-rejected").merge(judged, Named.as("outcomes"));
        outcomes.filter((id, verdict) -> verdict.isRejected(), Named.as("rejections"))
                .processValues(() -> new Emit<>(this::toRejected), Named.as("emit-rejected"))
                .to(config.topics().name(Topic.TEXT_REJECTED), Produced.with(Serdes.String(), RejectedText.CODEC.serde()));
        outcomes.filterNot((id, verdict) -> verdict.isRejected(), Named.as("accepted"))
                .processValues(() -> new Emit<>(this::toTokens), Named.as("emit-tokens"))
                .to(config.topics().name(Topic.TOKENS), Produced.with(Serdes.String(), TokenRecord.CODEC.serde()));

        return builder.build();
    }

    // --- stages --------------------------------------------------------------------------------

    /**
     * What the producer sent, as a document: the value with what it leaves out taken from the
     * record's key, timestamp and {@code source} header ({@link RawText#fromRecord}).
     */
    Verdict<Document> parse(String key, byte[] value, long timestamp, Headers headers) {
        metrics.recordIn(value == null ? 0 : value.length);
        Header source = headers.lastHeader(SOURCE_HEADER);
        try {
            RawText raw = RawText.fromRecord(key, value, timestamp,
                    source == null || source.value() == null ? null : StrictUtf8.decodeOrNull(source.value()));
            return Verdict.pass(new Document(raw.id(), raw.source(), raw.ts(), raw.meta(), raw.text(), value));
        } catch (SerializationException e) {
            return Verdict.reject(Reason.MALFORMED, e.getMessage(), value == null ? new byte[0] : value);
        }
    }

    private final class Parse implements FixedKeyProcessor<String, byte[], Verdict<Document>> {
        private FixedKeyProcessorContext<String, Verdict<Document>> context;

        @Override
        public void init(FixedKeyProcessorContext<String, Verdict<Document>> context) {
            this.context = context;
        }

        @Override
        public void process(FixedKeyRecord<String, byte[]> record) {
            context.forward(record.withValue(parse(record.key(), record.value(), record.timestamp(), record.headers())));
        }
    }

    Verdict<Document> stripHtml(Document doc) {
        return Verdict.pass(HtmlText.isHtml(doc.text(), doc.source(), doc.meta()) ? doc.withText(HtmlText.toText(doc.text())) : doc);
    }

    Verdict<Document> normalize(Document doc) {
        return Verdict.pass(doc.withText(TextNormalizer.normalize(doc.text())));
    }

    Verdict<Document> redact(Document doc) {
        if (!config.redact()) {
            return Verdict.pass(doc);
        }
        PiiRedactor.Result result = PiiRedactor.redact(doc.text());
        metrics.redacted(result.counts());
        return Verdict.pass(doc.withText(result.text()));
    }

    Verdict<Candidate> tokenize(Document doc) {
        String text = doc.text();
        byte[] hash = Binary.sha256(text.getBytes(StandardCharsets.UTF_8));
        int[] signature = config.nearDedup() ? minHash.signature(text) : new int[0];
        return Verdict.pass(new Candidate(doc.id(), hash, signature, tokenizer.encode(text), doc.original()));
    }

    // --- outputs -------------------------------------------------------------------------------

    private RejectedText toRejected(Verdict<Candidate> verdict, long timestamp) {
        RejectedText rejected = ((Verdict.Reject<Candidate>) verdict).rejected();
        metrics.rejected(rejected.reason(), timestamp);
        return rejected;
    }

    private TokenRecord toTokens(Verdict<Candidate> verdict, long timestamp) {
        Candidate doc = ((Verdict.Pass<Candidate>) verdict).value();
        metrics.tokensOut(doc.tokens().length, timestamp);
        return new TokenRecord(tokenizer.id(), Split.of(doc.id(), config.validationShare()), doc.tokens());
    }

    /**
     * A timed stage over documents. An unexpected exception rejects the document as
     * {@code processing_error} instead of failing the stream: one odd record must not stop the
     * partition behind it.
     */
    private <R> ValueMapper<Verdict<Document>, Verdict<R>> stage(String name, Function<Document, Verdict<R>> fn) {
        DistributionDataPoint timer = metrics.stage(name);
        return verdict -> verdict.then(doc -> {
            long start = System.nanoTime();
            try {
                return fn.apply(doc);
            } catch (RuntimeException e) {
                return Verdict.reject(Reason.PROCESSING_ERROR, name + " failed: " + e, doc.original());
            } finally {
                timer.observe((System.nanoTime() - start) / 1e9);
            }
        });
    }

    /** Maps a verdict to its output value, with the record timestamp for the latency metric. */
    private interface Output<V> {
        V apply(Verdict<Candidate> verdict, long timestamp);
    }

    private static final class Emit<V> implements FixedKeyProcessor<String, Verdict<Candidate>, V> {
        private final Output<V> output;
        private FixedKeyProcessorContext<String, V> context;

        Emit(Output<V> output) {
            this.output = output;
        }

        @Override
        public void init(FixedKeyProcessorContext<String, V> context) {
            this.context = context;
        }

        @Override
        public void process(FixedKeyRecord<String, Verdict<Candidate>> record) {
            context.forward(record.withValue(output.apply(record.value(), record.timestamp())));
        }
    }
}
