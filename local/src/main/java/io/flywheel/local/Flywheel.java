package io.flywheel.local;

import io.flywheel.core.cli.CommandLines;
import io.flywheel.feedback.FeedbackCommand;
import io.flywheel.ingest.IngestCommand;
import io.flywheel.tokenizerstream.StreamCommand;
import io.flywheel.trainer.TrainCommand;
import io.flywheel.local.cli.BenchCommand;
import io.flywheel.local.cli.BrokerCommand;
import io.flywheel.local.cli.SimulateChatCommand;
import io.flywheel.local.cli.TokenizeCommand;
import io.flywheel.local.cli.TokenizerCommand;
import io.flywheel.local.cli.UpCommand;
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
                FeedbackCommand.class, TokenizerCommand.class, TokenizeCommand.class, TrainCommand.class,
                SimulateChatCommand.class, BenchCommand.class},
        footer = {"", "Every option also reads FLYWHEEL_<OPTION> from the environment, e.g. FLYWHEEL_DATA_DIR."})
public final class Flywheel implements Runnable {

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
        return CommandLines.execute("flywheel", new Flywheel(), args);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Flywheel.class.getPackage().getImplementationVersion();
            return new String[] {"flywheel " + (v == null ? "dev" : v)};
        }
    }
}
