package io.flywheel.model;

import java.util.Locale;

/** What a decoder's key/value cache stores its keys and values in ({@code serving.kv-cache-dtype}, vLLM's name). */
public enum KvCacheDtype {
    /** As the forward computes them: a decode step reads 8 bytes per layer, position and width. */
    FLOAT32("float32", "fp32"),
    /** Rounded to bfloat16 ({@link Bf16KeyValues}): half the bytes to hold and to read per step. */
    BFLOAT16("bfloat16", "bf16");

    private final String name;
    private final String alias;

    KvCacheDtype(String name, String alias) {
        this.name = name;
        this.alias = alias;
    }

    /** {@code float32} (or {@code fp32}) or {@code bfloat16} (or {@code bf16}), in any case; anything else is refused by name. */
    public static KvCacheDtype of(String name) {
        String n = name.strip().toLowerCase(Locale.ROOT);
        for (KvCacheDtype d : values()) {
            if (d.name.equals(n) || d.alias.equals(n)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown key/value cache dtype '" + name + "': use float32 or bfloat16");
    }

    @Override
    public String toString() {
        return name;
    }
}
