package io.flywheel.serving;

import jakarta.enterprise.context.ApplicationScoped;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The bounded pool and queue in front of generation: {@code max-running} requests generate at once,
 * up to {@code max-waiting} more wait in line (fairly, first come first served), and any beyond
 * that are refused at once with 503 rather than piling up.
 */
@ApplicationScoped
public class Admission {

    private final Semaphore running;
    private final int maxWaiting;
    private final ServingMetrics metrics;

    Admission(ServingConfig config, ServingMetrics metrics) {
        this.running = new Semaphore(config.maxRunning(), true);
        this.maxWaiting = config.maxWaiting();
        this.metrics = metrics;
    }

    /** A running slot; close it when the request ends. */
    public interface Slot extends AutoCloseable {
        @Override
        void close();
    }

    /** The semaphore's view, for a report: free slots and threads waiting for one. */
    @Override
    public String toString() {
        return running.availablePermits() + " slots free, " + running.getQueueLength() + " threads waiting";
    }

    /** Waits for a slot, or refuses with 503 when the queue is full. */
    public Slot enter() {
        try {
            // tryAcquire with a timeout honours the fair order; without one it would jump the queue.
            if (!running.tryAcquire(0, TimeUnit.SECONDS)) {
                if (metrics.waiting().incrementAndGet() > maxWaiting) {
                    metrics.waiting().decrementAndGet();
                    throw ApiError.overloaded();
                }
                try {
                    running.acquire();
                } finally {
                    metrics.waiting().decrementAndGet();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiError.overloaded();
        }
        metrics.running().incrementAndGet();
        return () -> {
            metrics.running().decrementAndGet();
            metrics.slotFreed();
            running.release();
        };
    }
}
