package io.flywheel.serving;

import jakarta.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** {@code /q/health/ready} is up only while a model is loaded. */
@Readiness
@ApplicationScoped
public class ModelReadiness implements HealthCheck {

    private final ModelRegistry registry;

    ModelReadiness(ModelRegistry registry) {
        this.registry = registry;
    }

    @Override
    public HealthCheckResponse call() {
        return registry.version()
                .map(v -> HealthCheckResponse.named("model").up().withData("version", v).build())
                .orElseGet(() -> HealthCheckResponse.named("model").down().withData("reason", "no checkpoint loaded yet").build());
    }
}
