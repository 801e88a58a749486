package io.flywheel.local.up;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class SupervisedTest {

    @Test
    void theBackoffDoublesFromOneSecondToThirty() {
        assertEquals(Duration.ofSeconds(1), Supervised.backoff(1));
        assertEquals(Duration.ofSeconds(2), Supervised.backoff(2));
        assertEquals(Duration.ofSeconds(16), Supervised.backoff(5));
        assertEquals(Duration.ofSeconds(30), Supervised.backoff(6));
        assertEquals(Duration.ofSeconds(30), Supervised.backoff(40));
    }

    @Test
    void aHealthyRunStartsTheCountAgain() {
        int failures = 0;
        for (int i = 0; i < 6; i++) {
            failures = Supervised.failuresInARow(failures, Duration.ofSeconds(3)); // dies young, again and again
        }
        assertEquals(6, failures);
        assertEquals(1, Supervised.failuresInARow(failures, Duration.ofMinutes(5)), "after five good minutes, 1 s again");
        assertEquals(2, Supervised.failuresInARow(1, Duration.ofSeconds(59)));
    }
}
