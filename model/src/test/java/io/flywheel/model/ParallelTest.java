package io.flywheel.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The engine's workers write into their caller's buffers: a step whose worker fails must not
 * return (or throw) while another is still writing, and must say what failed.
 */
class ParallelTest {

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
