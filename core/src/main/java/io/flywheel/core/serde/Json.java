package io.flywheel.core.serde;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Strict reading and plain writing of the JSON records. Reading goes through the tree model so that
 * every field is checked by hand: a missing, null, mistyped or unknown field is an error that names
 * the field. Nothing is defaulted.
 */
public final class Json {

    static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private Json() {}

    public static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    public static byte[] write(JsonNode node) {
        try {
            return MAPPER.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }

    /** A reader over the fields of an object already parsed (a checkpoint manifest, say). */
    public static Fields fields(JsonNode node) {
        return new Fields("", node);
    }

    /** Writes {@code values} as an object of numbers, keys sorted. */
    public static void putNumbers(ObjectNode node, String field, Map<String, Double> values) {
        ObjectNode out = node.putObject(field);
        new TreeMap<>(values).forEach(out::put);
    }

    /**
     * Writes consumer positions, {@code {topic: {partition: next offset}}}, keys sorted: the shape
     * of the {@code offsets} of a checkpoint event and of a checkpoint manifest.
     */
    public static void putOffsets(ObjectNode node, String field, Map<String, Map<Integer, Long>> offsets) {
        ObjectNode out = node.putObject(field);
        new TreeMap<>(offsets).forEach((topic, partitions) -> {
            ObjectNode p = out.putObject(topic);
            new TreeMap<>(partitions).forEach((partition, offset) -> p.put(Integer.toString(partition), offset));
        });
    }

    /** Parses {@code bytes} as one JSON object and returns a reader over its fields. */
    public static Fields read(byte[] bytes) {
        JsonNode node;
        try {
            node = MAPPER.readTree(bytes);
        } catch (IOException e) {
            throw new RecordFormatException("record", "not valid JSON (" + firstLine(e.getMessage()) + ")", e);
        }
        if (node == null || node.isMissingNode()) {
            throw new RecordFormatException("record", "is empty");
        }
        return new Fields("", node);
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "unreadable";
        }
        int nl = message.indexOf('\n');
        return nl < 0 ? message : message.substring(0, nl);
    }

    /**
     * The fields of one JSON object. Each accessor marks its field as read; {@link #done()} fails on
     * any field that no accessor asked for.
     */
    public static final class Fields {
        private final String path;
        private final ObjectNode node;
        private final Set<String> read = new HashSet<>();

        Fields(String path, JsonNode node) {
            if (!node.isObject()) {
                throw new RecordFormatException(path.isEmpty() ? "record" : path,
                        "must be a JSON object, found " + describe(node));
            }
            this.path = path;
            this.node = (ObjectNode) node;
        }

        private String name(String field) {
            return path.isEmpty() ? field : path + "." + field;
        }

        private JsonNode present(String field) {
            read.add(field);
            JsonNode value = node.get(field);
            if (value == null) {
                throw new RecordFormatException(name(field), "is missing");
            }
            if (value.isNull()) {
                throw new RecordFormatException(name(field), "is null");
            }
            return value;
        }

        private boolean has(String field) {
            read.add(field);
            JsonNode value = node.get(field);
            return value != null && !value.isNull();
        }

        public String string(String field) {
            JsonNode value = present(field);
            if (!value.isTextual()) {
                throw new RecordFormatException(name(field), "must be a string, found " + describe(value));
            }
            return value.textValue();
        }

        public String nonBlankString(String field) {
            String value = string(field);
            if (value.isBlank()) {
                throw new RecordFormatException(name(field), "must not be blank");
            }
            return value;
        }

        /** A string that may be absent or null; returns {@code null} then. */
        public String optionalString(String field) {
            return has(field) ? string(field) : null;
        }

        public long integer(String field) {
            JsonNode value = present(field);
            if (!value.isIntegralNumber() || !value.canConvertToLong()) {
                throw new RecordFormatException(name(field), "must be an integer, found " + describe(value));
            }
            return value.longValue();
        }

        public long nonNegativeInteger(String field) {
            long value = integer(field);
            if (value < 0) {
                throw new RecordFormatException(name(field), "must be >= 0, found " + value);
            }
            return value;
        }

        public double number(String field) {
            JsonNode value = present(field);
            if (!value.isNumber()) {
                throw new RecordFormatException(name(field), "must be a number, found " + describe(value));
            }
            return value.doubleValue();
        }

        public boolean bool(String field) {
            JsonNode value = present(field);
            if (!value.isBoolean()) {
                throw new RecordFormatException(name(field), "must be true or false, found " + describe(value));
            }
            return value.booleanValue();
        }

        /** An integer that may be absent or null; returns {@code null} then. */
        public Long optionalInteger(String field) {
            return has(field) ? integer(field) : null;
        }

        /** A number that may be absent or null; returns {@code null} then. */
        public Double optionalNumber(String field) {
            return has(field) ? number(field) : null;
        }

        /** The field's JSON value as it is, for shapes the typed accessors do not cover (arrays). */
        public JsonNode raw(String field) {
            return present(field);
        }

        public Fields object(String field) {
            return new Fields(name(field), present(field));
        }

        /** An object of string values; an absent field is an empty map. */
        public Map<String, String> optionalStringMap(String field) {
            Map<String, String> out = new LinkedHashMap<>();
            if (!has(field)) {
                return out;
            }
            Fields map = object(field);
            for (String key : map.fieldNames()) {
                out.put(key, map.string(key));
            }
            return out;
        }

        /**
         * An object of scalar values, each as text (strings as they are, numbers and booleans as
         * JSON writes them); an absent field is an empty map. Objects and arrays inside are refused.
         */
        public Map<String, String> optionalScalarMap(String field) {
            Map<String, String> out = new LinkedHashMap<>();
            if (!has(field)) {
                return out;
            }
            Fields map = object(field);
            for (String key : map.fieldNames()) {
                JsonNode value = map.present(key);
                if (!value.isValueNode()) {
                    throw new RecordFormatException(map.name(key), "must be a string, number or boolean, found " + describe(value));
                }
                out.put(key, value.asText());
            }
            return out;
        }

        /** An object of numeric values; an absent field is an empty map. */
        public Map<String, Double> optionalNumberMap(String field) {
            Map<String, Double> out = new LinkedHashMap<>();
            if (!has(field)) {
                return out;
            }
            Fields map = object(field);
            for (String key : map.fieldNames()) {
                JsonNode value = map.present(key);
                if (!value.isNumber()) {
                    throw new RecordFormatException(map.name(key), "must be a number, found " + describe(value));
                }
                out.put(key, value.doubleValue());
            }
            return out;
        }

        /** Consumer positions written by {@link Json#putOffsets}; partitions and offsets must be >= 0. */
        public Map<String, Map<Integer, Long>> offsets(String field) {
            Map<String, Map<Integer, Long>> offsets = new LinkedHashMap<>();
            Fields topics = object(field);
            for (String topic : topics.fieldNames()) {
                Fields partitions = topics.object(topic);
                Map<Integer, Long> byPartition = new LinkedHashMap<>();
                for (String partition : partitions.fieldNames()) {
                    int p;
                    try {
                        p = Integer.parseInt(partition);
                    } catch (NumberFormatException ex) {
                        throw new RecordFormatException(partitions.name(partition), "partition must be an integer");
                    }
                    if (p < 0) {
                        throw new RecordFormatException(partitions.name(partition), "partition must be >= 0");
                    }
                    byPartition.put(p, partitions.nonNegativeInteger(partition));
                }
                partitions.done();
                offsets.put(topic, byPartition);
            }
            topics.done();
            return offsets;
        }

        public Iterable<String> fieldNames() {
            Set<String> names = new LinkedHashSet<>();
            for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
                names.add(it.next());
            }
            return names;
        }

        public boolean contains(String field) {
            return node.has(field);
        }

        /** Fails on the first field that was not read: a typo must not pass as an absent optional field. */
        public void done() {
            for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
                String field = it.next();
                if (!read.contains(field)) {
                    throw new RecordFormatException(name(field), "is not a known field");
                }
            }
        }

        private static String describe(JsonNode value) {
            return switch (value.getNodeType()) {
                case STRING -> "a string";
                case NUMBER -> value.isIntegralNumber() ? "the integer " + value : "the number " + value;
                case BOOLEAN -> "a boolean";
                case ARRAY -> "an array";
                case OBJECT -> "an object";
                case NULL -> "null";
                default -> value.getNodeType().name().toLowerCase();
            };
        }
    }
}
