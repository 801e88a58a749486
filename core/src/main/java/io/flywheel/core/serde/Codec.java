package io.flywheel.core.serde;

import java.util.Map;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Turns one record type into bytes and back. {@link #decode} validates strictly and throws
 * {@link RecordFormatException}; it never fills in a missing field.
 */
public interface Codec<T> {

    byte[] encode(T value);

    T decode(byte[] bytes);

    /**
     * A Kafka serde over this codec. {@code null} stays {@code null} both ways: on the compacted
     * topics a null value is a tombstone, not a malformed record.
     */
    default Serde<T> serde() {
        Codec<T> codec = this;
        return new Serde<>() {
            @Override
            public Serializer<T> serializer() {
                return new Serializer<>() {
                    @Override
                    public void configure(Map<String, ?> configs, boolean isKey) {}

                    @Override
                    public byte[] serialize(String topic, T data) {
                        return data == null ? null : codec.encode(data);
                    }
                };
            }

            @Override
            public Deserializer<T> deserializer() {
                return new Deserializer<>() {
                    @Override
                    public void configure(Map<String, ?> configs, boolean isKey) {}

                    @Override
                    public T deserialize(String topic, byte[] data) {
                        return data == null ? null : codec.decode(data);
                    }
                };
            }
        };
    }
}
