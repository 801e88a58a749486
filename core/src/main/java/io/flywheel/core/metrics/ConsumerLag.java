package io.flywheel.core.metrics;

import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;

/**
 * A service's consumer lag as a Prometheus gauge, read at scrape time from the Kafka client's own
 * {@code records-lag} metric (one per assigned partition): records behind the end of each input
 * topic, summed over this instance's partitions. Summed over instances it is the group's lag, which
 * is what the "consumer lag growing" alert and the dashboard watch. Works for a plain consumer and
 * for Kafka Streams ({@code KafkaStreams::metrics}) alike.
 */
public final class ConsumerLag {

    private ConsumerLag() {}

    /**
     * Registers {@code name} with a {@code topic} label.
     *
     * @param clientMetrics the client's metrics, e.g. {@code streams::metrics}; called on each scrape
     * @param topics        the input topics to report; each is exported (at 0 before assignment), others are left out
     */
    public static void register(PrometheusRegistry registry, String name, String help,
                                Supplier<Map<MetricName, ? extends Metric>> clientMetrics, Iterable<String> topics) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("topic")
                .callback(cb -> lagByTopic(clientMetrics.get(), topics).forEach((topic, lag) -> cb.call(lag, topic)))
                .register(registry);
    }

    static Map<String, Double> lagByTopic(Map<MetricName, ? extends Metric> metrics, Iterable<String> topics) {
        Map<String, Double> lag = new TreeMap<>();
        // Older clients tag partitions with the topic's dots turned into underscores: accept both.
        Map<String, String> byTag = new TreeMap<>();
        topics.forEach(t -> {
            lag.put(t, 0.0);
            byTag.put(t, t);
            byTag.put(t.replace('.', '_'), t);
        });
        if (metrics == null) {
            return lag;
        }
        for (var e : metrics.entrySet()) {
            MetricName m = e.getKey();
            if (!m.name().equals("records-lag") || !m.group().equals("consumer-fetch-manager-metrics")) {
                continue;
            }
            String topic = byTag.get(m.tags().getOrDefault("topic", ""));
            if (topic == null || !m.tags().containsKey("partition")) {
                continue;
            }
            // NaN until the first fetch of a partition answers: unknown, not zero.
            if (e.getValue().metricValue() instanceof Number n && !Double.isNaN(n.doubleValue())) {
                lag.merge(topic, n.doubleValue(), Double::sum);
            }
        }
        return lag;
    }
}
