package io.flywheel.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Binary;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * A promoted checkpoint, on the compacted {@code flywheel.checkpoints}, keyed by model name. The
 * trainer publishes it only after the files are durable and the quality gate passed; serving
 * verifies {@link #sha256} before it loads.
 *
 * @param version   increasing checkpoint version, from 1
 * @param uri       where the checkpoint lives ({@code file:///...} or an object store URI)
 * @param sha256    hash of the checkpoint manifest
 * @param parent    the version it was trained from, or {@code null} for the first
 * @param tokenizer sha256 of the tokenizer file the model uses
 * @param metrics   evaluation metrics at checkpoint time (validation loss, ...)
 * @param offsets   the consumer position it was trained to: topic -> partition -> next offset
 */
public record CheckpointEvent(long version, String uri, String sha256, Long parent, String tokenizer,
                              Map<String, Double> metrics, Map<String, Map<Integer, Long>> offsets) {

    public CheckpointEvent {
        if (version < 1) {
            throw new RecordFormatException("version", "must be >= 1, found " + version);
        }
        Objects.requireNonNull(uri, "uri");
        Binary.sha256FromHex("sha256", sha256);
        Binary.sha256FromHex("tokenizer", tokenizer);
        metrics = Map.copyOf(metrics);
        Map<String, Map<Integer, Long>> copy = new TreeMap<>();
        offsets.forEach((topic, partitions) -> copy.put(topic, Map.copyOf(partitions)));
        offsets = Map.copyOf(copy);
    }

    public static final Codec<CheckpointEvent> CODEC = new Codec<>() {
        @Override
        public byte[] encode(CheckpointEvent e) {
            ObjectNode node = Json.object().put("version", e.version).put("uri", e.uri).put("sha256", e.sha256);
            if (e.parent == null) {
                node.putNull("parent");
            } else {
                node.put("parent", e.parent);
            }
            node.put("tokenizer", e.tokenizer);
            Json.putNumbers(node, "metrics", e.metrics);
            Json.putOffsets(node, "offsets", e.offsets);
            return Json.write(node);
        }

        @Override
        public CheckpointEvent decode(byte[] bytes) {
            Json.Fields f = Json.read(bytes);
            long version = f.integer("version");
            String uri = f.nonBlankString("uri");
            String sha = f.string("sha256");
            if (!f.contains("parent")) {
                throw new RecordFormatException("parent", "is missing (null for a first checkpoint)");
            }
            Long parent = f.optionalInteger("parent");
            String tokenizer = f.string("tokenizer");
            Map<String, Double> metrics = f.optionalNumberMap("metrics");
            Map<String, Map<Integer, Long>> offsets = f.offsets("offsets");
            f.done();
            return new CheckpointEvent(version, uri, sha, parent, tokenizer, metrics, offsets);
        }
    };
}
