package io.flywheel.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class QualityGateTest {

    private final QualityGate gate = new QualityGate(0.05, 0.05, 20);

    @Test
    void theFirstCheckpointIsPromoted() {
        QualityGate.Decision d = gate.decide(false, 4.0, null);
        assertTrue(d.promote());
        assertEquals(QualityGate.Reason.FIRST, d.reason());
    }

    @Test
    void aCheckpointWithinTheToleranceIsPromotedAndAWorseOneIsNot() {
        assertTrue(gate.decide(true, 2.04, 2.0).promote());
        assertTrue(gate.decide(true, 1.5, 2.0).promote());
        QualityGate.Decision worse = gate.decide(true, 2.06, 2.0);
        assertFalse(worse.promote());
        assertEquals(QualityGate.Reason.WORSE, worse.reason());
        assertFalse(gate.decide(true, Double.NaN, 2.0).promote(), "a diverged model is never promoted");
    }

    @Test
    void aCheckpointWhoseRewardHeadRanksHeldOutPairsWorseIsNotPromoted() {
        assertTrue(gate.decide(true, 2.0, 2.0, 0.80, 0.84, 100).promote());
        QualityGate.Decision worse = gate.decide(true, 2.0, 2.0, 0.70, 0.84, 100);
        assertFalse(worse.promote());
        assertEquals(QualityGate.Reason.WORSE_PREFERENCES, worse.reason());
        assertTrue(gate.decide(true, 2.0, 2.0, null, 0.84, 0).promote(), "no held-out pairs: language loss decides");
        assertTrue(gate.decide(true, 2.0, 2.0, 0.5, 0.84, 19).promote(), "too few held-out pairs to judge by");
        assertEquals(QualityGate.Reason.WORSE, gate.decide(true, 2.5, 2.0, 0.99, 0.5, 100).reason());
    }

    @Test
    void withoutValidationDataOrAReferenceNothingIsPromoted() {
        assertEquals(QualityGate.Reason.NO_VALIDATION_DATA, gate.decide(true, null, 2.0).reason());
        assertEquals(QualityGate.Reason.NO_REFERENCE, gate.decide(true, 2.0, null).reason());
        assertFalse(gate.decide(true, 2.0, null).promote());
    }
}
