package io.flywheel.local.up;

import io.flywheel.core.process.ParentWatch;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One service of the local loop in its own JVM (or, for Prometheus, its own program), its output
 * appended to a log file. Its own JVM
 * so that each has its own heap (and off-heap cap), and a crash of one is seen, not shared.
 */
final class ChildProcess implements AutoCloseable {

    private final String name;
    private final Process process;
    private final Path log;

    private ChildProcess(String name, Process process, Path log) {
        this.name = name;
        this.process = process;
        this.log = log;
    }

    /**
     * Starts {@code java <jvmOptions> <mainOrJar...>} with this JVM's classpath (unless the
     * arguments name their own).
     */
    static ChildProcess java(String name, String owner, List<String> jvmOptions, List<String> arguments, Map<String, String> env,
                             Path logDir) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add(marker(owner));                     // first, so a truncated command line still shows it
        command.add("-Dflywheel.service=" + name);
        command.addAll(jvmOptions);
        if (!arguments.get(0).equals("-jar")) {
            // Our own mains run behind ParentWatch, so that they end with the launcher; a jar
            // (serving's) watches by itself.
            command.add("-cp");
            command.add(System.getProperty("java.class.path"));
            command.add(ParentWatch.class.getName());
        }
        command.addAll(arguments);
        return start(name, command, env, logDir);
    }

    /**
     * Starts another program (Prometheus) the same way: its output to {@code logDir/name.log}. It
     * cannot watch its launcher as our JVMs do, so a small shell does it for it: the program ends
     * when the launcher does, and SIGTERM to the shell is passed on to it.
     */
    static ChildProcess program(String name, List<String> command, Map<String, String> env, Path logDir) throws IOException {
        String launcher = Long.toString(ProcessHandle.current().pid());
        String watch = "\"$@\" & child=$!; trap 'kill $child 2>/dev/null' TERM INT; "
                + "while kill -0 " + launcher + " 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; "
                + "kill $child 2>/dev/null; wait $child";
        List<String> wrapped = new ArrayList<>(List.of("/bin/sh", "-c", watch, name));
        wrapped.addAll(command);
        return start(name, wrapped, env, logDir);
    }

    private static ChildProcess start(String name, List<String> command, Map<String, String> env, Path logDir) throws IOException {
        Files.createDirectories(logDir);
        Path log = logDir.resolve(name + ".log");
        Files.writeString(log, "\n--- " + java.time.Instant.now() + " " + String.join(" ", command) + "\n",
                StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().putAll(env);
        pb.environment().put(ParentWatch.ENV, Long.toString(ProcessHandle.current().pid()));
        return new ChildProcess(name, pb.start(), log);
    }

    /** Marks a service as started by the {@code up} that owns a data folder. */
    static String marker(String owner) {
        return "-Dflywheel.up=" + owner;
    }

    /** Whether a command line is one the {@code up} that owns {@code owner} started: a JVM, or its Prometheus. */
    static boolean ownedBy(String commandLine, String owner) {
        return commandLine.contains(marker(owner)) || commandLine.contains(LocalPrometheus.configFlag(Path.of(owner)));
    }

    String name() {
        return name;
    }

    long pid() {
        return process.pid();
    }

    Path log() {
        return log;
    }

    boolean alive() {
        return process.isAlive();
    }

    int exitCode() {
        return process.exitValue();
    }

    /** SIGTERM, as Ctrl-C would send; the service shuts down cleanly (the trainer writes a checkpoint). */
    void stop(Duration grace) {
        if (!process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
                System.err.println("flywheel: " + name + " did not stop within " + grace.toSeconds() + " s; killing it");
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        stop(Duration.ofSeconds(30));
    }

    /** The last lines of the log, to show why a service stopped. */
    String tail(int lines) {
        try {
            List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }
}
