package io.flywheel.core.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import java.util.Map;
import org.apache.kafka.common.config.TopicConfig;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

class SettingsTest {

    @Test
    void flagBeatsPropertyBeatsEnvironmentBeatsDefault() {
        Settings s = Settings.of(Map.of("FLYWHEEL_KAFKA_BOOTSTRAP", "env:1"), Map.of());
        assertEquals("env:1", s.string("kafka.bootstrap", "default:1"));
        s = Settings.of(Map.of("FLYWHEEL_KAFKA_BOOTSTRAP", "env:1"), Map.of("flywheel.kafka.bootstrap", "prop:1"));
        assertEquals("prop:1", s.string("kafka.bootstrap", "default:1"));
        assertEquals("flag:1", s.with("kafka.bootstrap", "flag:1").string("kafka.bootstrap", "default:1"));
        assertEquals("default:1", Settings.of(Map.of(), Map.of()).string("kafka.bootstrap", "default:1"));
    }

    @Test
    void badValuesAreErrorsNamingTheSource() {
        Settings s = Settings.of(Map.of("FLYWHEEL_TOPIC_TOKENS_PARTITIONS", "many"), Map.of());
        Settings.ConfigException e = assertThrows(Settings.ConfigException.class, () -> s.integer("topic.tokens.partitions", 6));
        assertTrue(e.getMessage().contains("FLYWHEEL_TOPIC_TOKENS_PARTITIONS"), e.getMessage());
        assertThrows(Settings.ConfigException.class,
                () -> Settings.of(Map.of("FLYWHEEL_X", "maybe"), Map.of()).bool("x", false));
    }

    @Test
    void topicCatalogHasDesignDefaultsAndOverrides() {
        TopicCatalog defaults = TopicCatalog.defaults();
        assertEquals("flywheel.text.raw", defaults.name(Topic.TEXT_RAW));
        assertEquals("flywheel.checkpoints", defaults.name(Topic.CHECKPOINTS));
        assertEquals(TopicConfig.CLEANUP_POLICY_COMPACT, defaults.spec(Topic.RESPONSES).configs().get(TopicConfig.CLEANUP_POLICY_CONFIG));
        assertEquals(TopicConfig.CLEANUP_POLICY_COMPACT, defaults.spec(Topic.CHECKPOINTS).configs().get(TopicConfig.CLEANUP_POLICY_CONFIG));
        assertEquals(TopicConfig.CLEANUP_POLICY_DELETE, defaults.spec(Topic.TOKENS).configs().get(TopicConfig.CLEANUP_POLICY_CONFIG));
        assertEquals(Topic.values().length, defaults.all().size());

        TopicCatalog custom = TopicCatalog.from(Settings.of(Map.of(
                "FLYWHEEL_TOPICS_PREFIX", "team-a.",
                "FLYWHEEL_TOPIC_TOKENS_NAME", "lm.tokens",
                "FLYWHEEL_TOPIC_TEXT_RAW_PARTITIONS", "12",
                "FLYWHEEL_TOPICS_REPLICATION_FACTOR", "3"), Map.of()));
        assertEquals("team-a.text.raw", custom.name(Topic.TEXT_RAW));
        assertEquals("lm.tokens", custom.name(Topic.TOKENS));
        assertEquals(12, custom.spec(Topic.TEXT_RAW).partitions());
        assertEquals(3, custom.spec(Topic.TEXT_RAW).replicationFactor());
        assertEquals("2", custom.spec(Topic.TEXT_RAW).configs().get(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG));
    }

    @Command(name = "demo")
    static final class Demo {
        @Option(names = "--data-dir", defaultValue = "./.flywheel")
        String dataDir;

        @Option(names = "--port", defaultValue = "19092")
        int port;

        @Option(names = "--decode")
        boolean decode;
    }

    @Test
    void picocliOptionsFallBackToTheEnvironment() {
        Demo demo = new Demo();
        new CommandLine(demo).setDefaultValueProvider(new EnvDefaults(Map.of("FLYWHEEL_DATA_DIR", "/srv/fw",
                "FLYWHEEL_DECODE", "true"))).parseArgs();
        assertEquals("/srv/fw", demo.dataDir);
        assertEquals(19092, demo.port);
        assertEquals(false, demo.decode, "flags are not read from the environment");
        Demo flagged = new Demo();
        new CommandLine(flagged).setDefaultValueProvider(new EnvDefaults(Map.of("FLYWHEEL_DATA_DIR", "/srv/fw")))
                .parseArgs("--data-dir", "/tmp/x");
        assertEquals("/tmp/x", flagged.dataDir);
    }
}
