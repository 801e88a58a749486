package io.flywheel.serving;

import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.model.Blas;
import io.flywheel.model.KvCacheDtype;
import io.flywheel.model.ModelCheckpoint;
import io.flywheel.model.Quantization;
import io.flywheel.model.Sampling;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.jboss.logging.Logger;

/**
 * Which checkpoint serves, and the swap to a new one. Loading happens on one background thread,
 * off the request path: verify the files against the event's sha256, check the tokenizer, build
 * the engine, warm it with a short generation; then one atomic reference switches and the old
 * engine is retired (freed after its last request). A load that fails keeps the current engine,
 * and is logged and counted.
 *
 * <p>Followed checkpoints only go up in version. {@link #pin} serves a chosen version (a rollback)
 * and holds it until {@link #unpin}, which returns to the latest promoted one.
 */
@ApplicationScoped
public class ModelRegistry {

    private static final Logger LOG = Logger.getLogger(ModelRegistry.class);

    private final ServingConfig config;
    private final ServingMetrics metrics;
    private final Tokenizer tokenizer;
    private final Engine.Settings settings;
    private final AtomicReference<Engine> current = new AtomicReference<>();
    private final ExecutorService loader = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "model-loader");
        t.setDaemon(true);
        return t;
    });
    private volatile CheckpointEvent latestPromoted;
    private volatile Long pinned;

    ModelRegistry(ServingConfig config, ServingMetrics metrics) {
        this.config = config;
        this.metrics = metrics;
        Quantization quantization = Quantization.of(config.quantize());
        quantization.checkAvailable();
        int threads = config.decodeThreads().orElse(Runtime.getRuntime().availableProcessors());
        if (threads < 1) {
            throw new IllegalArgumentException("flywheel.serving.decode-threads must be at least 1, found " + threads);
        }
        this.settings = new Engine.Settings(quantization, KvCacheDtype.of(config.kvCacheDtype()), threads, config.maxRunning());
        Blas.threads(config.blasThreads());
        try {
            this.tokenizer = TokenizerFiles.load(config.tokenizer());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load tokenizer " + config.tokenizer(), e);
        }
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The serving engine, leased: the caller must {@link Engine#release()} it. Empty before the first load. */
    public Optional<Engine> lease() {
        while (true) {
            Engine engine = current.get();
            if (engine == null) {
                return Optional.empty();
            }
            if (engine.lease()) {
                return Optional.of(engine);
            }
            // retired between the read and the lease: the newer one is already in place
        }
    }

    /** The version serving now, if any. */
    public Optional<Long> version() {
        Engine engine = current.get();
        return engine == null ? Optional.empty() : Optional.of(engine.version());
    }

    public Optional<Long> pinnedVersion() {
        return Optional.ofNullable(pinned);
    }

    /** A promoted checkpoint from the {@code checkpoints} topic: loaded in the background unless pinned. */
    void offer(CheckpointEvent event) {
        CheckpointEvent latest = latestPromoted;
        if (latest == null || event.version() >= latest.version()) {
            latestPromoted = event;     // the same version again replaces it (a corrected event)
        }
        loader.execute(() -> {
            try {
                if (pinned == null && event == latestPromoted) {
                    Engine serving = current.get();
                    if ((serving == null || event.version() > serving.version())
                            && !load(event.version(), folder(event), event.sha256(), event.tokenizer())) {
                        fallBack(event);
                    }
                }
            } catch (RuntimeException | Error e) {
                LOG.errorf(e, "loading checkpoint %d failed", event.version());
            }
        });
    }

    /**
     * Serves {@code version} from the same store as the promoted checkpoints until {@link #unpin}.
     *
     * @throws IllegalStateException when no checkpoint was ever promoted (there is no store to read)
     * @throws IOException           when the version cannot be loaded; the current engine stays
     */
    public long pin(long version) throws IOException, InterruptedException {
        CheckpointEvent latest = latestPromoted;
        if (latest == null) {
            throw new IllegalStateException("no checkpoint has been promoted yet, so there is no store to pin from");
        }
        Path folder = folder(latest).getParent().resolve(String.format("v%06d", version));
        String sha = latest.version() == version ? latest.sha256() : null;
        Future<Boolean> done = loader.submit(() -> {
            boolean loaded = load(version, folder, sha, tokenizer.id());
            if (loaded) {
                pinned = version;
            }
            return loaded;
        });
        try {
            if (!done.get()) {
                // The folder is the operator's business (it is in the log), not the caller's.
                throw new IOException("checkpoint " + version + " is not in the store or does not verify");
            }
        } catch (ExecutionException e) {
            LOG.errorf(e.getCause(), "pinning checkpoint %d failed", version);
            throw new IOException("checkpoint " + version + " could not be loaded");
        }
        return version;
    }

    /** Back to following the promoted checkpoints; loads the latest one if another version serves. */
    public void unpin() {
        loader.submit(() -> {
            pinned = null;
            CheckpointEvent latest = latestPromoted;
            Engine serving = current.get();
            if (latest != null && (serving == null || serving.version() != latest.version())) {
                load(latest.version(), folder(latest), latest.sha256(), latest.tokenizer());
            }
        });
    }

    /**
     * The promoted checkpoint cannot be served (a damaged file): the newest version promoted before
     * it that verifies serves instead, unless one at least as new serves already. The store's
     * promotions log says which versions were promoted, with their hashes.
     */
    private void fallBack(CheckpointEvent event) {
        Path root = folder(event).getParent();
        List<CheckpointStore.Promotion> promotions;
        try {
            promotions = CheckpointStore.promotions(root);
        } catch (IOException e) {
            LOG.errorf("cannot read the promotions of %s: %s", root, e.getMessage());
            return;
        }
        for (CheckpointStore.Promotion p : promotions) {
            Engine serving = current.get();
            if (serving != null && serving.version() >= p.version()) {
                return;     // what serves is as new as any fallback
            }
            if (p.version() < event.version()
                    && load(p.version(), CheckpointStore.folder(root, p.version()), p.sha256(), event.tokenizer())) {
                LOG.warnf("promoted checkpoint %d cannot be served; serving %d, the newest promoted version that verifies",
                        event.version(), p.version());
                return;
            }
        }
    }

    private static Path folder(CheckpointEvent event) {
        return Path.of(URI.create(event.uri()));
    }

    /** Loads, verifies and warms a checkpoint, then swaps it in. Runs on the loader thread only. */
    private boolean load(long version, Path folder, String sha256, String tokenizerId) {
        long started = System.nanoTime();
        if (!tokenizer.id().equals(tokenizerId)) {
            refuse("tokenizer", version, "trained with tokenizer " + tokenizerId + ", serving uses " + tokenizer.id());
            return false;
        }
        ModelCheckpoint.Weights weights;
        try {
            weights = ModelCheckpoint.loadWeights(folder, sha256);
        } catch (CheckpointStore.CorruptCheckpointException e) {
            refuse("verify", version, e.getMessage());
            return false;
        } catch (IOException | RuntimeException e) {
            refuse("load", version, e.toString());
            return false;
        }
        if (!weights.state().tokenizer().equals(tokenizer.id()) || weights.config().vocabSize() != tokenizer.vocabSize()) {
            refuse("tokenizer", version, "its manifest names tokenizer " + weights.state().tokenizer()
                    + " with vocabulary " + weights.config().vocabSize());
            return false;
        }
        Engine engine;
        try {
            engine = new Engine(version, weights.stored().sha256(), weights.config(), weights.weights(), settings, tokenizer,
                    metrics::decodeStep);
        } catch (RuntimeException e) {
            refuse("load", version, e.toString());
            return false;
        }
        try {
            int warm = Math.max(1, Math.min(config.warmupTokens(), weights.config().contextLength() - 1));
            engine.generate(new int[] {tokenizer.specialId("<|endoftext|>")}, Sampling.greedy(warm), false, null, null)
                    .result().get(config.stallTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            engine.retire();
            refuse("load", version, "warm-up generation failed: " + (e instanceof ExecutionException ? e.getCause() : e));
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            engine.retire();
            return false;
        }
        Engine old = current.getAndSet(engine);
        if (old != null) {
            old.retire();
        }
        metrics.swapped(version, System.nanoTime() - started, engine.weightBytes());
        LOG.infof("serving model %s version %d (%s, %s weights, %.1f MB, a %s key/value cache, %d decode threads) after %.0f ms%s",
                config.modelName(), version, engine.sha256().substring(0, 12), settings.quantization(), engine.weightBytes() / 1e6,
                settings.kvCacheDtype(), settings.threads(), (System.nanoTime() - started) / 1e6,
                old == null ? "" : ", replacing version " + old.version());
        return true;
    }

    private void refuse(String reason, long version, String detail) {
        metrics.swapFailed(reason);
        LOG.errorf("checkpoint %d refused (%s), still serving %s: %s", version, reason,
                version().map(Object::toString).orElse("nothing"), detail);
    }

    @PreDestroy
    void stop() {
        loader.shutdownNow();
    }
}
