package io.flywheel.tests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs the real {@code flywheel} command line in a child JVM, exactly as {@code ./flywheel} does
 * (same main class, same classpath as this test), so that exit codes, stdout and stderr are the
 * user's.
 */
final class Cli {

    record Result(int exit, byte[] stdout, String stderr) {
        String out() {
            return new String(stdout, StandardCharsets.UTF_8);
        }
    }

    private Cli() {}

    static ProcessBuilder command(List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx256m");
        cmd.add("-XX:+UseSerialGC");
        cmd.add("-Dorg.bytedeco.javacpp.maxbytes=512m");        // ND4J's off-heap memory, as ./flywheel caps it
        cmd.add("-Dorg.bytedeco.javacpp.maxphysicalbytes=1500m");
        if (!args.isEmpty() && (args.get(0).equals("bench") || args.get(0).equals("train"))) {
            cmd.add("--add-modules");                              // as ./flywheel runs them: the engine's exp
            cmd.add("jdk.incubator.vector");                       // and int8 run on the Vector API
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("io.flywheel.local.Flywheel");
        cmd.addAll(args);
        return new ProcessBuilder(cmd);
    }

    static Result run(byte[] stdin, String... args) throws IOException, InterruptedException {
        return run(java.util.Map.of(), stdin, args);
    }

    /** Runs with extra environment variables, e.g. {@code FLYWHEEL_TOPICS_PREFIX}. */
    static Result run(java.util.Map<String, String> env, byte[] stdin, String... args) throws IOException, InterruptedException {
        ProcessBuilder builder = command(List.of(args));
        builder.environment().putAll(env);
        Process p = builder.start();
        CompletableFuture<byte[]> out = CompletableFuture.supplyAsync(() -> readAll(p.getInputStream()));
        CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> readAll(p.getErrorStream()));
        try (var in = p.getOutputStream()) {
            in.write(stdin);
        } catch (IOException ignored) {
            // The command may exit before reading its input (a usage error): that is its answer.
        }
        if (!p.waitFor(Duration.ofMinutes(3).toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("flywheel " + String.join(" ", args) + " did not finish in 3 minutes");
        }
        return new Result(p.exitValue(), out.join(), new String(err.join(), StandardCharsets.UTF_8));
    }

    static Result run(String... args) throws IOException, InterruptedException {
        return run(new byte[0], args);
    }

    private static byte[] readAll(java.io.InputStream in) {
        try {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }
}
