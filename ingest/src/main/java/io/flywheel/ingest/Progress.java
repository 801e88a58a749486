package io.flywheel.ingest;

import java.io.PrintStream;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Progress on stderr: a bar redrawn in place four times a second on a terminal (documents, bytes,
 * MB/s, ETA when the total is known), or a plain log line every five seconds otherwise.
 */
final class Progress implements AutoCloseable {

    private final PrintStream err;
    private final boolean terminal;
    private final long totalBytes;
    private final LongSupplier documents;
    private final LongSupplier bytesRead;
    private final LongSupplier failed;
    private final long start = System.nanoTime();
    private final ScheduledExecutorService timer;

    Progress(PrintStream err, boolean terminal, long totalBytes, LongSupplier documents, LongSupplier bytesRead, LongSupplier failed) {
        this.err = err;
        this.terminal = terminal;
        this.totalBytes = totalBytes;
        this.documents = documents;
        this.bytesRead = bytesRead;
        this.failed = failed;
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "ingest-progress");
            t.setDaemon(true);
            return t;
        });
        long period = terminal ? 250 : 5000;
        timer.scheduleAtFixedRate(this::print, period, period, TimeUnit.MILLISECONDS);
    }

    double seconds() {
        return (System.nanoTime() - start) / 1e9;
    }

    private synchronized void print() {
        double secs = seconds();
        long bytes = bytesRead.getAsLong();
        double mbps = bytes / 1e6 / Math.max(secs, 1e-3);
        String counts = String.format(Locale.ROOT, "%,d documents, %.1f MB, %.1f MB/s", documents.getAsLong(), bytes / 1e6, mbps);
        String fails = failed.getAsLong() > 0 ? String.format(Locale.ROOT, ", %,d failed", failed.getAsLong()) : "";
        if (!terminal) {
            err.println("ingest: " + counts + fails);
            return;
        }
        String bar = "";
        String eta = "";
        if (totalBytes > 0) {
            double done = Math.min(1.0, (double) bytes / totalBytes);
            int width = 24;
            int filled = (int) Math.round(done * width);
            bar = "[" + "#".repeat(filled) + " ".repeat(width - filled) + "] " + String.format(Locale.ROOT, "%3.0f%% ", done * 100);
            double left = mbps > 0 ? (totalBytes - bytes) / 1e6 / mbps : 0;
            eta = String.format(Locale.ROOT, ", ETA %d:%02d", (long) left / 60, (long) left % 60);
        }
        err.print("\r\u001b[2K" + bar + counts + eta + fails);
        err.flush();
    }

    @Override
    public synchronized void close() {
        timer.shutdownNow();
        if (terminal) {
            err.print("\r\u001b[2K");
            err.flush();
        }
    }
}
