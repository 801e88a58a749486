package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The PromQL reading behind the end-to-end metrics check (LoopEndToEndTest). */
class OpsContractTest {

    @Test
    void readsMetricsMatchersAndGrouping() {
        OpsContract.Use use = OpsContract.parse("x", """
                histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{namespace=~"$ns", status=~"5.."}[5m]))) > 2.5
                and on (pod) increase(b_total[1h] offset 5m) == 0 or c > 1e11""");
        assertEquals(Set.of("a_bucket", "b_total", "c"), use.metrics());
        assertEquals(Map.of("a_bucket", Set.of("namespace", "status")), use.matched());
        assertEquals(Set.of("namespace", "le", "pod"), use.grouped());
    }

    @Test
    void reportsWhatTheScrapesLack() {
        List<OpsContract.Use> uses = List.of(
                OpsContract.parse("ok", "sum by (reason) (rate(r_total{reason!=\"duplicate\"}[5m]))"),
                OpsContract.parse("gone", "rate(renamed_total[5m])"),
                OpsContract.parse("label", "sum by (kind) (g{type=\"x\"})"));
        var exported = OpsContract.exported(List.of("""
                # HELP r_total x
                r_total{reason="malformed",} 1.0
                g{kind="a"} 2
                """));
        assertEquals(List.of("gone: metric renamed_total is not exported", "label: g has no label type (it has [kind])"),
                OpsContract.missing(uses, exported));
    }

    @Test
    void theRulesAndTheDashboardAreRead() throws Exception {
        List<OpsContract.Use> uses = OpsContract.uses(Path.of("..", "k8s"));
        assertTrue(uses.size() >= 30, "expressions: " + uses.size());
        assertTrue(uses.stream().anyMatch(u -> u.where().equals("alert FlywheelTimeToFirstTokenHigh")
                && u.metrics().equals(Set.of("flywheel_serving_time_to_first_token_seconds_bucket"))), uses.toString());
    }
}
