package io.flywheel.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.checkpoint.SafeTensors;
import io.flywheel.core.serde.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A model's checkpoint in a {@link CheckpointStore} folder:
 * <pre>
 *   config.json            GptConfig (every hyper-parameter of the network)
 *   weights.safetensors    the parameters, float32, by name (Gpt.shapes order)
 *   optimizer.json         OptimizerConfig
 *   optimizer.safetensors  AdamW's moments, "m.NAME" and "v.NAME"; metadata "step"
 *   manifest.json          every file's size and sha256, plus: tokenizer (sha256 of the tokenizer
 *                          file), step, parent, offsets {topic: {partition: next offset}}, metrics
 * </pre>
 * Loading verifies every hash first, and gives logits bit-identical to the saved model's.
 */
public final class ModelCheckpoint {

    /** What the trainer knows beside the weights, stored in the manifest. */
    public record State(String tokenizer, long step, Long parent, Map<String, Map<Integer, Long>> offsets,
                        Map<String, Double> metrics) {}

    /** A loaded checkpoint. {@code optimizer} is present when the checkpoint holds one. */
    public record Loaded(CheckpointStore.Stored stored, Gpt model, AdamW optimizer, State state) {}

    private ModelCheckpoint() {}

    public static CheckpointStore.Stored save(CheckpointStore store, long version, Gpt model, AdamW optimizer, State state)
            throws IOException {
        return save(store, version, model, optimizer, state, Map.of());
    }

    /**
     * Saves with extra files of the caller's own (the trainer's stream position), hashed in the
     * same manifest and written in the same atomic step.
     */
    public static CheckpointStore.Stored save(CheckpointStore store, long version, Gpt model, AdamW optimizer, State state,
                                              Map<String, CheckpointStore.FileWriter> extraFiles) throws IOException {
        Map<String, CheckpointStore.FileWriter> files = new LinkedHashMap<>();
        files.put("config.json", out -> out.write(model.config().toJson()));
        files.put("weights.safetensors", out -> SafeTensors.write(out, tensors(model.parameters(), ""), Map.of()));
        if (optimizer != null) {
            files.put("optimizer.json", out -> out.write(optimizer.config().toJson()));
            Map<String, SafeTensors.Tensor> moments = new LinkedHashMap<>(tensors(optimizer.firstMoments(), "m."));
            moments.putAll(tensors(optimizer.secondMoments(), "v."));
            files.put("optimizer.safetensors", out -> SafeTensors.write(out, moments, Map.of("step", Long.toString(optimizer.steps()))));
        }
        extraFiles.forEach((name, writer) -> {
            if (files.containsKey(name)) {
                throw new IllegalArgumentException(name + " is a model file");
            }
            files.put(name, writer);
        });
        ObjectNode meta = Json.object();
        meta.put("tokenizer", state.tokenizer()).put("step", state.step());
        if (state.parent() == null) {
            meta.putNull("parent");
        } else {
            meta.put("parent", state.parent());
        }
        Json.putOffsets(meta, "offsets", state.offsets());
        Json.putNumbers(meta, "metrics", state.metrics());
        meta.put("parameters", model.config().parameterCount());
        return store.write(version, files, meta);
    }

    /** Loads a folder after verifying it (and its manifest hash, when {@code expectedSha256} is given). */
    public static Loaded load(Path folder, String expectedSha256) throws IOException {
        Weights w = loadWeights(folder, expectedSha256);
        Gpt model = Gpt.withWeights(w.config(), w.weights());
        AdamW optimizer = null;
        if (Files.exists(w.stored().file("optimizer.safetensors"))) {
            OptimizerConfig oc = OptimizerConfig.fromJson(Files.readAllBytes(w.stored().file("optimizer.json")));
            SafeTensors.Contents moments = SafeTensors.read(w.stored().file("optimizer.safetensors"));
            optimizer = AdamW.resume(oc, arrays(moments.tensors(), "m."), arrays(moments.tensors(), "v."),
                    Long.parseLong(moments.metadata().get("step")));
        }
        return new Loaded(w.stored(), model, optimizer, w.state());
    }

    /** A checkpoint's network alone, for inference: no training graph, no optimizer state. */
    public record Weights(CheckpointStore.Stored stored, GptConfig config, Map<String, INDArray> weights, State state) {}

    /** Verifies a folder like {@link #load} and reads only what inference needs. */
    public static Weights loadWeights(Path folder, String expectedSha256) throws IOException {
        CheckpointStore.Stored stored = CheckpointStore.verify(folder, expectedSha256);
        GptConfig config = GptConfig.fromJson(Files.readAllBytes(stored.file("config.json")));
        Map<String, INDArray> weights = arrays(SafeTensors.read(stored.file("weights.safetensors")).tensors(), "");
        Json.Fields m = Json.fields(stored.manifest());
        if (!m.contains("parent")) {
            throw new CheckpointStore.CorruptCheckpointException(folder + ": the manifest has no parent");
        }
        State state = new State(m.string("tokenizer"), m.nonNegativeInteger("step"), m.optionalInteger("parent"),
                m.offsets("offsets"), m.optionalNumberMap("metrics"));
        return new Weights(stored, config, weights, state);
    }

    private static Map<String, SafeTensors.Tensor> tensors(Map<String, INDArray> arrays, String prefix) {
        Map<String, SafeTensors.Tensor> out = new LinkedHashMap<>();
        arrays.forEach((name, a) -> out.put(prefix + name,
                new SafeTensors.Tensor(a.shape(), a.dup('c').reshape(-1).toFloatVector())));
        return out;
    }

    private static Map<String, INDArray> arrays(Map<String, SafeTensors.Tensor> tensors, String prefix) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        tensors.forEach((name, t) -> {
            if (name.startsWith(prefix)) {
                out.put(name.substring(prefix.length()), Nd4j.create(t.values(), t.shape(), 'c'));
            }
        });
        return out;
    }
}
