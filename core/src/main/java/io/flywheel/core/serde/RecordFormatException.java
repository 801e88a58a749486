package io.flywheel.core.serde;

import org.apache.kafka.common.errors.SerializationException;

/**
 * A record that does not match its contract. It names the field and the problem, so that a
 * rejected-topic entry or an HTTP 400 can tell the producer exactly what to fix.
 *
 * <p>It extends Kafka's {@link SerializationException} so that Kafka clients and Streams treat it as
 * a deserialization failure and route it to their handlers.
 */
public final class RecordFormatException extends SerializationException {

    private final String field;
    private final String problem;

    public RecordFormatException(String field, String problem) {
        super(field + ": " + problem);
        this.field = field;
        this.problem = problem;
    }

    public RecordFormatException(String field, String problem, Throwable cause) {
        super(field + ": " + problem, cause);
        this.field = field;
        this.problem = problem;
    }

    /** The offending field, as a JSON path-like name ({@code "meta.lang"}, {@code "ids[3]"}), or {@code "record"}. */
    public String field() {
        return field;
    }

    public String problem() {
        return problem;
    }
}
