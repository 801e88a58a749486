package io.flywheel.local;

import io.flywheel.core.config.EnvDefaults;
import io.flywheel.core.config.Settings;
import io.flywheel.ingest.IngestCommand;
import io.flywheel.tokenizerstream.StreamCommand;
import io.flywheel.local.cli.BrokerCommand;
import io.flywheel.local.cli.TokenizeCommand;
import io.flywheel.local.cli.TokenizerCommand;
import io.flywheel.local.cli.UpCommand;
import io.flywheel.core.cli.UsageError;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code ./flywheel}: the one command-line entry. Exit codes: 0 done, 1 failed while running,
 * 2 bad usage or bad input (unknown command, bad flag, unreadable file, bad token id).
 */
@Command(name = "flywheel", mixinStandardHelpOptions = true, versionProvider = Flywheel.Version.class,
        description = "A language model that keeps learning from live streams.",
        subcommands = {UpCommand.class, BrokerCommand.class, IngestCommand.class, StreamCommand.class,
                TokenizerCommand.class, TokenizeCommand.class},
        footer = {"", "Every option also reads FLYWHEEL_<OPTION> from the environment, e.g. FLYWHEEL_DATA_DIR."})
public final class Flywheel implements Runnable {

    public static final int EXIT_FAILED = 1;
    public static final int EXIT_USAGE = 2;

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "Missing command");
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (for tests and embedding). */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Flywheel());
        cli.setDefaultValueProvider(new EnvDefaults());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            PrintWriter err = commandLine.getErr();
            err.println("flywheel: " + e.getMessage());
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

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Flywheel.class.getPackage().getImplementationVersion();
            return new String[] {"flywheel " + (v == null ? "dev" : v)};
        }
    }
}
