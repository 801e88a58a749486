package io.flywheel.serving;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * One request's hold on the server: its admission slot and its engine lease, given back exactly
 * once, however the request ends (answered, failed, or its client gone).
 *
 * <p>Whoever generates {@link #claim() claims} the hold and {@link #close() closes} it when done.
 * The connection's end calls {@link #abandon()}: it marks the client gone, so that a running
 * generation stops at its next token, and it gives the hold back itself when nobody has claimed it
 * yet, which happens when a client leaves before its streamed answer began: the framework then
 * never calls the stream's writer.
 */
final class Generation implements AutoCloseable {

    private static final int NEW = 0;
    private static final int RUNNING = 1;
    private static final int CLOSED = 2;

    /** Thrown into a generation whose client has gone: nobody is left to read the rest. */
    static final class ClientGone extends RuntimeException {
        ClientGone() {
            super("the client closed the connection", null, false, false);
        }
    }

    private final Admission.Slot slot;
    private final Engine engine;
    private final AtomicInteger state = new AtomicInteger(NEW);
    private volatile boolean clientGone;

    Generation(Admission.Slot slot, Engine engine) {
        this.slot = slot;
        this.engine = engine;
    }

    Engine engine() {
        return engine;
    }

    /** Takes over the hold to generate; false when the client already left (the hold is given back). */
    boolean claim() {
        if (!state.compareAndSet(NEW, RUNNING)) {
            return false;
        }
        if (clientGone) {
            close();
            return false;
        }
        return true;
    }

    /** The client's connection has ended: stop generating, and give the hold back if nobody runs. */
    void abandon() {
        clientGone = true;
        if (state.compareAndSet(NEW, CLOSED)) {
            release();
        }
    }

    /** Called between tokens: ends the generation once its client is gone. */
    void checkClient() {
        if (clientGone) {
            throw new ClientGone();
        }
    }

    /** Gives the hold back; by the claimer, once. */
    @Override
    public void close() {
        if (state.getAndSet(CLOSED) != CLOSED) {
            release();
        }
    }

    private void release() {
        try {
            engine.release();
        } finally {
            slot.close();
        }
    }
}
