package io.flywheel.serving;

import io.flywheel.core.config.Settings;
import io.flywheel.core.topics.TopicCatalog;
import java.util.HashMap;
import java.util.Map;
import org.eclipse.microprofile.config.Config;

/** Kafka settings from Quarkus's configuration, under the same keys every Flywheel service reads. */
final class Topics {

    private Topics() {}

    static String bootstrap(Config config) {
        return config.getOptionalValue("flywheel.kafka.bootstrap", String.class).orElse("127.0.0.1:19092");
    }

    /**
     * Topic names follow the {@code flywheel.topic...} / {@code FLYWHEEL_TOPIC...} settings of every
     * service; Quarkus's configuration (application.properties, tests) adds to them.
     */
    static TopicCatalog catalog(Config config) {
        Map<String, String> properties = new HashMap<>();
        for (String name : config.getPropertyNames()) {
            if (name.startsWith("flywheel.")) {
                config.getOptionalValue(name, String.class).ifPresent(v -> properties.put(name, v));
            }
        }
        return TopicCatalog.from(Settings.of(System.getenv(), properties));
    }
}
