package io.flywheel.core.cli;

import io.flywheel.core.config.EnvDefaults;
import io.flywheel.core.config.Settings;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.io.IOException;
import java.io.PrintWriter;
import picocli.CommandLine;

/**
 * Runs a picocli command the way every Flywheel entry point does: options default to
 * {@code FLYWHEEL_<OPTION>}, an error is one line prefixed by the program name, and the exit code
 * is 0 done, 1 failed while running, 2 bad usage or input.
 */
public final class CommandLines {

    public static final int EXIT_FAILED = 1;
    public static final int EXIT_USAGE = 2;

    private CommandLines() {}

    public static int execute(String program, Object command, String... args) {
        CommandLine cli = new CommandLine(command);
        cli.setDefaultValueProvider(new EnvDefaults());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            PrintWriter err = commandLine.getErr();
            err.println(program + ": " + e.getMessage());
            if (e instanceof UsageError || e instanceof Settings.ConfigException) {
                return EXIT_USAGE;
            }
            if (System.getenv("FLYWHEEL_DEBUG") != null) {
                e.printStackTrace(err);
            } else {
                err.println("(set FLYWHEEL_DEBUG=1 for the stack trace)");
            }
            return EXIT_FAILED;
        });
        return cli.execute(args);
    }

    /** A service's tokenizer (a file or a public vocabulary name); one that cannot be read is bad usage. */
    public static Tokenizer tokenizer(String fileOrName) {
        try {
            return TokenizerFiles.load(fileOrName);
        } catch (IOException e) {
            throw new UsageError("cannot load tokenizer '" + fileOrName + "': " + e.getMessage(), e);
        }
    }
}
