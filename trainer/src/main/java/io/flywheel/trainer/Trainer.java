package io.flywheel.trainer;

import io.flywheel.core.checkpoint.CheckpointLog;
import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.cli.UsageError;
import io.flywheel.core.metrics.BrokerProbe;
import io.flywheel.core.metrics.MetricsServer;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.serde.RecordFormatException;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.topics.Topic;
import io.flywheel.model.AdamW;
import io.flywheel.model.Gpt;
import io.flywheel.model.GptConfig;
import io.flywheel.model.Inference;
import io.flywheel.model.MatmulPeak;
import io.flywheel.model.ModelCheckpoint;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The online trainer as a service: reads {@code tokens} and {@code preferences}, trains the
 * language model and, interleaved, the reward head and the policy from preferences; every N steps
 * or T seconds it evaluates, writes a checkpoint and asks the quality gate whether to promote it on
 * {@code checkpoints}.
 *
 * <p>Exactly once: the trainer is the only reader of its position. It assigns every partition of
 * {@code tokens} itself (no consumer group, no committed offsets); each checkpoint stores the
 * consumer positions together with the tokens read but not yet trained ({@link StreamState}). On
 * start it loads the latest checkpoint and seeks to its positions, so after a crash the windows
 * trained since that checkpoint are trained again (their effect on the weights was lost with the
 * process) and no window is skipped or trained twice in the model's history.
 */
public final class Trainer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(Trainer.class);
    /** How long a topic may take to appear in metadata after it was created. */
    private static final Duration TOPIC_APPEARS = Duration.ofSeconds(5);
    private static final Duration KAFKA_TIMEOUT = Duration.ofSeconds(30);

    private final TrainerConfig config;
    private final Tokenizer tokenizer;
    private final CheckpointStore store;
    private final OnlineTrainer core;
    private final PreferenceLearner preferences;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final KafkaProducer<byte[], byte[]> producer;
    private final MetricsServer metricsServer;
    private final TrainerMetrics metrics;
    private final QualityGate gate;
    private final String tokensTopic;
    private final String preferencesTopic;
    private final List<TopicPartition> partitions;          // tokens, then preferences
    private final List<TopicPartition> tokenPartitions;
    private final double flopsPerToken;
    private final double peakFlops;
    private final BufferedWriter trace;
    private final CountDownLatch finished = new CountDownLatch(1);
    private volatile boolean stopping;
    /** Readiness needs the broker too: a trainer cut off from it trains nothing new. */
    private final BrokerProbe broker;
    /** Checkpoints that failed in a row, and when the next may be tried (System.nanoTime). */
    private int checkpointFailures;
    private long nextCheckpointAttempt;
    /** Versions found not to verify: hashed once, counted once. */
    private final Set<Long> damaged = new HashSet<>();
    private volatile boolean started;

    private long lastVersion;                 // last checkpoint written or resumed from; 0: none
    private long promotedVersion;             // 0: nothing promoted yet
    private Inference reference;              // the promoted model, frozen, for the gate
    private long referenceRevision = -1;      // evaluation-set revision referenceLoss was measured on
    private Double referenceLoss;
    private long referencePairsRevision = -1; // held-out pairs revision referenceAccuracy was measured on
    private Double referenceAccuracy;
    private long languageStepsSincePreference;
    private long bestVersion;
    private double bestLoss = Double.POSITIVE_INFINITY;
    private long stepsSinceCheckpoint;
    private boolean positionMoved;
    private long lastCheckpointNanos = System.nanoTime();
    private double lastTrainLoss = Double.NaN;

    private Trainer(TrainerConfig config, Tokenizer tokenizer, CheckpointStore store, OnlineTrainer core,
                    PreferenceLearner preferences, Map<String, Map<Integer, Long>> resumeOffsets, long lastVersion) throws IOException {
        this.config = config;
        this.tokenizer = tokenizer;
        this.store = store;
        this.core = core;
        this.preferences = preferences;
        this.lastVersion = lastVersion;
        this.gate = new QualityGate(config.gateTolerance(), config.gateAccuracyTolerance(), config.gateMinHeldOutPairs());
        this.tokensTopic = config.topics().name(Topic.TOKENS);
        this.preferencesTopic = config.topics().name(Topic.PREFERENCES);
        GptConfig model = core.model().config();
        this.flopsPerToken = model.trainingFlopsPerToken();
        this.peakFlops = config.peakFlops() > 0 ? config.peakFlops() : MatmulPeak.measure(2048, 3);
        this.trace = config.trace() == null ? null : Files.newBufferedWriter(config.trace(), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);

        this.broker = BrokerProbe.start(config.bootstrap());
        this.metricsServer = MetricsServer.start(config.metricsHost(), config.metricsPort(),
                () -> started && !stopping && broker.reachable());
        this.metrics = new TrainerMetrics(metricsServer.registry());
        metrics.peakFlops(peakFlops);
        metrics.checkpoint(lastVersion, 0);

        this.consumer = new KafkaConsumer<>(consumerProperties());
        this.tokenPartitions = partitionsOf(tokensTopic);
        if (tokenPartitions.isEmpty()) {
            throw new UsageError("topic " + tokensTopic + " does not exist (run ./flywheel up or create the topics)");
        }
        List<TopicPartition> preferencePartitions = partitionsOf(preferencesTopic);
        if (preferencePartitions.isEmpty()) {
            log.warn("topic {} does not exist: the trainer learns from tokens only", preferencesTopic);
        }
        List<TopicPartition> all = new ArrayList<>(tokenPartitions);
        all.addAll(preferencePartitions);
        this.partitions = List.copyOf(all);
        consumer.assign(partitions);
        for (TopicPartition tp : partitions) {
            Long next = resumeOffsets.getOrDefault(tp.topic(), Map.of()).get(tp.partition());
            if (next == null) {
                consumer.seekToBeginning(List.of(tp));
            } else {
                consumer.seek(tp, next);
            }
        }
        this.producer = new KafkaProducer<>(producerProperties());
        findPromoted();
        findBest();
    }

    /**
     * The topic's partitions. A topic created a moment before can be missing from the first
     * metadata answers (seen in a test: the trainer then ignored the preferences topic for good),
     * so an empty answer is asked again for a few seconds before it counts.
     */
    private List<TopicPartition> partitionsOf(String topic) {
        long deadline = System.nanoTime() + TOPIC_APPEARS.toNanos();
        while (true) {
            List<TopicPartition> found = consumer.partitionsFor(topic, KAFKA_TIMEOUT).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            if (!found.isEmpty() || System.nanoTime() > deadline) {
                return found;
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return found;
            }
        }
    }

    /** Loads the latest checkpoint (or {@code --init}, or a new model) and connects to Kafka. */
    public static Trainer start(TrainerConfig config, Tokenizer tokenizer) throws IOException {
        CheckpointStore store = CheckpointStore.open(config.checkpointDir());
        int eot = tokenizer.specialId("<|endoftext|>");
        int[] tokenBytes = tokenBytes(tokenizer);
        Optional<ModelCheckpoint.Loaded> latest = loadLatest(store);
        Gpt model;
        AdamW optimizer;
        StreamState state = null;
        Map<String, Map<Integer, Long>> offsets = Map.of();
        long lastVersion = 0;
        if (latest.isPresent()) {
            ModelCheckpoint.Loaded loaded = latest.get();
            requireTokenizer(loaded, tokenizer);
            model = loaded.model();
            optimizer = loaded.optimizer() != null ? loaded.optimizer() : new AdamW(config.optimizer());
            Path streamFile = loaded.stored().file(StreamState.FILE);
            state = Files.exists(streamFile) ? StreamState.read(streamFile) : null;
            offsets = loaded.state().offsets();
            lastVersion = loaded.stored().version();
            log.info("resuming from checkpoint {} (step {}, {} parameters) at offsets {}", lastVersion,
                    optimizer.steps(), model.config().parameterCount(), offsets);
        } else if (config.init() != null) {
            ModelCheckpoint.Loaded loaded = ModelCheckpoint.load(config.init(), null);
            requireTokenizer(loaded, tokenizer);
            model = loaded.model();
            optimizer = new AdamW(config.optimizer());
            log.info("starting from {} ({} parameters), reading tokens from the beginning", config.init(),
                    model.config().parameterCount());
        } else {
            TrainerConfig.ModelShape s = config.shape();
            GptConfig gc = new GptConfig(tokenizer.vocabSize(), s.context(), s.layers(), s.heads(), s.width(),
                    s.mlpRatio(), s.dropout(), s.tied());
            model = Gpt.initialize(gc, config.seed());
            optimizer = new AdamW(config.optimizer());
            log.info("new model {} ({} parameters), reading tokens from the beginning", gc, gc.parameterCount());
        }
        int context = model.config().contextLength();
        Packer packer = state == null ? new Packer(context, eot) : Packer.restore(context, eot, state.pending());
        EvaluationSet evaluation = state == null ? new EvaluationSet(config.evaluationTokens(), eot)
                : EvaluationSet.restore(config.evaluationTokens(), eot, state.evaluation(), state.evaluationRevision());
        Rehearsal rehearsal = state == null ? new Rehearsal(config.rehearsalWindows())
                : Rehearsal.restore(config.rehearsalWindows(), state.rehearsal(), state.rehearsalSeen());
        OnlineTrainer core = new OnlineTrainer(model, optimizer, packer, evaluation, rehearsal, config.batch(),
                config.rehearsalRatio(), config.seed(), tokenBytes, state == null ? 0 : state.tokensTrained());
        PreferenceLearner preferences = new PreferenceLearner(config.preferences(), context, state == null ? null : state.preferences());
        return new Trainer(config, tokenizer, store, core, preferences, offsets, lastVersion);
    }

    /** The newest checkpoint that verifies; a damaged newer one is reported and passed over. */
    private static Optional<ModelCheckpoint.Loaded> loadLatest(CheckpointStore store) throws IOException {
        List<Long> versions = store.versions();
        for (int i = versions.size() - 1; i >= 0; i--) {
            try {
                return Optional.of(ModelCheckpoint.load(store.folder(versions.get(i)), null));
            } catch (CheckpointStore.CorruptCheckpointException e) {
                log.error("checkpoint {} is damaged, trying the one before: {}", versions.get(i), e.getMessage());
            }
        }
        return Optional.empty();
    }

    private static void requireTokenizer(ModelCheckpoint.Loaded loaded, Tokenizer tokenizer) {
        if (!loaded.state().tokenizer().equals(tokenizer.id())) {
            throw new UsageError("checkpoint " + loaded.stored().folder() + " was trained with tokenizer "
                    + loaded.state().tokenizer() + ", not " + tokenizer.name() + " (" + tokenizer.id() + ")");
        }
        if (loaded.model().config().vocabSize() != tokenizer.vocabSize()) {
            throw new UsageError("checkpoint vocabulary " + loaded.model().config().vocabSize()
                    + " differs from the tokenizer's " + tokenizer.vocabSize());
        }
    }

    private static int[] tokenBytes(Tokenizer tokenizer) {
        int[] bytes = new int[tokenizer.vocabSize()];
        for (int id = 0; id < bytes.length; id++) {
            try {
                bytes[id] = tokenizer.isSpecial(id) ? 0 : tokenizer.tokenBytes(id).length;
            } catch (IllegalArgumentException unusedId) {
                bytes[id] = 0;
            }
        }
        return bytes;
    }

    // --- the loop --------------------------------------------------------------------------------

    /** Trains until {@link #requestStop()}, then writes a final checkpoint. */
    public void run() {
        started = true;
        // Read ahead of training by trainer.read-ahead-tokens: validation documents (which the gate
        // needs) and new data are seen within seconds even behind a backlog, in bounded memory.
        int refill = Math.max(2 * config.batch() * core.model().config().contextLength(), config.readAheadTokens());
        try {
            while (!stopping) {
                boolean ready = core.stepReady();
                // Tokens are read as fast as training takes them, so the token backlog waits in
                // Kafka, not here; preferences are read whenever they come, not behind that backlog.
                readTokens(!ready || core.pendingTokens() < refill);
                poll(ready || preferences.due(languageStepsSincePreference, false) ? Duration.ZERO : Duration.ofMillis(100));
                if (core.stepReady()) {
                    train();
                }
                if (preferences.due(languageStepsSincePreference, core.stepReady())) {
                    trainPreferences();
                }
                if (checkpointDue()) {
                    checkpoint();
                }
            }
            if (stepsSinceCheckpoint > 0 || positionMoved) {
                log.info("stopping: final checkpoint");
                checkpoint();
            }
        } finally {
            finished.countDown();
        }
    }

    /** Asks the loop to stop after the current step; {@link #awaitStop} waits for the final checkpoint. */
    public void requestStop() {
        stopping = true;
    }

    public boolean awaitStop(Duration timeout) throws InterruptedException {
        return finished.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    public int metricsPort() {
        return metricsServer.port();
    }

    public GptConfig modelConfig() {
        return core.model().config();
    }

    private boolean tokensPaused;

    private void readTokens(boolean wanted) {
        if (wanted == !tokensPaused) {
            return;
        }
        if (wanted) {
            consumer.resume(tokenPartitions);
        } else {
            consumer.pause(tokenPartitions);
        }
        tokensPaused = !wanted;
    }

    private void poll(Duration timeout) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(timeout)) {
            positionMoved = true;
            if (r.topic().equals(preferencesTopic)) {
                addPreference(r);
                continue;
            }
            TokenRecord t;
            try {
                t = TokenRecord.CODEC.decode(r.value());
            } catch (RecordFormatException | NullPointerException e) {
                refuse("malformed", r, e.getMessage());
                continue;
            }
            if (!t.tokenizerId().equals(tokenizer.id())) {
                refuse("tokenizer_mismatch", r, "tokenizer " + t.tokenizerId() + ", the model's is " + tokenizer.id());
                continue;
            }
            if (!inVocabulary(t.ids())) {
                refuse("token_out_of_range", r, "a token id is outside the vocabulary of " + tokenizer.vocabSize());
                continue;
            }
            if (t.split() == Split.TRAIN) {
                core.addTraining(r.partition(), r.offset(), t.ids());
                metrics.record("train");
            } else {
                core.addValidation(t.ids());
                metrics.record("validation");
            }
        }
        long lag = 0;
        for (TopicPartition tp : tokenPartitions) {
            lag += consumer.currentLag(tp).orElse(0);
        }
        metrics.lag(lag);
        metrics.pending(core.pendingTokens());
    }

    private void addPreference(ConsumerRecord<byte[], byte[]> r) {
        PreferenceRecord p;
        try {
            p = PreferenceRecord.CODEC.decode(r.value());
        } catch (RecordFormatException | NullPointerException e) {
            refuse("malformed", r, e.getMessage());
            return;
        }
        if (!p.tokenizerId().equals(tokenizer.id())) {
            refuse("tokenizer_mismatch", r, "tokenizer " + p.tokenizerId() + ", the model's is " + tokenizer.id());
            return;
        }
        if (!inVocabulary(p.promptIds()) || !inVocabulary(p.chosenIds()) || !inVocabulary(p.rejectedIds())) {
            refuse("token_out_of_range", r, "a token id is outside the vocabulary of " + tokenizer.vocabSize());
            return;
        }
        if (p.promptIds().length == 0) {
            refuse("malformed", r, "a preference example needs a prompt");
            return;
        }
        boolean heldOut = preferences.add(new PreferenceLearner.Example(p.promptIds(), p.chosenIds(), p.rejectedIds()));
        metrics.preferenceRecord(heldOut);
        metrics.pendingPreferences(preferences.pendingPairs() + preferences.pendingSupervised());
    }

    private boolean inVocabulary(int[] ids) {
        int vocab = tokenizer.vocabSize();
        for (int id : ids) {
            if (id < 0 || id >= vocab) {
                return false;
            }
        }
        return true;
    }

    private void refuse(String reason, ConsumerRecord<byte[], byte[]> r, String detail) {
        metrics.refused(reason);
        log.warn("refused record {}-{}@{} ({}): {}", r.topic(), r.partition(), r.offset(), reason, detail);
    }

    private void train() {
        OnlineTrainer.Step s;
        try {
            s = core.step();
        } catch (IllegalStateException e) {      // a non-finite gradient: the weights are untouched
            skipped("language", e);
            return;
        }
        lastTrainLoss = s.loss();
        stepsSinceCheckpoint++;
        languageStepsSincePreference++;
        metrics.step(s, core.model().config().contextLength(), flopsPerToken, peakFlops);
        metrics.pending(core.pendingTokens());
        if (trace != null) {
            writeTrace(s);
        }
        if (s.step() % 50 == 0) {
            log.info("step {}: loss {} lr {} grad norm {} ({} ms)", s.step(), String.format("%.4f", s.loss()),
                    String.format("%.2e", s.learningRate()), String.format("%.3f", s.gradientNorm()),
                    Math.round(s.seconds() * 1000));
        }
    }

    /**
     * A step whose gradient was not finite is dropped, logged and counted; the weights and the
     * optimizer are untouched, the loop goes on. Its fresh examples count as trained (they are not
     * retried: the same batch would fail again).
     */
    private void skipped(String kind, IllegalStateException e) {
        metrics.skipped(kind);
        log.error("{} step skipped: {}", kind, e.getMessage());
    }

    /** One step on preferences, against the promoted model as DPO's reference. */
    private void trainPreferences() {
        long step = core.steps();
        SplittableRandom random = new SplittableRandom(config.seed() * 0x9E3779B97F4A7C15L + step + 0x5DEECE66DL);
        PreferenceLearner.Step s;
        try {
            s = preferences.step(core.model(), core.optimizer(), reference, random);
        } catch (IllegalStateException e) {
            languageStepsSincePreference = 0;
            skipped("preference", e);
            return;
        }
        stepsSinceCheckpoint++;
        languageStepsSincePreference = 0;
        metrics.preferenceStep(s);
        metrics.pendingPreferences(preferences.pendingPairs() + preferences.pendingSupervised());
        log.info("preference step {}: {} pairs ({} new), {} supervised; loss {} (reward {}, dpo {}), batch reward accuracy {}",
                step + 1, s.pairs(), s.freshPairs(), s.supervised(), String.format("%.4f", s.loss()),
                String.format("%.4f", s.rewardLoss()), String.format("%.4f", s.dpoLoss()), String.format("%.2f", s.rewardAccuracy()));
    }

    /**
     * The provenance log ({@code trainer.trace}): one line per record slice a step trained on,
     * {@code step partition offset from to}, flushed each step. Slices of one record across steps
     * tile {@code [0, tokens + 1)}, the last index being its closing {@code <|endoftext|>}.
     */
    private void writeTrace(OnlineTrainer.Step s) {
        try {
            for (Packer.Window w : s.fresh()) {
                for (Packer.Segment seg : w.sources()) {
                    trace.write(s.step() + " " + seg.partition() + " " + seg.offset() + " " + seg.from() + " " + seg.to() + "\n");
                }
            }
            trace.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the trace " + config.trace(), e);
        }
    }

    private boolean checkpointDue() {
        if (checkpointFailures > 0 && System.nanoTime() - nextCheckpointAttempt < 0) {
            return false;     // the last attempt failed: wait out the backoff
        }
        if (stepsSinceCheckpoint >= config.checkpointEverySteps()) {
            return true;
        }
        return stepsSinceCheckpoint > 0 && System.nanoTime() - lastCheckpointNanos >= config.checkpointEvery().toNanos();
    }

    // --- checkpoints and the gate ----------------------------------------------------------------

    private void checkpoint() {
        long started = System.nanoTime();
        OnlineTrainer.Evaluation eval;
        PreferenceLearner.Evaluation pairs;
        try (Inference candidate = new Inference(core.model())) {
            eval = core.evaluate(candidate);
            pairs = preferences.evaluate(candidate, reference);
        }
        Map<String, Map<Integer, Long>> positions = new TreeMap<>();
        for (TopicPartition tp : partitions) {
            positions.computeIfAbsent(tp.topic(), t -> new TreeMap<>()).put(tp.partition(), consumer.position(tp, KAFKA_TIMEOUT));
        }
        Map<String, Double> values = new LinkedHashMap<>();
        if (eval != null) {
            values.put("validation_loss", eval.loss());
            values.put("validation_perplexity", eval.perplexity());
            values.put("validation_bits_per_byte", eval.bitsPerByte());
            values.put("validation_tokens", (double) eval.tokens());
            metrics.evaluation(eval);
        }
        if (!Double.isNaN(lastTrainLoss)) {
            values.put("train_loss", lastTrainLoss);
        }
        values.put("tokens_trained", (double) core.tokensTrained());
        values.put("preference_examples_trained", (double) preferences.examplesTrained());
        if (pairs != null) {
            values.put("reward_accuracy", pairs.rewardAccuracy());
            values.put("reward_margin", pairs.rewardMargin());
            values.put("heldout_pairs", (double) pairs.pairs());
            if (!Double.isNaN(pairs.dpoAccuracy())) {
                values.put("dpo_accuracy", pairs.dpoAccuracy());
            }
            metrics.preferenceEvaluation(pairs);
        }
        // Above everything this model has promoted, so that serving only ever sees versions go up,
        // even from a new store (--init, a moved checkpoint directory).
        long version = Math.max(lastVersion, promotedVersion) + 1;
        while (Files.exists(store.folder(version))) {
            version++;      // a damaged newer version we did not resume from keeps its number
        }
        ModelCheckpoint.State state = new ModelCheckpoint.State(tokenizer.id(), core.steps(),
                lastVersion == 0 ? null : lastVersion, Map.copyOf(positions), values);
        StreamState stream = core.streamState(preferences.snapshot());
        CheckpointStore.Stored stored;
        try {
            stored = ModelCheckpoint.save(store, version, core.model(), core.optimizer(), state,
                    Map.of(StreamState.FILE, stream::write));
        } catch (IOException e) {
            checkpointFailed(version, e);
            return;
        }
        checkpointFailures = 0;
        lastVersion = version;
        stepsSinceCheckpoint = 0;
        positionMoved = false;
        lastCheckpointNanos = System.nanoTime();
        if (eval != null && eval.loss() < bestLoss) {
            bestLoss = eval.loss();
            bestVersion = version;
        }

        // No readable reference (nothing promoted, or nothing promoted still verifies): like a first model.
        QualityGate.Decision decision = gate.decide(reference != null, eval == null ? null : eval.loss(), referenceLoss(eval),
                pairs == null ? null : pairs.rewardAccuracy(), referenceAccuracy(pairs), pairs == null ? 0 : pairs.pairs());
        metrics.gate(decision);
        log.info("checkpoint {} (step {}, {} tokens trained{}): {}", version, core.steps(), core.tokensTrained(),
                pairs == null ? "" : String.format(", reward accuracy %.3f on %d held-out pairs", pairs.rewardAccuracy(), pairs.pairs()),
                decision.describe());
        if (decision.promote()) {
            promote(stored, state, eval, pairs);
        }
        try {
            List<Long> removed = store.prune(config.keepCheckpoints(), keepOnPrune(version));
            if (!removed.isEmpty()) {
                log.debug("pruned checkpoints {}", removed);
            }
        } catch (IOException e) {
            log.warn("cannot prune old checkpoints: {}", e.getMessage());
        }
        metrics.checkpoint(version, (System.nanoTime() - started) / 1e9);
    }

    /**
     * A checkpoint that could not be written (a full disk, a read-only mount) stops neither training
     * nor serving: the store keeps nothing half-written; what may go goes (all that
     * {@link #keepOnPrune} does not keep); the next attempt comes after a backoff, 5 s doubling to
     * 5 min. The same version number is tried again, and the consumer positions it would have
     * stored are still ahead, so nothing is trained twice or skipped.
     */
    private void checkpointFailed(long version, IOException e) {
        checkpointFailures++;
        metrics.checkpointFailed();
        long waitSeconds = Math.min(300, 5L << Math.min(checkpointFailures - 1, 6));
        nextCheckpointAttempt = System.nanoTime() + waitSeconds * 1_000_000_000L;
        List<Long> freed = List.of();
        try {
            freed = store.prune(1, keepOnPrune(0));
        } catch (IOException pruneFailed) {
            log.warn("cannot prune old checkpoints either: {}", pruneFailed.getMessage());
        }
        log.error("cannot write checkpoint {} in {}: {}{}; training goes on, next attempt in {} s (failure {} in a row)", version,
                store.root().toAbsolutePath(), why(e), freed.isEmpty() ? "" : "; freed old versions " + freed, waitSeconds,
                checkpointFailures);
    }

    /** An I/O failure in words: the file and the operating system's reason ("No space left on device"). */
    private static String why(IOException e) {
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            return (f.getFile() == null ? "" : f.getFile() + ": ") + f.getReason();
        }
        Throwable cause = e;
        while (cause.getCause() != null && cause.getMessage() == null) {
            cause = cause.getCause();
        }
        return cause.getMessage() != null ? cause.getMessage() : cause.getClass().getSimpleName();
    }

    /**
     * What pruning must leave: the promoted, the best and the last two promoted versions (rollback
     * targets), and at least two versions that still verify, newest first, so that one damaged
     * file never leaves nothing to serve or pin.
     */
    private Set<Long> keepOnPrune(long justWritten) throws IOException {
        Set<Long> keep = new HashSet<>(List.of(bestVersion, promotedVersion));
        CheckpointStore.promotions(store.root()).stream().limit(2).forEach(p -> keep.add(p.version()));
        List<Long> versions = new ArrayList<>(store.versions());
        Collections.reverse(versions);
        int verified = 0;
        for (long v : versions) {
            if (verified == 2) {
                break;
            }
            // The version just written was hashed as it was written; a damaged one is known already.
            if (v == justWritten || (!damaged.contains(v) && verifiesOrRecordDamage(v))) {
                keep.add(v);
                verified++;
            }
        }
        keep.remove(0L);
        return keep;
    }

    /** Hashes a version against its manifest; one that does not verify is counted and logged once. */
    private boolean verifiesOrRecordDamage(long version) {
        if (CheckpointStore.verifies(store.root(), version, null)) {
            return true;
        }
        damaged.add(version);
        metrics.damaged();
        log.error("checkpoint {} in {} does not verify: kept for inspection, not counted as a good version", version, store.root());
        return false;
    }

    /** The promoted model's loss on the evaluation set as it is now (re-measured when the set changed). */
    private Double referenceLoss(OnlineTrainer.Evaluation candidate) {
        if (candidate == null || reference == null) {
            return null;
        }
        if (referenceRevision != candidate.revision()) {
            referenceLoss = core.evaluate(reference).loss();
            referenceRevision = candidate.revision();
        }
        return referenceLoss;
    }

    /** The promoted model's reward-head accuracy on the held-out pairs as they are now. */
    private Double referenceAccuracy(PreferenceLearner.Evaluation candidate) {
        if (candidate == null || reference == null) {
            return null;
        }
        if (referencePairsRevision != candidate.revision()) {
            referenceAccuracy = preferences.evaluate(reference, null).rewardAccuracy();
            referencePairsRevision = candidate.revision();
        }
        return referenceAccuracy;
    }

    private void promote(CheckpointStore.Stored stored, ModelCheckpoint.State state, OnlineTrainer.Evaluation eval,
                         PreferenceLearner.Evaluation pairs) {
        CheckpointEvent event = new CheckpointEvent(stored.version(), stored.folder().toUri().toString(), stored.sha256(),
                state.parent(), tokenizer.id(), state.metrics(), state.offsets());
        if (stopping && !broker.answersWithin(Duration.ofSeconds(2))) {
            log.error("checkpoint {} passed the gate but the broker is unreachable while stopping: it is not announced", stored.version());
            metrics.publishFailed();
            return;
        }
        try {
            // Bounded: a dead broker must not hold training (or a shutdown) for the producer's two minutes.
            // Unannounced, the version stays unpromoted; the next one that passes the gate is announced.
            producer.send(new ProducerRecord<>(config.topics().name(Topic.CHECKPOINTS),
                    config.modelName().getBytes(StandardCharsets.UTF_8), CheckpointEvent.CODEC.encode(event)))
                    .get(stopping ? 3 : 30, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException | KafkaException e) {
            log.error("checkpoint {} passed the gate but its event was not published (is the broker up?): {}", stored.version(),
                    e instanceof ExecutionException ? e.getCause().getMessage() : e instanceof TimeoutException
                            ? "no acknowledgement in time" : e.getMessage());
            metrics.publishFailed();
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        promotedVersion = stored.version();
        try {
            store.recordPromotion(stored.version(), stored.sha256());
        } catch (IOException e) {
            log.warn("cannot record promotion of checkpoint {} in {}: {}", stored.version(), store.root(), e.getMessage());
        }
        Map<String, INDArray> frozen = new LinkedHashMap<>();
        core.model().parameters().forEach((name, w) -> frozen.put(name, w.dup()));
        useReference(core.model().config(), frozen);
        referenceRevision = eval == null ? -1 : eval.revision();
        referenceLoss = eval == null ? null : eval.loss();
        referencePairsRevision = pairs == null ? -1 : pairs.revision();
        referenceAccuracy = pairs == null ? null : pairs.rewardAccuracy();
        metrics.promoted(promotedVersion);
    }

    /** The gate's reference from now on; the previous one's off-heap arrays are freed at once. */
    private void useReference(GptConfig config, Map<String, INDArray> weights) {
        Inference previous = reference;
        reference = new Inference(config, weights);     // a copy: the arrays go now
        weights.values().forEach(INDArray::close);
        if (previous != null) {
            previous.close();
        }
    }

    /** Reads which checkpoint is promoted now, and loads it as the gate's reference. */
    private void findPromoted() {
        Optional<CheckpointEvent> event;
        try {
            event = CheckpointLog.latest(config.bootstrap(), config.topics().name(Topic.CHECKPOINTS), config.modelName(), KAFKA_TIMEOUT);
        } catch (TimeoutException e) {
            throw new IllegalStateException("cannot read the promoted checkpoint: " + e.getMessage(), e);
        }
        if (event.isEmpty()) {
            log.info("no checkpoint is promoted for model {} yet", config.modelName());
            return;
        }
        CheckpointEvent e = event.get();
        promotedVersion = e.version();
        metrics.promoted(promotedVersion);
        Path promotedFolder = Path.of(URI.create(e.uri()));
        try {
            ModelCheckpoint.Weights loaded = ModelCheckpoint.loadWeights(promotedFolder, e.sha256());
            useReference(loaded.config(), loaded.weights());
            log.info("promoted checkpoint is {}; the gate compares against it", promotedVersion);
            return;
        } catch (IOException | RuntimeException ex) {
            damaged.add(promotedVersion);
            metrics.damaged();
            log.error("promoted checkpoint {} cannot be read: {}", promotedVersion, ex.getMessage());
        }
        // Damaged: the newest promoted version that still verifies is the reference instead.
        try {
            for (CheckpointStore.Promotion p : CheckpointStore.promotions(promotedFolder.getParent())) {
                if (p.version() >= promotedVersion) {
                    continue;
                }
                try {
                    ModelCheckpoint.Weights loaded = ModelCheckpoint.loadWeights(CheckpointStore.folder(promotedFolder.getParent(),
                            p.version()), p.sha256());
                    useReference(loaded.config(), loaded.weights());
                    log.warn("the gate compares against checkpoint {}, the newest promoted version that verifies", p.version());
                    return;
                } catch (IOException | RuntimeException ex) {
                    damaged.add(p.version());
                    metrics.damaged();
                    log.error("promoted checkpoint {} cannot be read either: {}", p.version(), ex.getMessage());
                }
            }
        } catch (IOException ex) {
            log.error("cannot read the promotions of {}: {}", promotedFolder.getParent(), ex.getMessage());
        }
        log.warn("no promoted checkpoint verifies: the next checkpoint is promoted as a first one");
    }

    private void findBest() throws IOException {
        for (long v : store.versions()) {
            try {
                var metricsNode = store.open(v).manifest().path("metrics").path("validation_loss");
                if (metricsNode.isNumber() && metricsNode.asDouble() < bestLoss) {
                    bestLoss = metricsNode.asDouble();
                    bestVersion = v;
                }
            } catch (IOException e) {
                log.warn("cannot read checkpoint {}: {}", v, e.getMessage());
            }
        }
    }

    private Properties consumerProperties() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, config.maxPollRecords());
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "flywheel-trainer-" + config.modelName());
        return p;
    }

    private Properties producerProperties() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "flywheel-trainer-" + config.modelName());
        // A dead broker costs a promotion, never a minute of training or of a shutdown.
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        return p;
    }

    @Override
    public void close() {
        try {
            if (trace != null) {
                trace.close();
            }
        } catch (IOException e) {
            log.warn("cannot close the trace: {}", e.getMessage());
        }
        // Short: positions live in the checkpoints, and a dead broker must not hold the exit.
        consumer.close(Duration.ofSeconds(2));
        producer.close(Duration.ofSeconds(2));
        broker.close();
        metricsServer.close();
    }
}
