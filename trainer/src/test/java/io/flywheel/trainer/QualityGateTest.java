package io.flywheel.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class QualityGateTest {

    private final QualityGate gate = new QualityGate(0.05);

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
    void withoutValidationDataOrAReferenceNothingIsPromoted() {
        assertEquals(QualityGate.Reason.NO_VALIDATION_DATA, gate.decide(true, null, 2.0).reason());
        assertEquals(QualityGate.Reason.NO_REFERENCE, gate.decide(true, 2.0, null).reason());
        assertFalse(gate.decide(true, 2.0, null).promote());
    }
}
