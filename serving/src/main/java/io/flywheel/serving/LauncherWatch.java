package io.flywheel.serving;

import io.flywheel.core.process.ParentWatch;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;

/**
 * Started by {@code ./flywheel up}, serving stops when its launcher goes, however it went
 * ({@link ParentWatch}); otherwise it would hold the API port as an orphan.
 */
@ApplicationScoped
public class LauncherWatch {

    void start(@Observes StartupEvent event) {
        ParentWatch.start(() -> Quarkus.asyncExit(ParentWatch.EXIT_CODE));
    }
}
