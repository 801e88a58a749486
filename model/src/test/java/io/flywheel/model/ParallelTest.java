package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The engine's workers write into their caller's buffers: a step whose worker fails must not
 * return (or throw) while another is still writing, and must say what failed. Workers and callers
 * spin, then park: a hand-over to a sleeping worker, or a result for a sleeping caller, must never
 * be lost, whatever the callers do at once.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)   // a lost wake-up hangs rather than fails
class ParallelTest {

    @Test
    void workersAsleepWakeForTheNextTaskAndManyCallersShareThem() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            AtomicLong sum = new AtomicLong();
            Thread[] callers = new Thread[3];
            AtomicReference<Throwable> failure = new AtomicReference<>();
            for (int c = 0; c < callers.length; c++) {
                int id = c;
                callers[c] = new Thread(() -> {
                    try {
                        for (int round = 0; round < 300; round++) {
                            Parallel.run(3, i -> sum.addAndGet(i + 1));
                            if (round % 10 == id) {
                                // Idle past the spin, so that the workers (and later this caller) park.
                                LockSupport.parkNanos(2 * Parallel.SPIN_NANOS);
                            }
                        }
                    } catch (Throwable t) {
                        failure.set(t);
                    }
                });
                callers[c].start();
            }
            for (Thread t : callers) {
                t.join();
            }
            assertNull(failure.get());
            assertEquals(3L * 300 * (1 + 2 + 3), sum.get(), "every task of every call ran exactly once");
        });
    }

    @Test
    void aCallerAsleepWakesWhenItsWorkerFinishes() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int round = 0; round < 20; round++) {
                AtomicBoolean done = new AtomicBoolean();
                // The worker's task outlasts the caller's spin, so the caller parks and must be woken.
                Parallel.run(2, i -> {
                    if (i == 1) {
                        LockSupport.parkNanos(3 * Parallel.SPIN_NANOS);
                        done.set(true);
                    }
                });
                assertTrue(done.get(), "run returned only after the worker's task");
            }
        });
    }

    @Test
    void everyTaskRunsOnceAndTaskZeroOnTheCaller() {
        AtomicInteger ran = new AtomicInteger();
        Thread caller = Thread.currentThread();
        AtomicBoolean zeroOnCaller = new AtomicBoolean();
        Parallel.run(4, i -> {
            ran.addAndGet(1 << (8 * i));
            if (i == 0) {
                zeroOnCaller.set(Thread.currentThread() == caller);
            }
        });
        assertEquals(0x01010101, ran.get(), "each of the four tasks ran exactly once");
        assertTrue(zeroOnCaller.get());
    }

    @Test
    void aWorkersFailureIsThrownOnlyOnceTheOthersHaveEnded() throws Exception {
        CountDownLatch failed = new CountDownLatch(1);
        AtomicBoolean lastFinished = new AtomicBoolean();
        IllegalStateException boom = new IllegalStateException("worker 1 failed mid-step");
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> Parallel.run(3, i -> {
            if (i == 1) {
                failed.countDown();
                throw boom;
            }
            if (i == 2) {
                // Still writing after worker 1 has failed: the caller must wait for this.
                await(failed);
                double x = 0;
                for (int k = 0; k < 5_000_000; k++) {
                    x += Math.sqrt(k);
                }
                lastFinished.set(x > 0);
            }
        }));
        assertSame(boom, thrown, "the worker's own exception, not a wrapper");
        assertTrue(lastFinished.get(), "worker 2 had finished before the failure was thrown");
    }

    @Test
    void theCallersOwnFailureWaitsForTheWorkersToo() {
        AtomicBoolean workerFinished = new AtomicBoolean();
        CountDownLatch callerFailing = new CountDownLatch(1);
        AssertionError thrown = assertThrows(AssertionError.class, () -> Parallel.run(2, i -> {
            if (i == 0) {
                callerFailing.countDown();
                throw new AssertionError("an Error on the caller's task");
            }
            await(callerFailing);
            workerFinished.set(true);
        }));
        assertEquals("an Error on the caller's task", thrown.getMessage());
        assertTrue(workerFinished.get());
    }

    @Test
    void anInterruptedCallerStillWaitsAndKeepsItsInterrupt() {
        CountDownLatch interrupted = new CountDownLatch(1);
        AtomicBoolean workerFinished = new AtomicBoolean();
        Thread caller = Thread.currentThread();
        try {
            Parallel.run(2, i -> {
                if (i == 0) {
                    caller.interrupt();
                    interrupted.countDown();
                    return;
                }
                await(interrupted);
                workerFinished.set(true);
            });
            assertTrue(workerFinished.get(), "run returned only after the worker had ended");
            assertTrue(Thread.currentThread().isInterrupted(), "the interrupt is kept for the caller");
        } finally {
            Thread.interrupted();
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            assertTrue(latch.await(30, TimeUnit.SECONDS), "the other task never got there");
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
