package io.flywheel.core.config;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The configuration convention every Flywheel service follows. A setting has a dotted key such as
 * {@code kafka.bootstrap}; its value comes from, in this order:
 * <ol>
 *   <li>a command-line flag ({@code --bootstrap}), passed in as an explicit value;</li>
 *   <li>a JVM system property {@code -Dflywheel.kafka.bootstrap=...};</li>
 *   <li>an environment variable {@code FLYWHEEL_KAFKA_BOOTSTRAP} (dots and dashes become underscores);</li>
 *   <li>the default written next to the setting.</li>
 * </ol>
 * Quarkus services map the same keys in {@code application.properties} with {@code ${FLYWHEEL_...}}
 * overrides. A value that does not parse is an error naming the key and its source; it is never
 * replaced by the default.
 */
public final class Settings {

    private final Map<String, String> explicit;
    private final Map<String, String> env;
    private final Map<String, String> system;

    private Settings(Map<String, String> explicit, Map<String, String> env, Map<String, String> system) {
        this.explicit = explicit;
        this.env = env;
        this.system = system;
    }

    /** Settings from this process's environment and system properties. */
    public static Settings fromEnvironment() {
        Map<String, String> props = new HashMap<>();
        System.getProperties().forEach((k, v) -> props.put(k.toString(), v.toString()));
        return new Settings(Map.of(), Map.copyOf(System.getenv()), props);
    }

    /** Settings from given maps; for tests and for services that embed others. */
    public static Settings of(Map<String, String> env, Map<String, String> systemProperties) {
        return new Settings(Map.of(), Map.copyOf(env), Map.copyOf(systemProperties));
    }

    /** A copy in which {@code key} is set explicitly, as a flag does; {@code null} leaves it unset. */
    public Settings with(String key, Object value) {
        if (value == null) {
            return this;
        }
        Map<String, String> copy = new HashMap<>(explicit);
        copy.put(key, value.toString());
        return new Settings(copy, env, system);
    }

    public static String envName(String key) {
        return "FLYWHEEL_" + key.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
    }

    public static String propertyName(String key) {
        return "flywheel." + key;
    }

    /** The raw value and where it came from, if any source sets it. */
    public Optional<Value> lookup(String key) {
        if (explicit.containsKey(key)) {
            return Optional.of(new Value(explicit.get(key), "flag for " + key));
        }
        String prop = propertyName(key);
        if (system.containsKey(prop)) {
            return Optional.of(new Value(system.get(prop), "system property " + prop));
        }
        String envName = envName(key);
        if (env.containsKey(envName)) {
            return Optional.of(new Value(env.get(envName), "environment variable " + envName));
        }
        return Optional.empty();
    }

    public String string(String key, String defaultValue) {
        return lookup(key).map(Value::raw).orElse(defaultValue);
    }

    public int integer(String key, int defaultValue) {
        return lookup(key).map(v -> v.parse(Integer::parseInt, "an integer")).orElse(defaultValue);
    }

    public long longValue(String key, long defaultValue) {
        return lookup(key).map(v -> v.parse(Long::parseLong, "an integer")).orElse(defaultValue);
    }

    public double decimal(String key, double defaultValue) {
        return lookup(key).map(v -> v.parse(Double::parseDouble, "a number")).orElse(defaultValue);
    }

    public boolean bool(String key, boolean defaultValue) {
        return lookup(key).map(v -> v.parse(s -> switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "true", "yes", "1" -> true;
            case "false", "no", "0" -> false;
            default -> throw new IllegalArgumentException(s);
        }, "true or false")).orElse(defaultValue);
    }

    public record Value(String raw, String source) {
        <T> T parse(java.util.function.Function<String, T> parser, String expected) {
            try {
                return parser.apply(raw.trim());
            } catch (RuntimeException e) {
                throw new ConfigException(source + " must be " + expected + ", found '" + raw + "'");
            }
        }
    }

    public static final class ConfigException extends RuntimeException {
        public ConfigException(String message) {
            super(message);
        }
    }
}
