package io.flywheel.serving;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Serving's settings, {@code flywheel.serving.*} in {@code application.properties}; each can be
 * overridden by its environment variable ({@code FLYWHEEL_SERVING_MAX_RUNNING}, ...).
 */
@ConfigMapping(prefix = "flywheel.serving")
public interface ServingConfig {

    /** The served model's name: what clients pass as {@code model}, and the key of its checkpoint events. */
    @WithDefault("flywheel")
    String modelName();

    /** The tokenizer the model was trained with: a file, or a public vocabulary name. */
    @WithDefault("cl100k_base")
    String tokenizer();

    /** Keys accepted as {@code Authorization: Bearer KEY} on {@code /v1}. None: open, for local use only. */
    Optional<List<String>> apiKeys();

    /** The key of {@code /admin} (pin, unpin). None: admin is open, like the API, for local use only. */
    Optional<String> adminKey();

    /**
     * Generations that run at once: they share one decode step per token (continuous batching),
     * and each holds a slot of the engine's key/value cache (layers x context x width x 8 bytes in
     * float32, 4 in bfloat16).
     */
    @WithDefault("16")
    int maxRunning();

    /**
     * How the served weights are held: {@code none} (float32, as trained) or {@code int8}
     * (weight-only, a scale per output channel: a quarter of the matrix bytes and a faster decode,
     * at a small cost in loss, docs/benchmarks.md). int8 needs the JVM option
     * {@code --add-modules jdk.incubator.vector}; without it serving refuses to start, saying so.
     */
    @WithDefault("none")
    String quantize();

    /**
     * What the key/value cache holds keys and values in: {@code float32}, or {@code bfloat16} (half
     * the cache's memory and of what a decode step reads from it, so more generations at once decode
     * faster, at a small cost in loss, docs/benchmarks.md). vLLM's {@code kv_cache_dtype}.
     */
    @WithDefault("float32")
    String kvCacheDtype();

    /**
     * Threads OpenBLAS may use for one multiply (it is the process's only BLAS user; with the
     * Vector API the weight multiplies are our own, and OpenBLAS does attention's small per-head
     * ones). One, whatever {@code OMP_NUM_THREADS} says: they are too small to split, and two
     * threads made single-stream decode 1.3-3x slower (docs/benchmarks.md, "Decode").
     */
    @WithDefault("1")
    int blasThreads();

    /**
     * Threads a decode step's weight multiplies are split among (with the Vector API: float32 and
     * int8 weights alike). Default: the cores this process may use; under {@code ./flywheel up}
     * the trainer shares them.
     */
    Optional<Integer> decodeThreads();

    /** Requests that may wait for a free slot; beyond them a request is refused with 503. */
    @WithDefault("32")
    int maxWaiting();

    /** Requests per minute per API key (or per client address without keys); 0 = no limit. */
    @WithDefault("0")
    int rateLimitPerMinute();

    /** {@code max_tokens} when a request gives none. */
    @WithDefault("128")
    int defaultMaxTokens();

    /** Tokens generated to warm a new checkpoint before it takes traffic. */
    @WithDefault("4")
    int warmupTokens();

    /**
     * A request body must arrive whole within this time; it is read before a worker thread is
     * taken, so a slow client costs a connection, not a worker. After it: 408.
     */
    @WithDefault("10s")
    Duration bodyTimeout();

    /** The largest request body; a larger one is 413 (whether declared or sent in chunks). */
    @WithDefault("8388608")
    int maxBodyBytes();

    /**
     * Readiness fails when requests wait but no token has been generated for this long (a stuck
     * engine), and when completions could not be written to the responses topic for this long.
     */
    @WithDefault("30s")
    Duration stallTimeout();
}
