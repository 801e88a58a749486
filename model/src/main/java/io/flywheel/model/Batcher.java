package io.flywheel.model;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;

/**
 * Continuous batching: every running completion advances by one token per step, and all of them
 * share that step's forward ({@link Decoder#forward} over one batched key/value cache), so the
 * weights are read once per step for everyone. A new completion joins between two steps (its whole
 * prompt is prefilled in the step it joins, beside the others' single tokens); one that ends leaves
 * at once and frees its slot. Each keeps its own sampling, stop rules and streaming: they live in
 * its {@link Sequence} (a {@link Generator.Run}), whose callbacks run on the batcher's thread.
 *
 * <p>One thread per batcher runs the steps. Submitting never blocks: beyond the slots, completions
 * wait in order (serving's admission keeps them within the slots anyway).
 */
public final class Batcher implements AutoCloseable {

    private final Decoder decoder;
    private final Decoder.Cache cache;
    private final Thread thread;
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    private final Job[] running;
    private final java.util.function.IntConsumer onStep;
    private boolean closed;

    /**
     * What the batcher drives: after each step, one token drawn from the logits that follow the
     * sequence so far ({@link Generator.Run} is the one serving uses).
     */
    public interface Sequence {
        /**
         * @param remaining positions left in the context for the token drawn now
         * @return the completion once it has ended, else {@code null} ({@link #last} is appended next)
         */
        Generator.Completion next(float[] logits, int remaining);

        /** The token drawn last. */
        int last();
    }

    /** A submitted completion: its result, and a way to stop it early. */
    public static final class Job {
        private final int[] prompt;
        private final Sequence run;
        private final CompletableFuture<Generator.Completion> result = new CompletableFuture<>();
        private volatile boolean cancelled;
        private boolean prefilled;

        private Job(int[] prompt, Sequence run) {
            this.prompt = prompt;
            this.run = run;
        }

        /** Completes with the completion, or exceptionally when it failed or was cancelled. */
        public CompletableFuture<Generator.Completion> result() {
            return result;
        }

        /** Stops it before its next step (its client has gone); its result fails with CancellationException. */
        public void cancel() {
            cancelled = true;
        }
    }

    public Batcher(Decoder decoder, int slots, String name) {
        this(decoder, slots, name, null);
    }

    public Batcher(Decoder decoder, int slots, String name, java.util.function.IntConsumer onStep) {
        this(decoder, slots, KvCacheDtype.FLOAT32, name, onStep);
    }

    /**
     * @param dtype  what its key/value cache holds
     * @param onStep told, on the batcher's thread, how many completions each step ran (for metrics); may be null
     */
    public Batcher(Decoder decoder, int slots, KvCacheDtype dtype, String name, java.util.function.IntConsumer onStep) {
        this.decoder = decoder;
        this.onStep = onStep;
        this.cache = decoder.cache(slots, dtype);
        this.running = new Job[slots];
        this.thread = new Thread(this::loop, name);
        this.thread.setDaemon(true);
        this.thread.start();
    }

    public int slots() {
        return running.length;
    }

    /** Queues a completion of {@code prompt}, driven by {@code run}. */
    public Job submit(int[] prompt, Sequence run) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        if (prompt.length > decoder.config().contextLength()) {
            throw new IllegalArgumentException("a prompt of " + prompt.length + " tokens does not fit the context of "
                    + decoder.config().contextLength());
        }
        Job job = new Job(prompt.clone(), run);
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("the batcher is closed");
            }
            waiting.add(job);
            notifyAll();
        }
        return job;
    }

    /** Completions running or waiting. */
    public synchronized int active() {
        int n = waiting.size();
        for (Job job : running) {
            n += job == null ? 0 : 1;
        }
        return n;
    }

    /** Fails what is left, stops the thread and frees the cache. */
    @Override
    public void close() {
        synchronized (this) {
            closed = true;
            notifyAll();
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        cache.close();
    }

    private void loop() {
        while (true) {
            List<Integer> batch;
            synchronized (this) {
                batch = admit();
                while (batch.isEmpty() && !closed) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        closed = true;
                    }
                    batch = admit();
                }
                if (closed) {
                    failAll(new CancellationException("the batcher closed"));
                    return;
                }
            }
            step(batch);
        }
    }

    /**
     * Drops the cancelled, then fills the free slots from the queue, and returns the slots that run
     * this step. In that order, so that a slot a cancelled job frees goes to a waiting one in this
     * same step: a queue left waiting beside empty slots would never run, as nothing else wakes the
     * thread. Holds the lock.
     */
    private List<Integer> admit() {
        for (int slot = 0; slot < running.length; slot++) {
            if (running[slot] != null && running[slot].cancelled) {
                leave(slot, null, new CancellationException("cancelled"));
            }
        }
        List<Integer> batch = new ArrayList<>();
        for (int slot = 0; slot < running.length; slot++) {
            while (running[slot] == null && !waiting.isEmpty()) {
                Job job = waiting.poll();
                if (job.cancelled) {
                    job.result.completeExceptionally(new CancellationException("cancelled before it ran"));
                } else {
                    running[slot] = job;
                    cache.clear(slot);
                }
            }
            if (running[slot] != null) {
                batch.add(slot);
            }
        }
        return batch;
    }

    /** One forward for every running job, then one token drawn for each. */
    private void step(List<Integer> batch) {
        int[] slots = new int[batch.size()];
        int[][] tokens = new int[batch.size()][];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = batch.get(i);
            Job job = running[slots[i]];
            tokens[i] = job.prefilled ? new int[] {job.run.last()} : job.prompt;
        }
        Decoder.Output output;
        try {
            output = decoder.forward(cache, slots, tokens, false);
            if (onStep != null) {
                onStep.accept(slots.length);
            }
        } catch (RuntimeException e) {
            synchronized (this) {
                for (int slot : slots) {
                    leave(slot, null, e);
                }
            }
            return;
        }
        for (int i = 0; i < slots.length; i++) {
            Job job = running[slots[i]];
            job.prefilled = true;
            Generator.Completion done;
            try {
                done = job.run.next(output.logits()[i], cache.remaining(slots[i]));
            } catch (RuntimeException e) {   // its own callbacks threw: only this job ends
                synchronized (this) {
                    leave(slots[i], null, e);
                }
                continue;
            }
            if (done != null) {
                synchronized (this) {
                    leave(slots[i], done, null);
                }
            }
        }
    }

    private void leave(int slot, Generator.Completion done, Throwable failure) {
        Job job = running[slot];
        running[slot] = null;
        cache.clear(slot);
        if (failure == null) {
            job.result.complete(done);
        } else {
            job.result.completeExceptionally(failure);
        }
    }

    private void failAll(Throwable failure) {
        for (int slot = 0; slot < running.length; slot++) {
            if (running[slot] != null) {
                leave(slot, null, failure);
            }
        }
        while (!waiting.isEmpty()) {
            waiting.poll().result.completeExceptionally(failure);
        }
    }
}
