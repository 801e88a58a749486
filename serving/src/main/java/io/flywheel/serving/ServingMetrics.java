package io.flywheel.serving;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Serving's metrics, named after vLLM's ({@code vllm:time_to_first_token_seconds} becomes
 * {@code flywheel_serving_time_to_first_token_seconds}, and so on) so that existing dashboards
 * translate by replacing the prefix.
 */
@ApplicationScoped
public class ServingMetrics {

    private final MeterRegistry registry;
    private final Timer timeToFirstToken;
    private final Timer timePerOutputToken;
    private final Timer endToEnd;
    private final Counter promptTokens;
    private final Counter generationTokens;
    private final Timer swapDuration;
    private final Counter swaps;
    private final DistributionSummary batchSize;
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger waiting = new AtomicInteger();
    private final AtomicLong servedVersion = new AtomicLong();
    private final AtomicLong weightBytes = new AtomicLong();
    private final List<Meter> gauges = new ArrayList<>();
    /** When a token was last generated or a generation last ended: the watchdog's measure of progress. */
    private volatile long lastProgress = System.nanoTime();

    ServingMetrics(MeterRegistry registry) {
        this.registry = registry;
        Duration[] latencySlos = {Duration.ofMillis(10), Duration.ofMillis(25), Duration.ofMillis(50), Duration.ofMillis(100),
                Duration.ofMillis(250), Duration.ofMillis(500), Duration.ofSeconds(1), Duration.ofMillis(2500),
                Duration.ofSeconds(5), Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofSeconds(60)};
        timeToFirstToken = Timer.builder("flywheel.serving.time.to.first.token")
                .description("From a request's arrival to its first generated token").serviceLevelObjectives(latencySlos)
                .register(registry);
        timePerOutputToken = Timer.builder("flywheel.serving.time.per.output.token")
                .description("Inter-token latency: time between consecutive generated tokens")
                .serviceLevelObjectives(Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10),
                        Duration.ofMillis(20), Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250),
                        Duration.ofMillis(500), Duration.ofSeconds(1))
                .register(registry);
        endToEnd = Timer.builder("flywheel.serving.e2e.request.latency")
                .description("From a request's arrival to its last byte").serviceLevelObjectives(latencySlos).register(registry);
        promptTokens = Counter.builder("flywheel.serving.prompt.tokens").description("Prompt tokens processed").register(registry);
        generationTokens = Counter.builder("flywheel.serving.generation.tokens").description("Tokens generated").register(registry);
        swapDuration = Timer.builder("flywheel.serving.swap.duration")
                .description("Loading, verifying and warming a new checkpoint, until it serves").register(registry);
        batchSize = DistributionSummary.builder("flywheel.serving.decode.batch.size")
                .description("Generations advanced together by one decode step (continuous batching)")
                .serviceLevelObjectives(1, 2, 4, 8, 16, 32, 64).register(registry);
        swaps = Counter.builder("flywheel.serving.swaps").description("Checkpoints swapped in").register(registry);
        // Strong references: Micrometer holds a gauge's object weakly by default, and a gauge whose
        // object was collected reads NaN and drops out of /q/metrics (seen across test restarts).
        gauges.add(Gauge.builder("flywheel.serving.num.requests.running", running, AtomicInteger::get).strongReference(true)
                .description("Requests generating now").register(registry));
        gauges.add(Gauge.builder("flywheel.serving.num.requests.waiting", waiting, AtomicInteger::get).strongReference(true)
                .description("Requests waiting for a free slot").register(registry));
        gauges.add(Gauge.builder("flywheel.serving.model.version", servedVersion, AtomicLong::get).strongReference(true)
                .description("Checkpoint version being served (0: none yet)").register(registry));
        gauges.add(Gauge.builder("flywheel.serving.model.weight.bytes", weightBytes, AtomicLong::get).strongReference(true)
                .description("Bytes of weights the served engine holds (int8 with serving.quantize=int8)").register(registry));
        for (String reason : new String[] {"verify", "tokenizer", "load"}) {
            swapFailureCounter(reason);
        }
    }

    /**
     * Takes this app's gauges out of the registry as it stops: a gauge reads the object it was
     * registered with, and a registry that outlives the app (Quarkus's test apps share one) would
     * otherwise answer for the next app with this one's numbers.
     */
    @PreDestroy
    void unregister() {
        gauges.forEach(registry::remove);
    }

    AtomicInteger running() {
        return running;
    }

    AtomicInteger waiting() {
        return waiting;
    }

    /** Requests by final HTTP status. */
    void request(int status) {
        Counter.builder("flywheel.serving.requests").description("Requests answered, by HTTP status")
                .tag("status", Integer.toString(status)).register(registry).increment();
    }

    void firstToken(long nanos) {
        lastProgress = System.nanoTime();
        timeToFirstToken.record(Duration.ofNanos(nanos));
    }

    void interToken(long nanos) {
        lastProgress = System.nanoTime();
        timePerOutputToken.record(Duration.ofNanos(nanos));
    }

    /** A generation slot came free. */
    void slotFreed() {
        lastProgress = System.nanoTime();
    }

    /** Nanoseconds since the engine last made progress (a token, or a slot freed). */
    long sinceProgress() {
        return System.nanoTime() - lastProgress;
    }

    /** One decode step ran {@code sequences} generations. */
    void decodeStep(int sequences) {
        batchSize.record(sequences);
    }

    void finished(long nanos, int prompt, int generated) {
        endToEnd.record(Duration.ofNanos(nanos));
        promptTokens.increment(prompt);
        generationTokens.increment(generated);
    }

    void swapped(long version, long nanos, long bytes) {
        swaps.increment();
        swapDuration.record(Duration.ofNanos(nanos));
        servedVersion.set(version);
        weightBytes.set(bytes);
    }

    void swapFailed(String reason) {
        swapFailureCounter(reason).increment();
    }

    private Counter swapFailureCounter(String reason) {
        return Counter.builder("flywheel.serving.swap.failures")
                .description("Checkpoints refused or failed to load, by reason").tag("reason", reason).register(registry);
    }
}
