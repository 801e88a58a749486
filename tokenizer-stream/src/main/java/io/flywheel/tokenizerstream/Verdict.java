package io.flywheel.tokenizerstream;

import io.flywheel.core.records.RejectedText;
import java.util.function.Function;

/**
 * What a stage decided: the value goes on ({@link Pass}) or the record stops here with a reason
 * ({@link Reject}). Later stages leave a rejection untouched, so each raw record ends as exactly
 * one output.
 */
sealed interface Verdict<T> {

    record Pass<T>(T value) implements Verdict<T> {}

    record Reject<T>(RejectedText rejected) implements Verdict<T> {}

    static <T> Verdict<T> pass(T value) {
        return new Pass<>(value);
    }

    static <T> Verdict<T> reject(Reason reason, String detail, byte[] original) {
        return new Reject<>(new RejectedText(reason.code(), detail, original));
    }

    /** Applies the next stage to a passing value; a rejection stays as it is. */
    @SuppressWarnings("unchecked")
    default <R> Verdict<R> then(Function<T, Verdict<R>> stage) {
        return this instanceof Pass<T> p ? stage.apply(p.value()) : (Verdict<R>) this;
    }

    default boolean isRejected() {
        return this instanceof Reject;
    }
}
