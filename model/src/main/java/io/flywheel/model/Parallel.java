package io.flywheel.model;

import java.util.ArrayDeque;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Runs tasks {@code 0 .. n-1} at once and returns when all have: task 0 on the calling thread,
 * the others on workers the process shares (made as needed, reused, daemons). The first failure is
 * rethrown once every task has ended, so that no task still writes into memory its caller is done
 * with.
 *
 * <p>Why not an {@code ExecutorService}: a worker that sleeps between tasks takes 50-100 µs to wake
 * on this machine (a virtual machine; measured with a task that does nothing, for a cached thread
 * pool and a ForkJoinPool alike), and a decode step hands out about fifty multiplies of 100-600 µs
 * each. So a worker, and a caller waiting for one, spin for {@link #SPIN_NANOS} before they park:
 * within a step the hand-over costs about a microsecond, and between steps the threads sleep.
 */
final class Parallel {

    /** How long an idle worker, or a caller waiting for one, stays awake. */
    static final long SPIN_NANOS = 200_000;

    private static final ArrayDeque<Worker> IDLE = new ArrayDeque<>();

    private Parallel() {}

    /** What one of {@link #ranges}'s threads does: items {@code from .. to}, as range {@code part} (0 on the caller). */
    interface Range {
        void run(int part, int from, int to);
    }

    /** Items {@code 0 .. n-1} in up to {@code threads} contiguous ranges of about equal size, one per thread. */
    static void ranges(int threads, int n, Range task) {
        int t = Math.max(1, Math.min(threads, n));
        run(t, i -> task.run(i, (int) ((long) n * i / t), (int) ((long) n * (i + 1) / t)));
    }

    static void run(int n, IntConsumer task) {
        if (n == 1) {
            task.accept(0);
            return;
        }
        Job[] others = new Job[n - 1];
        Worker[] workers = take(n - 1);
        for (int i = 1; i < n; i++) {
            others[i - 1] = new Job(task, i, Thread.currentThread());
            workers[i - 1].hand(others[i - 1]);
        }
        Throwable failure = null;
        try {
            task.accept(0);
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        boolean interrupted = false;
        for (Job job : others) {
            interrupted |= job.await();     // finish waiting even if interrupted: the tasks write into the caller's buffers
            if (failure == null) {
                failure = job.failure;
            }
        }
        give(workers);
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (failure instanceof RuntimeException r) {
            throw r;
        }
        if (failure instanceof Error e) {
            throw e;
        }
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
    }

    private static synchronized Worker[] take(int count) {
        Worker[] workers = new Worker[count];
        for (int i = 0; i < count; i++) {
            Worker w = IDLE.pollFirst();
            if (w == null) {
                w = new Worker();
                w.start();
            }
            workers[i] = w;
        }
        return workers;
    }

    private static synchronized void give(Worker[] workers) {
        for (Worker w : workers) {
            IDLE.addFirst(w);     // the most recently used first: it is the one still spinning
        }
    }

    /** One task for one worker; {@code done} is set, and its caller woken if it sleeps, when it has run. */
    private static final class Job {
        final IntConsumer task;
        final int index;
        final Thread caller;
        volatile boolean done;
        volatile boolean callerParked;
        Throwable failure;          // written before done, read after it

        Job(IntConsumer task, int index, Thread caller) {
            this.task = task;
            this.index = index;
            this.caller = caller;
        }

        void run() {
            try {
                task.accept(index);
            } catch (Throwable t) {
                failure = t;
            }
            done = true;
            if (callerParked) {
                LockSupport.unpark(caller);
            }
        }

        /** Waits for the task to have run; whether the caller was interrupted meanwhile (the flag is cleared). */
        boolean await() {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (!done && System.nanoTime() < spinUntil) {
                Thread.onSpinWait();
            }
            boolean interrupted = false;
            while (!done) {
                callerParked = true;          // then look again: the worker reads the flag after it sets done
                if (!done) {
                    LockSupport.park(this);
                }
                interrupted |= Thread.interrupted();
            }
            return interrupted;
        }
    }

    /** A thread that runs the jobs handed to it, spinning for a while after each before it parks. */
    private static final class Worker extends Thread {
        private volatile Job job;
        private volatile boolean parked;

        Worker() {
            super("flywheel-engine-worker");
            setDaemon(true);
        }

        void hand(Job j) {
            job = j;
            if (parked) {                     // read after the job is set: the worker looks again after it sets parked
                LockSupport.unpark(this);
            }
        }

        @Override
        public void run() {
            while (true) {
                Job j = next();
                job = null;
                j.run();
            }
        }

        private Job next() {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (true) {
                Job j = job;
                if (j != null) {
                    return j;
                }
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                    continue;
                }
                parked = true;
                if (job == null) {
                    LockSupport.park(this);
                }
                parked = false;
                Thread.interrupted();         // nobody interrupts a worker; a stray flag must not keep park from sleeping
                spinUntil = System.nanoTime() + SPIN_NANOS;
            }
        }
    }
}
