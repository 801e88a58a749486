package io.flywheel.model;

import java.util.Locale;

/** How a serving decoder stores its weight matrices ({@code serving.quantize}). */
public enum Quantization {
    /** float32, as trained. */
    NONE,
    /** int8 with a float scale per output column ({@link Int8Matrix}); embeddings, norms and biases stay float32. */
    INT8;

    /** {@code none} or {@code int8}, in any case; anything else is refused by name. */
    public static Quantization of(String name) {
        for (Quantization q : values()) {
            if (q.name().equalsIgnoreCase(name.strip())) {
                return q;
            }
        }
        throw new IllegalArgumentException("unknown quantization '" + name + "': use none or int8");
    }

    /** Refuses, saying what to do, when this JVM cannot run it. */
    public void checkAvailable() {
        if (this != INT8) {
            return;
        }
        try {
            Class.forName("jdk.incubator.vector.FloatVector");
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException("int8 quantization runs on Java's Vector API: start the JVM with"
                    + " --add-modules jdk.incubator.vector", e);
        }
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
