package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.checkpoint.CheckpointStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelCheckpointTest {

    private static final String TOKENIZER = "ab".repeat(32);
    private static final GptConfig CONFIG = new GptConfig(20, 8, 2, 2, 16, 4, 0.0, false);

    @TempDir
    Path dir;

    @Test
    void savedAndLoadedModelsGiveIdenticalLogitsAndResumeTheOptimizer() throws Exception {
        Gpt gpt = Gpt.initialize(CONFIG, 4);
        AdamW adam = new AdamW(OptimizerConfig.defaults());
        int[][] batch = batch(new Random(1));
        for (int s = 0; s < 3; s++) {
            adam.apply(gpt.parameters(), gpt.gradients(batch, batch, null).byParameter());
        }
        CheckpointStore store = CheckpointStore.open(dir);
        var state = new ModelCheckpoint.State(TOKENIZER, 3, null, Map.of("flywheel.tokens", Map.of(0, 17L, 1, 4L)),
                Map.of("val_loss", 2.5));
        CheckpointStore.Stored stored = ModelCheckpoint.save(store, 1, gpt, adam, state);

        ModelCheckpoint.Loaded loaded = ModelCheckpoint.load(stored.folder(), stored.sha256());
        int[] tokens = {3, 1, 4, 1, 5, 9, 2, 6};
        float[][] before = new Inference(gpt).logits(tokens);
        float[][] after = new Inference(loaded.model()).logits(tokens);
        for (int t = 0; t < tokens.length; t++) {
            assertArrayEquals(before[t], after[t], 0f, "position " + t);
        }
        assertEquals(state, loaded.state());
        assertEquals(3, loaded.optimizer().steps());

        // The resumed optimizer takes the same next step as the original.
        adam.apply(gpt.parameters(), gpt.gradients(batch, batch, null).byParameter());
        loaded.optimizer().apply(loaded.model().parameters(), loaded.model().gradients(batch, batch, null).byParameter());
        assertArrayEquals(gpt.parameters().get("h1.mlp.wfc").reshape(-1).toFloatVector(),
                loaded.model().parameters().get("h1.mlp.wfc").reshape(-1).toFloatVector(), 0f);
    }

    @Test
    void aChangedByteOrAWrongManifestHashIsRefused() throws Exception {
        CheckpointStore store = CheckpointStore.open(dir);
        Gpt gpt = Gpt.initialize(CONFIG, 4);
        var state = new ModelCheckpoint.State(TOKENIZER, 0, null, Map.of(), Map.of());
        CheckpointStore.Stored stored = ModelCheckpoint.save(store, 1, gpt, null, state);

        assertThrows(CheckpointStore.CorruptCheckpointException.class,
                () -> ModelCheckpoint.load(stored.folder(), "00".repeat(32)));
        Path weights = stored.file("weights.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        bytes[bytes.length - 3] ^= 1;
        Files.write(weights, bytes, StandardOpenOption.TRUNCATE_EXISTING);
        var e = assertThrows(CheckpointStore.CorruptCheckpointException.class, () -> ModelCheckpoint.load(stored.folder(), null));
        assertTrue(e.getMessage().contains("weights.safetensors"), e.getMessage());
    }

    @Test
    void versionsArePrunedKeepingTheNewestAndTheNamedOnesAndLeftoversAreCleaned() throws Exception {
        CheckpointStore store = CheckpointStore.open(dir);
        Gpt gpt = Gpt.initialize(CONFIG, 4);
        for (long v = 1; v <= 5; v++) {
            ModelCheckpoint.save(store, v, gpt, null, new ModelCheckpoint.State(TOKENIZER, v, v - 1 == 0 ? null : v - 1, Map.of(), Map.of()));
        }
        assertThrows(java.nio.file.FileAlreadyExistsException.class,
                () -> ModelCheckpoint.save(store, 5, gpt, null, new ModelCheckpoint.State(TOKENIZER, 5, null, Map.of(), Map.of())));
        assertEquals(List.of(1L, 3L), store.prune(2, Set.of(2L)));
        assertEquals(List.of(2L, 4L, 5L), store.versions());
        Files.createDirectory(dir.resolve(".tmp-6-crashed"));
        assertEquals(5L, CheckpointStore.open(dir).latest().orElseThrow());
        assertTrue(Files.notExists(dir.resolve(".tmp-6-crashed")));
    }

    private static int[][] batch(Random random) {
        int[][] out = new int[2][CONFIG.contextLength()];
        for (int[] row : out) {
            for (int t = 0; t < row.length; t++) {
                row[t] = random.nextInt(CONFIG.vocabSize());
            }
        }
        return out;
    }
}
