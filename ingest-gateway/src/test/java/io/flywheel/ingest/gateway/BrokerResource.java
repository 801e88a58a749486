package io.flywheel.ingest.gateway;

import io.flywheel.core.topics.Topic;
import io.flywheel.testsupport.KafkaBroker;
import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import java.util.Map;

/**
 * A real in-process KRaft broker for the {@code @QuarkusTest}s, with a {@code text.raw} topic of
 * its own, wired into the app's configuration.
 */
public class BrokerResource implements QuarkusTestResourceLifecycleManager {

    static final String API_KEY = "test-key-1";

    static KafkaBroker broker;
    static String topic;

    @Override
    public Map<String, String> start() {
        try {
            broker = KafkaBroker.start();
            topic = broker.createTopic(KafkaBroker.uniqueName("gateway-text-raw"), 3);
        } catch (Exception e) {
            throw new IllegalStateException("cannot start the test broker", e);
        }
        return Map.of(
                "flywheel.kafka.bootstrap", broker.bootstrapServers(),
                "flywheel.topic." + Topic.TEXT_RAW.suffix() + ".name", topic,
                "flywheel.gateway.api-keys", API_KEY + ",test-key-2",
                "flywheel.gateway.max-document-bytes", "1000",
                "flywheel.gateway.max-batch-bytes", "20000",
                "flywheel.gateway.max-batch-documents", "50");
    }

    @Override
    public void stop() {
        try {
            if (broker != null) {
                broker.close();
            }
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
