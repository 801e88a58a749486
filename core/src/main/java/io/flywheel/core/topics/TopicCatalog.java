package io.flywheel.core.topics;

import io.flywheel.core.config.Settings;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Names and settings of every topic, resolved once from {@link Settings}:
 * <ul>
 *   <li>{@code topics.prefix} (default {@code flywheel.}) before each name;</li>
 *   <li>{@code topic.<suffix>.name} replaces one full name, e.g. {@code topic.tokens.name};</li>
 *   <li>{@code topic.<suffix>.partitions}, {@code topic.<suffix>.retention.ms};</li>
 *   <li>{@code topics.replication.factor} (default 1, a single local broker) and
 *       {@code topics.min.insync.replicas} (default: 1 below three replicas, else 2).</li>
 * </ul>
 */
public final class TopicCatalog {

    /** Large enough for a 10 MB document plus its JSON envelope, on every text-carrying topic. */
    public static final int MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
    /**
     * Rejected topics keep the original record inside JSON (escaped, or base64 when it is not
     * UTF-8), which can grow it by a third or more: they take four times the record limit.
     */
    public static final int MAX_REJECTED_MESSAGE_BYTES = 4 * MAX_MESSAGE_BYTES;

    private final Map<Topic, Spec> specs;

    public record Spec(Topic topic, String name, int partitions, short replicationFactor, Map<String, String> configs) {
        public NewTopic newTopic() {
            return new NewTopic(name, partitions, replicationFactor).configs(configs);
        }
    }

    private TopicCatalog(Map<Topic, Spec> specs) {
        this.specs = specs;
    }

    public static TopicCatalog defaults() {
        return from(Settings.of(Map.of(), Map.of()));
    }

    public static TopicCatalog from(Settings settings) {
        String prefix = settings.string("topics.prefix", "flywheel.");
        short replication = (short) settings.integer("topics.replication.factor", 1);
        int minIsr = settings.integer("topics.min.insync.replicas", replication >= 3 ? 2 : 1);
        Map<Topic, Spec> specs = new EnumMap<>(Topic.class);
        for (Topic topic : Topic.values()) {
            String key = "topic." + topic.suffix();
            String name = settings.string(key + ".name", prefix + topic.suffix());
            int partitions = settings.integer(key + ".partitions", topic.defaultPartitions());
            Map<String, String> configs = new LinkedHashMap<>();
            configs.put(TopicConfig.CLEANUP_POLICY_CONFIG,
                    topic.compacted() ? TopicConfig.CLEANUP_POLICY_COMPACT : TopicConfig.CLEANUP_POLICY_DELETE);
            configs.put(TopicConfig.RETENTION_MS_CONFIG, settings.string(key + ".retention.ms", topic.defaultRetentionMs()));
            configs.put(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, Integer.toString(minIsr));
            boolean rejected = topic == Topic.TEXT_REJECTED || topic == Topic.FEEDBACK_REJECTED;
            configs.put(TopicConfig.MAX_MESSAGE_BYTES_CONFIG,
                    Integer.toString(rejected ? MAX_REJECTED_MESSAGE_BYTES : MAX_MESSAGE_BYTES));
            configs.put(TopicConfig.COMPRESSION_TYPE_CONFIG, "producer");
            specs.put(topic, new Spec(topic, name, partitions, replication, Map.copyOf(configs)));
        }
        return new TopicCatalog(specs);
    }

    public String name(Topic topic) {
        return specs.get(topic).name();
    }

    public Spec spec(Topic topic) {
        return specs.get(topic);
    }

    public List<Spec> all() {
        return List.copyOf(specs.values());
    }

    /**
     * Creates every topic that does not exist yet; existing topics are left as they are.
     *
     * @return the names of the topics this call created
     */
    public List<String> ensureCreated(Admin admin) throws InterruptedException {
        List<String> created = new ArrayList<>();
        for (Spec spec : specs.values()) {
            try {
                admin.createTopics(List.of(spec.newTopic())).all().get();
                created.add(spec.name());
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw new IllegalStateException("cannot create topic " + spec.name() + ": " + e.getCause().getMessage(), e.getCause());
                }
            }
        }
        return created;
    }
}
