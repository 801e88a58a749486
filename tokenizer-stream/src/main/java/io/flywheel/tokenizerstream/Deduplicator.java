package io.flywheel.tokenizerstream;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Set;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * Exact and near deduplication against everything seen within the retention, in three persistent
 * window stores (RocksDB, changelogged, so they survive restarts and move with their partition):
 * <ul>
 *   <li>{@value #EXACT_STORE}: content hash to the id of the first document with that content;</li>
 *   <li>{@value #BANDS_STORE}: LSH band key to the first document that had it;</li>
 *   <li>{@value #SIGNATURES_STORE}: document id to its MinHash signature, to confirm candidates.</li>
 * </ul>
 * Window stores drop whole segments once they are older than the retention, which bounds the
 * state without a scan. Input is keyed by content hash, so exact duplicates always meet here;
 * near-duplicates meet when they share a partition of the dedup topic (one, by default).
 */
final class Deduplicator implements Processor<byte[], Candidate, String, Verdict<Candidate>> {

    static final String EXACT_STORE = "dedup-exact";
    static final String BANDS_STORE = "dedup-bands";
    static final String SIGNATURES_STORE = "dedup-signatures";

    private final MinHash minHash;
    private final double threshold;
    private final boolean nearEnabled;

    private ProcessorContext<String, Verdict<Candidate>> context;
    private WindowStore<Bytes, byte[]> exact;
    private WindowStore<Bytes, byte[]> bands;
    private WindowStore<Bytes, byte[]> signatures;

    /** With {@code nearEnabled} false only exact duplicates are rejected (and no bands are stored). */
    Deduplicator(MinHash minHash, boolean nearEnabled, double threshold) {
        this.minHash = minHash;
        this.nearEnabled = nearEnabled;
        this.threshold = threshold;
    }

    static Set<StoreBuilder<?>> stores(Duration retention) {
        return Set.of(store(EXACT_STORE, retention), store(BANDS_STORE, retention), store(SIGNATURES_STORE, retention));
    }

    private static StoreBuilder<WindowStore<Bytes, byte[]>> store(String name, Duration retention) {
        // Window size = retention, as in Kafka's own deduplication example: one window per key.
        return Stores.windowStoreBuilder(Stores.persistentWindowStore(name, retention, retention, false),
                Serdes.Bytes(), Serdes.ByteArray());
    }

    @Override
    public void init(ProcessorContext<String, Verdict<Candidate>> context) {
        this.context = context;
        this.exact = context.getStateStore(EXACT_STORE);
        this.bands = context.getStateStore(BANDS_STORE);
        this.signatures = context.getStateStore(SIGNATURES_STORE);
    }

    @Override
    public void process(Record<byte[], Candidate> record) {
        Candidate doc = record.value();
        long ts = record.timestamp();
        context.forward(record.withKey(doc.id()).withValue(judge(doc, ts)));
    }

    private Verdict<Candidate> judge(Candidate doc, long ts) {
        Bytes hash = Bytes.wrap(doc.contentHash());
        String first = firstValue(exact, hash);
        if (first != null) {
            String detail = first.equals(doc.id()) ? "document " + doc.id() + " was already seen with the same content"
                    : "same content as document " + first;
            return Verdict.reject(Reason.DUPLICATE, detail, doc.original());
        }
        // Each band is looked up once: its owner names a candidate, and a band without one is stored.
        Bytes[] bandKeys = new Bytes[nearEnabled ? minHash.bands() : 0];
        String[] bandOwners = new String[bandKeys.length];
        for (int b = 0; b < bandKeys.length; b++) {
            bandKeys[b] = bandKey(doc.signature(), b);
            bandOwners[b] = firstValue(bands, bandKeys[b]);
        }
        String similar = nearDuplicateOf(doc, bandOwners);
        if (similar != null) {
            return Verdict.reject(Reason.NEAR_DUPLICATE, similar, doc.original());
        }
        byte[] id = doc.id().getBytes(StandardCharsets.UTF_8);
        exact.put(hash, id, ts);
        if (nearEnabled) {
            for (int b = 0; b < bandKeys.length; b++) {
                if (bandOwners[b] == null) {
                    bands.put(bandKeys[b], id, ts);
                }
            }
            ByteBuffer signature = ByteBuffer.allocate(4 * doc.signature().length);
            signature.asIntBuffer().put(doc.signature());
            signatures.put(Bytes.wrap(id), signature.array(), ts);
        }
        return Verdict.pass(doc);
    }

    /**
     * A detail naming the first band owner whose signature is similar enough, or null when none
     * is (and always when near dedup is off: there are no band owners then).
     */
    private String nearDuplicateOf(Candidate doc, String[] bandOwners) {
        Set<String> candidates = new LinkedHashSet<>();
        for (String owner : bandOwners) {
            if (owner != null && !owner.equals(doc.id())) {
                candidates.add(owner);
            }
        }
        for (String other : candidates) {
            byte[] stored = firstBytes(signatures, Bytes.wrap(other.getBytes(StandardCharsets.UTF_8)));
            if (stored == null) {
                continue;
            }
            int[] signature = new int[stored.length / 4];
            ByteBuffer.wrap(stored).asIntBuffer().get(signature);
            double similarity = MinHash.similarity(doc.signature(), signature);
            if (similarity >= threshold) {
                return String.format(Locale.ROOT, "estimated Jaccard similarity %.2f with document %s (threshold %.2f)",
                        similarity, other, threshold);
            }
        }
        return null;
    }

    private Bytes bandKey(int[] signature, int band) {
        return Bytes.wrap(ByteBuffer.allocate(8).putLong(minHash.bandHash(signature, band)).array());
    }

    private static String firstValue(WindowStore<Bytes, byte[]> store, Bytes key) {
        byte[] value = firstBytes(store, key);
        return value == null ? null : new String(value, StandardCharsets.UTF_8);
    }

    /** The oldest value under the key still within retention, whatever its timestamp. */
    private static byte[] firstBytes(WindowStore<Bytes, byte[]> store, Bytes key) {
        try (WindowStoreIterator<byte[]> it = store.fetch(key, 0L, Long.MAX_VALUE)) {
            return it.hasNext() ? it.next().value : null;
        }
    }
}
