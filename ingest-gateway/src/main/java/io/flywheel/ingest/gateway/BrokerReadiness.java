package io.flywheel.ingest.gateway;

import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.Readiness;

/** Ready when the broker answers and {@code text.raw} exists: then a request can be accepted. */
@Readiness
@ApplicationScoped
public class BrokerReadiness implements HealthCheck {

    private final RawTextSink sink;
    private final Admin admin;

    BrokerReadiness(RawTextSink sink) {
        this.sink = sink;
        this.admin = Admin.create(Map.of(
                AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, sink.bootstrap(),
                AdminClientConfig.CLIENT_ID_CONFIG, "flywheel-ingest-gateway-health",
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 5000,
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 2000));
    }

    @Override
    public HealthCheckResponse call() {
        var response = HealthCheckResponse.named("kafka").withData("topic", sink.topic());
        try {
            int partitions = admin.describeTopics(List.of(sink.topic()), new DescribeTopicsOptions().timeoutMs(2000))
                    .allTopicNames().get(3, TimeUnit.SECONDS).get(sink.topic()).partitions().size();
            return response.withData("partitions", partitions).up().build();
        } catch (Exception e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            return response.withData("error", String.valueOf(cause.getMessage())).down().build();
        }
    }

    @PreDestroy
    void close() {
        admin.close();
    }
}
