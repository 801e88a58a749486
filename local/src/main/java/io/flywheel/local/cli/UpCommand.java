package io.flywheel.local.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/**
 * {@code flywheel up}: the whole loop on this machine. At this stage of the project it runs the
 * broker with the topic catalog; the stream apps, trainer and serving join as they land.
 */
@Command(name = "up", mixinStandardHelpOptions = true,
        description = {"Run Flywheel locally on the embedded default until Ctrl-C.",
                "Today: a KRaft broker with every Flywheel topic. A second 'up' resumes from the stored state."})
public final class UpCommand implements Callable<Integer> {

    @Mixin
    BrokerCommand.BrokerOptions broker;

    @Override
    public Integer call() throws Exception {
        return BrokerCommand.runUntilStopped(broker.options(), "flywheel: up; Ctrl-C to stop");
    }
}
