package io.flywheel.model;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntConsumer;

/**
 * Runs tasks {@code 0 .. n-1} at once and returns when all have: task 0 on the calling thread,
 * the others on a pool of daemon threads the process shares (threads are made as needed and
 * reused). The first failure is rethrown once every task has ended, so that no task still writes
 * into memory its caller is done with.
 */
final class Parallel {

    private static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "flywheel-engine-worker");
        t.setDaemon(true);
        return t;
    });

    private Parallel() {}

    /** What one of {@link #ranges}'s threads does: items {@code from .. to}. */
    interface Range {
        void run(int from, int to);
    }

    /** Items {@code 0 .. n-1} in up to {@code threads} contiguous ranges of about equal size, one per thread. */
    static void ranges(int threads, int n, Range task) {
        int t = Math.max(1, Math.min(threads, n));
        run(t, i -> task.run((int) ((long) n * i / t), (int) ((long) n * (i + 1) / t)));
    }

    static void run(int n, IntConsumer task) {
        if (n == 1) {
            task.accept(0);
            return;
        }
        List<Future<?>> others = new ArrayList<>(n - 1);
        for (int i = 1; i < n; i++) {
            int index = i;
            others.add(POOL.submit(() -> task.accept(index)));
        }
        Throwable failure = null;
        try {
            task.accept(0);
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        boolean interrupted = false;
        for (Future<?> f : others) {
            while (true) {
                try {
                    f.get();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;     // finish waiting: the tasks write into the caller's buffers
                } catch (ExecutionException e) {
                    if (failure == null) {
                        failure = e.getCause();
                    }
                    break;
                }
            }
        }
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
}
