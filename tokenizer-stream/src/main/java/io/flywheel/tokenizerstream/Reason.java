package io.flywheel.tokenizerstream;

/** Why a raw record did not become tokens: the {@code reason} field of {@code text.rejected}. */
enum Reason {
    /** Not a JSON {@code RawText}: bad JSON, invalid UTF-8, a missing or mistyped field. */
    MALFORMED("malformed"),
    /** Nothing left after cleaning. */
    EMPTY("empty"),
    TOO_SHORT("too_short"),
    TOO_LONG("too_long"),
    /** Too few letters among the visible characters: tables of numbers, binary dumps. */
    LOW_LETTER_SHARE("low_letter_share"),
    /** Too many lines that repeat an earlier line: boilerplate, menus, logs. */
    REPETITIVE("repetitive"),
    BLOCKED_TERM("blocked_term"),
    /** The same cleaned text was seen before (within the dedup retention). */
    DUPLICATE("duplicate"),
    /** A document with an estimated Jaccard similarity above the threshold was seen before. */
    NEAR_DUPLICATE("near_duplicate"),
    /** A cleaning stage failed on this document (a bug, reported with the document kept). */
    PROCESSING_ERROR("processing_error");

    private final String code;

    Reason(String code) {
        this.code = code;
    }

    String code() {
        return code;
    }
}
