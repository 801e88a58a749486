package io.flywheel.trainer;

/**
 * Decides whether a new checkpoint may replace the one serving uses: its validation loss must not
 * be worse than the promoted checkpoint's, measured on the same evaluation set, by more than
 * {@code tolerance} nats per token; and where held-out preference pairs exist, its reward head's
 * pair accuracy must not be worse than the promoted checkpoint's on the same pairs by more than
 * {@code accuracyTolerance}. Below {@code minHeldOutPairs} held-out pairs the accuracy is too noisy to
 * judge by (one pair of 20 is 5 points) and only the language loss decides.
 */
record QualityGate(double tolerance, double accuracyTolerance, int minHeldOutPairs) {

    enum Reason {
        /** Nothing is promoted yet: serving needs a first model. */
        FIRST("first"),
        NOT_WORSE("not_worse"),
        WORSE("worse"),
        /** Language loss is fine, but the reward head ranks held-out pairs worse. */
        WORSE_PREFERENCES("worse_preferences"),
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
        if (!(tolerance >= 0) || !(accuracyTolerance >= 0)) {
            throw new IllegalArgumentException("gate tolerances must be >= 0");
        }
    }

    /**
     * @param anythingPromoted whether a checkpoint is promoted already
     * @param candidateLoss    the candidate's validation loss, {@code null} without validation data
     * @param referenceLoss    the promoted checkpoint's loss on the same set, {@code null} if unknown
     */
    Decision decide(boolean anythingPromoted, Double candidateLoss, Double referenceLoss) {
        return decide(anythingPromoted, candidateLoss, referenceLoss, null, null, 0);
    }

    /**
     * @param candidateAccuracy the candidate's held-out pair accuracy, {@code null} without held-out pairs
     * @param referenceAccuracy the promoted checkpoint's on the same pairs, {@code null} if unknown
     * @param heldOutPairs      how many pairs the accuracies were measured on
     */
    Decision decide(boolean anythingPromoted, Double candidateLoss, Double referenceLoss,
                    Double candidateAccuracy, Double referenceAccuracy, int heldOutPairs) {
        if (!anythingPromoted) {
            return new Decision(true, Reason.FIRST, candidateLoss, null);
        }
        if (candidateLoss == null) {
            return new Decision(false, Reason.NO_VALIDATION_DATA, null, referenceLoss);
        }
        if (referenceLoss == null) {
            return new Decision(false, Reason.NO_REFERENCE, candidateLoss, null);
        }
        if (!(candidateLoss <= referenceLoss + tolerance)) {     // NaN (a diverged model) is worse too
            return new Decision(false, Reason.WORSE, candidateLoss, referenceLoss);
        }
        if (candidateAccuracy != null && referenceAccuracy != null && heldOutPairs >= minHeldOutPairs
                && candidateAccuracy < referenceAccuracy - accuracyTolerance) {
            return new Decision(false, Reason.WORSE_PREFERENCES, candidateLoss, referenceLoss);
        }
        return new Decision(true, Reason.NOT_WORSE, candidateLoss, referenceLoss);
    }
}
