package io.flywheel.feedback;

/** Why feedback went to {@code feedback.rejected}: stable codes, the {@code reason} label of the metric. */
enum Reason {
    /** Not a feedback record: bad JSON, missing or mistyped field, rating other than 1 or -1. */
    MALFORMED("malformed"),
    /** The same user already gave feedback on this response (or this comparison). */
    DUPLICATE("duplicate"),
    /** A response it names did not appear on {@code responses} within the join wait. */
    UNKNOWN_RESPONSE("unknown_response"),
    /** A response it names is on {@code responses} but cannot be read. */
    INVALID_RESPONSE("invalid_response"),
    /** A comparison of answers to two different prompts. */
    PROMPT_MISMATCH("prompt_mismatch"),
    /** A comparison of two answers with the same text: no preference to learn. */
    IDENTICAL_COMPLETIONS("identical_completions"),
    /** A bug in a stage: the record is kept here and the stream goes on. */
    PROCESSING_ERROR("processing_error");

    private final String code;

    Reason(String code) {
        this.code = code;
    }

    String code() {
        return code;
    }
}
