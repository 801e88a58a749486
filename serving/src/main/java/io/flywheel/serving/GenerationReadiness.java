package io.flywheel.serving;

import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/**
 * The watchdog: {@code /q/health/ready} goes down while requests wait for a slot but the engine
 * has produced nothing for {@code stall-timeout} (every slot stuck), and while completions cannot
 * be written to the responses topic (the feedback loop would lose them). Either way a load
 * balancer should send new chats elsewhere; both come back up on their own.
 */
@Readiness
@ApplicationScoped
public class GenerationReadiness implements HealthCheck {

    private final ServingMetrics metrics;
    private final EventSink events;
    private final long stallNanos;

    GenerationReadiness(ServingMetrics metrics, EventSink events, ServingConfig config) {
        this.metrics = metrics;
        this.events = events;
        this.stallNanos = config.stallTimeout().toNanos();
    }

    @Override
    public HealthCheckResponse call() {
        long idle = metrics.sinceProgress();
        int waiting = metrics.waiting().get();
        if (waiting > 0 && idle > stallNanos) {
            return HealthCheckResponse.named("generation").down().withData("waiting", waiting)
                    .withData("reason", "no token generated for " + Duration.ofNanos(idle).toSeconds() + " s while requests wait").build();
        }
        long failing = events.responsesFailingNanos();
        if (failing > stallNanos) {
            return HealthCheckResponse.named("generation").down()
                    .withData("reason", "completions not written to the responses topic for " + Duration.ofNanos(failing).toSeconds() + " s")
                    .build();
        }
        return HealthCheckResponse.named("generation").up().withData("running", metrics.running().get()).withData("waiting", waiting).build();
    }
}
