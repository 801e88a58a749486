package io.flywheel.model;

import io.flywheel.core.serde.RecordFormatException;

/**
 * The MLP's nonlinearity, by the name Hugging Face's configs give it ({@code activation_function}
 * in GPT-2's, {@code hidden_act} elsewhere).
 */
public enum Activation {
    /** {@code x · σ(1.702 x)}: ND4J's GELU, which every Flywheel checkpoint before the engine was trained with. */
    QUICK_GELU("quick_gelu"),
    /** {@code ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))}: GPT-2's ("gelu_new"). */
    GELU_TANH("gelu_new");

    private final String id;

    Activation(String id) {
        this.id = id;
    }

    public String id() {
        return id;
    }

    public static Activation of(String id) {
        for (Activation a : values()) {
            if (a.id.equals(id)) {
                return a;
            }
        }
        throw new RecordFormatException("activation", "unknown activation " + id + " (known: quick_gelu, gelu_new)");
    }
}
