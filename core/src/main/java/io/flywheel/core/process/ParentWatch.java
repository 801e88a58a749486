package io.flywheel.core.process;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Optional;

/**
 * A service started by a launcher ({@code ./flywheel up}) ends when its launcher does, however the
 * launcher ended: killed with SIGKILL, its terminal closed. Otherwise the services outlive it as
 * orphans that hold the ports and the data folder. The launcher names itself in
 * {@value #ENV}; without it (Kubernetes, a service started by hand) nothing is watched.
 *
 * <p>The service is stopped as SIGTERM stops it ({@link System#exit}, so its shutdown hooks run:
 * the trainer writes its final checkpoint, the streams commit).
 */
public final class ParentWatch {

    /** The environment variable that holds the launcher's pid. */
    public static final String ENV = "FLYWHEEL_PARENT_PID";
    /** The exit code of a service whose launcher went away: as if SIGTERM had stopped it. */
    public static final int EXIT_CODE = 143;

    private ParentWatch() {}

    /** The launcher named by {@value #ENV}, if it is set. */
    public static Optional<Long> parentPid() {
        String pid = System.getenv(ENV);
        if (pid == null || pid.isBlank()) {
            return Optional.empty();
        }
        try {
            return Optional.of(Long.parseLong(pid.strip()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(ENV + " must be a process id, found '" + pid + "'");
        }
    }

    /** Runs {@code onExit} once the launcher has gone (at once if it is gone already); no-op without one. */
    public static void start(Runnable onExit) {
        parentPid().ifPresent(pid -> {
            Optional<ProcessHandle> parent = ProcessHandle.of(pid);
            if (parent.isEmpty() || !parent.get().isAlive()) {
                onExit.run();
                return;
            }
            parent.get().onExit().thenRun(() -> {
                System.err.println("flywheel: the launcher (pid " + pid + ") has gone; stopping");
                onExit.run();
            });
        });
    }

    /**
     * {@code java ... ParentWatch MAIN_CLASS ARGS...}: watches the launcher, then runs
     * {@code MAIN_CLASS.main(ARGS)} in this thread.
     */
    public static void main(String[] args) throws Throwable {
        if (args.length == 0) {
            System.err.println("usage: ParentWatch MAIN_CLASS [ARGS...]");
            System.exit(2);
        }
        start(() -> System.exit(EXIT_CODE));
        Method main = Class.forName(args[0]).getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) Arrays.copyOfRange(args, 1, args.length));
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
