package io.flywheel.serving;

import io.flywheel.model.Batcher;
import io.flywheel.model.Generator;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * Hands one generation's tokens and text from the batcher's thread to the request's thread, which
 * writes them out: the batcher never waits for a client, and a slow or vanished client never
 * holds up the other generations in the batch.
 *
 * <p>The batcher's side calls {@link #text} and {@link #token}; the request's side calls
 * {@link #drain}, which replays them in order and returns when the generation ends.
 */
final class TokenStream {

    private record Token(int id) {}

    private static final Object DONE = new Object();

    private final LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();

    /** Batcher side: a piece of text that is final. */
    void text(String piece) {
        events.add(piece);
    }

    /** Batcher side: a token was drawn. */
    void token(int id) {
        events.add(new Token(id));
    }

    /** How long the request side waits for an event before it asks whether its client is still there. */
    private static final long CHECK_EVERY_MS = 200;

    /**
     * Request side: passes each event on as it comes, until {@code job} ends; returns its
     * completion, or throws what ended it. Whatever either callback throws (the client has gone,
     * its connection failed) cancels the job, so the batch drops it at the next step; so does
     * {@code clientCheck} throwing while no event comes (a job still waiting for a slot has no
     * tokens to fail on, and its client may have left).
     */
    Generator.Completion drain(Batcher.Job job, Consumer<String> onText, IntConsumer onToken, Runnable clientCheck) {
        job.result().whenComplete((done, failure) -> events.add(DONE));
        boolean finished = false;
        try {
            while (true) {
                Object event = events.poll(CHECK_EVERY_MS, java.util.concurrent.TimeUnit.MILLISECONDS);
                if (event == null) {
                    clientCheck.run();
                } else if (event == DONE) {
                    finished = true;
                    return result(job);
                } else if (event instanceof Token t) {
                    onToken.accept(t.id());
                } else if (onText != null) {
                    onText.accept((String) event);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while generating", e);
        } finally {
            if (!finished) {
                job.cancel();
            }
        }
    }

    private static Generator.Completion result(Batcher.Job job) {
        try {
            return job.result().join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw e;
        } catch (CancellationException e) {
            throw new IllegalStateException("the generation was stopped: " + e.getMessage(), e);
        }
    }
}
