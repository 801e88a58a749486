package io.flywheel.serving;

import static io.flywheel.serving.CompletionsTest.HTTP;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.topics.Topic;
import io.flywheel.model.Gpt;
import io.flywheel.model.ModelCheckpoint;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import java.io.RandomAccessFile;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

/**
 * The promoted checkpoint's weights are damaged before serving starts: serving serves the newest
 * promoted version before it that verifies, stays ready, and counts the refusal.
 */
@QuarkusTest
@WithTestResource(value = DamagedCheckpointTest.DamagedStore.class, initArgs = @ResourceArg(name = "model-name", value = DamagedCheckpointTest.MODEL))
class DamagedCheckpointTest {

    static final String MODEL = "damaged-model";

    @TestHTTPResource("/")
    URI root;

    @Test
    void theNewestPromotedVersionThatVerifiesServes() throws Exception {
        CompletionsTest.awaitReady(root);
        HttpResponse<String> models = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/models"))
                .header("Authorization", "Bearer " + ServingResource.API_KEY).build(), HttpResponse.BodyHandlers.ofString());
        JsonNode model = CompletionsTest.JSON.readTree(models.body()).path("data").path(0);
        assertEquals(1, model.path("model_version").asLong(), models.body());
        HttpResponse<String> answer = HTTP.send(HttpRequest.newBuilder(root.resolve("/v1/completions"))
                .header("Authorization", "Bearer " + ServingResource.API_KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"" + MODEL + "\",\"prompt\":\"the\",\"max_tokens\":3}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, answer.statusCode(), answer.body());
        String metrics = HTTP.send(HttpRequest.newBuilder(root.resolve("/q/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        assertTrue(metrics.contains("flywheel_serving_swap_failures_total{reason=\"verify\"} 1.0"), "the damage is counted");
    }

    /** The shared broker and tokenizer, with a store of its own: versions 1 and 2 promoted, 2 then damaged. */
    public static class DamagedStore extends ServingResource {
        @Override
        public Map<String, String> start() {
            Map<String, String> props = new HashMap<>(super.start());
            try {
                CheckpointStore store = CheckpointStore.open(Files.createTempDirectory("flywheel-damaged").resolve("checkpoints"));
                CheckpointEvent last = null;
                for (long version = 1; version <= 2; version++) {
                    var stored = ModelCheckpoint.save(store, version, Gpt.initialize(config, version), null,
                            new ModelCheckpoint.State(tokenizer.id(), version, version == 1 ? null : version - 1, Map.of(), Map.of()));
                    store.recordPromotion(version, stored.sha256());
                    last = new CheckpointEvent(version, stored.folder().toUri().toString(), stored.sha256(), version == 1 ? null : version - 1,
                            tokenizer.id(), Map.of(), Map.of());
                }
                Path weights = store.folder(2).resolve("weights.safetensors");
                try (RandomAccessFile f = new RandomAccessFile(weights.toFile(), "rw")) {
                    f.seek(f.length() / 2);
                    int b = f.read();
                    f.seek(f.length() / 2);
                    f.write(b ^ 0xFF);
                }
                try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(broker.producerProperties())) {
                    producer.send(new ProducerRecord<>(topics.name(Topic.CHECKPOINTS), DamagedCheckpointTest.MODEL.getBytes(StandardCharsets.UTF_8),
                            CheckpointEvent.CODEC.encode(last))).get();
                }
            } catch (Exception e) {
                throw new IllegalStateException("cannot set up the damaged store", e);
            }
            return props;
        }
    }
}
