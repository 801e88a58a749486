package io.flywheel.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.config.Settings;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Settings the engine cannot honour are refused when the trainer starts, by name. */
class TrainerConfigTest {

    @Test
    void dropoutIsRefusedUntilTheEngineHasIt() {
        Settings.ConfigException e = assertThrows(Settings.ConfigException.class,
                () -> TrainerFixture.config(Map.of("model.dropout", "0.1")));
        assertTrue(e.getMessage().contains("model.dropout"), e.getMessage());
        assertEquals(0.0, TrainerFixture.config(Map.of()).shape().dropout());
    }
}
