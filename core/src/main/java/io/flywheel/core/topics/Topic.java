package io.flywheel.core.topics;

/**
 * The topics of the loop (DESIGN.md). Names and settings are defaults; {@link TopicCatalog}
 * applies overrides.
 */
public enum Topic {
    /** What producers send; JSON {@code RawText}, keyed by document id. */
    TEXT_RAW("text.raw", 6, false, "604800000"),
    /** Raw records that did not become tokens, with the reason. */
    TEXT_REJECTED("text.rejected", 6, false, "2592000000"),
    /** Cleaned documents as token ids: training data, kept until deleted by an operator. */
    TOKENS("tokens", 6, false, "-1"),
    /** Every completion serving produced; compacted by response id. */
    RESPONSES("responses", 3, true, "-1"),
    /** Ratings and comparisons from chat apps. */
    FEEDBACK_RAW("feedback.raw", 3, false, "2592000000"),
    /** Feedback that could not be used, with the reason. */
    FEEDBACK_REJECTED("feedback.rejected", 3, false, "2592000000"),
    /** Preference pairs and supervised examples: training data. */
    PREFERENCES("preferences", 3, false, "-1"),
    /** Promoted checkpoints; compacted by model name so the latest survives. */
    CHECKPOINTS("checkpoints", 1, true, "-1");

    private final String suffix;
    private final int partitions;
    private final boolean compacted;
    private final String retentionMs;

    Topic(String suffix, int partitions, boolean compacted, String retentionMs) {
        this.suffix = suffix;
        this.partitions = partitions;
        this.compacted = compacted;
        this.retentionMs = retentionMs;
    }

    /** The part after the prefix, and the settings key: {@code topic.<suffix>.name}. */
    public String suffix() {
        return suffix;
    }

    public int defaultPartitions() {
        return partitions;
    }

    public boolean compacted() {
        return compacted;
    }

    public String defaultRetentionMs() {
        return retentionMs;
    }
}
