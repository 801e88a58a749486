package io.flywheel.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.topics.Topic;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import io.flywheel.testsupport.Scrape;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Learning from preferences against a real broker: pairs on {@code preferences} that follow a hidden
 * rule (the chosen answer finishes its sentence, the rejected one stops mid-way) are trained between
 * language steps; the reward head's accuracy on held-out pairs, reported at checkpoints and in the
 * manifest, climbs well above chance; and a restarted trainer resumes with its held-out pairs.
 */
@ExtendWith(KafkaBrokerExtension.class)
class TrainerPreferenceTest {

    private static final Duration DEADLINE = Duration.ofMinutes(3);

    @Test
    void theRewardHeadLearnsAHiddenPreferenceFromThePreferencesTopic(KafkaBroker broker, @TempDir Path dir) throws Exception {
        TrainerFixture fixture = new TrainerFixture(broker, dir);
        fixture.produce(300, 3, 5);

        Map<String, String> s = fixture.settings(dir.resolve("ckpt"));
        s.put("pref.every-steps", "1");
        s.put("pref.batch", "16");
        s.put("pref.lr-scale", "1");      // the tiny body learns the rule at the language rate; the default 0.1 takes minutes
        s.put("checkpoint.every-steps", "20");
        Trainer trainer = Trainer.start(TrainerFixture.config(s), fixture.tokenizer);
        Thread running = new Thread(trainer::run, "trainer");
        running.start();
        Scrape m;
        int sent;
        try {
            // Feedback arrives while the language model trains: pairs, a bad record, then more text.
            sent = producePairs(fixture, 400);
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(broker.producerProperties())) {
                producer.send(new ProducerRecord<>(fixture.topics.name(Topic.PREFERENCES), "bad".getBytes(StandardCharsets.UTF_8),
                        new byte[] {1, 2})).get();
            }
            fixture.produce(3000, 4, 5);
            int all = sent;
            waitFor(() -> Scrape.of(trainer.metricsPort()).sum("flywheel_trainer_preference_records_total") == all,
                    "every preference record read");
            waitFor(() -> Scrape.of(trainer.metricsPort()).get("flywheel_trainer_reward_accuracy") >= 0.9, "held-out reward accuracy 0.9");
            // The bad record comes after the pairs: with a fast enough step, the accuracy above
            // is reached before the trainer has read that far.
            waitFor(() -> Scrape.of(trainer.metricsPort()).get("flywheel_trainer_records_refused_total{reason=\"malformed\"}") >= 1,
                    "the malformed preference record refused");
            m = Scrape.of(trainer.metricsPort());
        } finally {
            trainer.requestStop();
            assertTrue(trainer.awaitStop(DEADLINE));
            trainer.close();
        }
        double heldOut = m.get("flywheel_trainer_heldout_pairs");
        assertTrue(heldOut >= 40 && heldOut <= 130, "about a fifth of the pairs are held out: " + heldOut);
        assertEquals(sent, m.get("flywheel_trainer_preference_records_total{use=\"train\"}")
                + m.get("flywheel_trainer_preference_records_total{use=\"heldout\"}"));
        assertTrue(m.get("flywheel_trainer_preference_steps_total") >= 5);
        assertTrue(m.get("flywheel_trainer_steps_total") >= 5, "language steps go on between preference steps");
        assertEquals(1, m.get("flywheel_trainer_records_refused_total{reason=\"malformed\"}"));

        // The checkpoint carries the accuracy and the held-out pairs; a restart measures the same pairs.
        CheckpointStore store = CheckpointStore.open(dir.resolve("ckpt"));
        long last = store.versions().get(store.versions().size() - 1);
        var stored = store.open(last).manifest().path("metrics");
        assertTrue(stored.path("reward_accuracy").asDouble() >= 0.85, stored.toString());
        double storedHeldOut = stored.path("heldout_pairs").asDouble();
        Trainer resumed = Trainer.start(TrainerFixture.config(s), fixture.tokenizer);
        Thread again = new Thread(resumed::run, "resumed");
        again.start();
        try {
            waitFor(() -> Scrape.of(resumed.metricsPort()).get("flywheel_trainer_checkpoint_version") > last, "a checkpoint after the restart");
            assertEquals(storedHeldOut, Scrape.of(resumed.metricsPort()).get("flywheel_trainer_heldout_pairs"));
        } finally {
            resumed.requestStop();
            assertTrue(resumed.awaitStop(DEADLINE));
            resumed.close();
        }
    }

    /** Chat prompts with two answers: the chosen one ends its sentence, the rejected one is cut short. */
    private static int produce(TrainerFixture f, KafkaProducer<byte[], byte[]> producer, SplittableRandom r, int i) throws Exception {
        String question = TrainerFixture.text(r, 1);
        String answer = TrainerFixture.text(r, 1);
        String cut = answer.substring(0, answer.lastIndexOf(' '));
        int[] prompt = f.tokenizer.encodeWithSpecials("<|endoftext|><|user|>" + question + "<|end|><|assistant|>");
        int end = f.tokenizer.specialId("<|end|>");
        PreferenceRecord pair = PreferenceRecord.pair(f.tokenizer.id(), prompt, append(f.tokenizer.encode(answer), end),
                append(f.tokenizer.encode(cut), end));
        producer.send(new ProducerRecord<>(f.topics.name(Topic.PREFERENCES), ("p" + i).getBytes(StandardCharsets.UTF_8),
                PreferenceRecord.CODEC.encode(pair))).get();
        return 1;
    }

    private static int producePairs(TrainerFixture f, int n) throws Exception {
        SplittableRandom r = new SplittableRandom(17);
        int sent = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(f.broker.producerProperties())) {
            for (int i = 0; i < n; i++) {
                sent += produce(f, producer, r, i);
            }
        }
        return sent;
    }

    private static int[] append(int[] ids, int id) {
        int[] out = java.util.Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = id;
        return out;
    }

    private static void waitFor(BooleanSupplier condition, String what) throws InterruptedException {
        TrainerFixture.waitFor(condition, what, DEADLINE);
    }
}
