package io.flywheel.core.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.junit.jupiter.api.Test;

class ConsumerLagTest {

    private static void put(Map<MetricName, Metric> metrics, String name, String group, Map<String, String> tags, double value) {
        MetricName metricName = new MetricName(name, group, "", tags);
        metrics.put(metricName, new Metric() {
            @Override
            public MetricName metricName() {
                return metricName;
            }

            @Override
            public Object metricValue() {
                return value;
            }
        });
    }

    @Test
    void sumsPartitionLagOfTheWatchedTopicsOnly() {
        Map<MetricName, Metric> metrics = new HashMap<>();
        String fetch = "consumer-fetch-manager-metrics";
        put(metrics, "records-lag", fetch, Map.of("client-id", "a", "topic", "flywheel.text.raw", "partition", "0"), 5);
        put(metrics, "records-lag", fetch, Map.of("client-id", "a", "topic", "flywheel_text_raw", "partition", "1"), 7);
        put(metrics, "records-lag", fetch, Map.of("client-id", "a", "topic", "flywheel.text.raw", "partition", "2"), Double.NaN);
        put(metrics, "records-lag", fetch, Map.of("client-id", "a", "topic", "other", "partition", "0"), 100);
        put(metrics, "records-lag-max", fetch, Map.of("client-id", "a", "topic", "flywheel.text.raw"), 40);
        put(metrics, "records-lag", "restore-consumer", Map.of("topic", "flywheel.text.raw", "partition", "0"), 1000);

        assertEquals(Map.of("flywheel.text.raw", 12.0, "flywheel.tokens", 0.0),
                ConsumerLag.lagByTopic(metrics, List.of("flywheel.text.raw", "flywheel.tokens")));
    }
}
