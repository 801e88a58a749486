package io.flywheel.feedback;

import io.flywheel.core.records.RejectedText;

/** What became of one feedback record: joined with its responses, or rejected with a reason. */
record Outcome(Joined joined, RejectedText rejected) {

    static Outcome join(Joined joined) {
        return new Outcome(joined, null);
    }

    static Outcome reject(Reason reason, String detail, byte[] original) {
        return new Outcome(null, new RejectedText(reason.code(), detail, original));
    }

    boolean isRejected() {
        return rejected != null;
    }
}
