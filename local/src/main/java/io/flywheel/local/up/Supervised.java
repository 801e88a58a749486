package io.flywheel.local.up;

import java.io.IOException;
import java.time.Duration;
import java.util.List;

/**
 * One service of the local loop under supervision: when its process dies it is reported once, in
 * a line that names it, its exit code, how long it ran and its restart count, with the last lines
 * of its log; then it is started again after a backoff that doubles from 1 s to 30 s, and starts
 * from 1 s again once a run has lasted a minute.
 */
final class Supervised {

    /** How a service is started (again). */
    interface Starter {
        ChildProcess start() throws IOException;
    }

    private static final Duration HEALTHY_RUN = Duration.ofMinutes(1);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

    private final String name;
    private final Starter starter;
    private ChildProcess process;
    private long startedAt;
    private int restarts;
    private int failuresInARow;
    private long restartAt = -1;
    private boolean supervising = true;

    Supervised(String name, Starter starter) {
        this.name = name;
        this.starter = starter;
    }

    /** 1 s, 2 s, 4 s ... up to 30 s: for the n-th failure in a row. */
    static Duration backoff(int failuresInARow) {
        long seconds = 1L << Math.min(failuresInARow - 1, 5);
        return Duration.ofSeconds(Math.min(seconds, MAX_BACKOFF.toSeconds()));
    }

    /** The failures in a row after one more death: a run of a minute or more starts the count again. */
    static int failuresInARow(int before, Duration ran) {
        return ran.compareTo(HEALTHY_RUN) >= 0 ? 1 : before + 1;
    }

    String name() {
        return name;
    }

    int restarts() {
        return restarts;
    }

    synchronized ChildProcess process() {
        return process;
    }

    synchronized ChildProcess start() throws IOException {
        process = starter.start();
        startedAt = System.nanoTime();
        return process;
    }

    /** Once the process has died: what to tell the user (once per death), or null. */
    synchronized String check() {
        if (!supervising || process.alive() || restartAt >= 0) {
            return null;
        }
        Duration ran = Duration.ofNanos(System.nanoTime() - startedAt);
        failuresInARow = failuresInARow(failuresInARow, ran);
        Duration wait = backoff(failuresInARow);
        restartAt = System.nanoTime() + wait.toNanos();
        StringBuilder line = new StringBuilder("flywheel: " + name + " exited with code " + process.exitCode() + " after "
                + human(ran) + "; restarting it in " + wait.toSeconds() + " s (restart " + (restarts + 1) + "). " + process.log()
                + " ends:");
        for (String l : lastLines(3)) {
            line.append("\n    ").append(l);
        }
        return line.toString();
    }

    /** Starts the service again once its backoff has passed; returns the new process, or null. */
    synchronized ChildProcess restartIfDue() throws IOException {
        if (!supervising || restartAt < 0 || System.nanoTime() < restartAt) {
            return null;
        }
        restartAt = -1;
        restarts++;
        return start();
    }

    /** No more restarts (the loop is stopping); returns the process to stop. */
    synchronized ChildProcess stopSupervising() {
        supervising = false;
        return process;
    }

    /** The end of the log without the command lines written before each start (classpaths). */
    private List<String> lastLines(int n) {
        List<String> lines = process.tail(40).lines().filter(l -> !l.startsWith("--- ") && !l.isBlank())
                .map(l -> l.length() > 200 ? l.substring(0, 200) + "..." : l).toList();
        return lines.subList(Math.max(0, lines.size() - n), lines.size());
    }

    private static String human(Duration d) {
        return d.toMinutes() > 0 ? d.toMinutes() + " min " + d.toSecondsPart() + " s" : d.toSeconds() + " s";
    }
}
