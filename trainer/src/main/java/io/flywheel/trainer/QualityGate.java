package io.flywheel.trainer;

/**
 * Decides whether a new checkpoint may replace the one serving uses: its validation loss must not
 * be worse than the promoted checkpoint's, measured on the same evaluation set, by more than
 * {@code tolerance} nats per token.
 */
record QualityGate(double tolerance) {

    enum Reason {
        /** Nothing is promoted yet: serving needs a first model. */
        FIRST("first"),
        NOT_WORSE("not_worse"),
        WORSE("worse"),
        /** No validation documents have arrived, so nothing can be compared. */
        NO_VALIDATION_DATA("no_validation_data"),
        /** The promoted checkpoint could not be read, so nothing can be compared. */
        NO_REFERENCE("no_reference");

        final String label;

        Reason(String label) {
            this.label = label;
        }
    }

    record Decision(boolean promote, Reason reason, Double candidateLoss, Double referenceLoss) {
        String describe() {
            return (promote ? "promote" : "reject") + " (" + reason.label + "): candidate loss "
                    + format(candidateLoss) + ", promoted " + format(referenceLoss);
        }

        private static String format(Double loss) {
            return loss == null ? "n/a" : String.format("%.4f", loss);
        }
    }

    QualityGate {
        if (!(tolerance >= 0)) {
            throw new IllegalArgumentException("gate tolerance must be >= 0");
        }
    }

    /**
     * @param anythingPromoted whether a checkpoint is promoted already
     * @param candidateLoss    the candidate's validation loss, {@code null} without validation data
     * @param referenceLoss    the promoted checkpoint's loss on the same set, {@code null} if unknown
     */
    Decision decide(boolean anythingPromoted, Double candidateLoss, Double referenceLoss) {
        if (!anythingPromoted) {
            return new Decision(true, Reason.FIRST, candidateLoss, null);
        }
        if (candidateLoss == null) {
            return new Decision(false, Reason.NO_VALIDATION_DATA, null, referenceLoss);
        }
        if (referenceLoss == null) {
            return new Decision(false, Reason.NO_REFERENCE, candidateLoss, null);
        }
        boolean notWorse = candidateLoss <= referenceLoss + tolerance;
        return new Decision(notWorse, notWorse ? Reason.NOT_WORSE : Reason.WORSE, candidateLoss, referenceLoss);
    }
}
