package io.flywheel.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the operators' side (k8s/: the alert rules and the Grafana dashboard) asks of the services'
 * /metrics: every metric name its PromQL uses, and every label it matches on or groups by. Checked
 * against real scrapes, so that a renamed metric or label breaks the build instead of a dashboard.
 */
final class OpsContract {

    /** Labels Prometheus adds to every scraped series; the services do not export them. */
    static final Set<String> TARGET_LABELS = Set.of("namespace", "pod", "instance", "job", "container", "service", "endpoint");

    private static final Set<String> KEYWORDS = Set.of("and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan");
    private static final Pattern STRING = Pattern.compile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'");
    private static final Pattern RANGE = Pattern.compile("\\[[^\\]]*\\]");
    private static final Pattern GROUPING = Pattern.compile("\\b(?:by|without|on|ignoring|group_left|group_right)\\s*\\(([^)]*)\\)");
    private static final Pattern SELECTOR = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)?\\s*\\{([^}]*)\\}");
    private static final Pattern MATCHER = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)\\s*(?:=~|!~|!=|=)");
    private static final Pattern IDENTIFIER = Pattern.compile("(?<![\\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*+)(?!\\s*\\()");
    private static final Pattern LABEL_VALUES = Pattern.compile("label_values\\(\\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\\s*,\\s*([a-zA-Z_][a-zA-Z0-9_]*)\\s*\\)");

    /** One PromQL expression's demands: its metrics, the labels matched per metric, the labels grouped by. */
    record Use(String where, String expr, Set<String> metrics, Map<String, Set<String>> matched, Set<String> grouped) {}

    private OpsContract() {}

    static Use parse(String where, String expr) {
        String e = STRING.matcher(expr).replaceAll("\"\"");
        e = RANGE.matcher(e).replaceAll("");
        Set<String> grouped = new TreeSet<>();
        Matcher g = GROUPING.matcher(e);
        while (g.find()) {
            for (String label : g.group(1).split(",")) {
                if (!label.isBlank()) {
                    grouped.add(label.trim());
                }
            }
        }
        e = GROUPING.matcher(e).replaceAll(" ");
        Map<String, Set<String>> matched = new HashMap<>();
        Matcher s = SELECTOR.matcher(e);
        StringBuilder rest = new StringBuilder();
        while (s.find()) {
            String metric = s.group(1) == null ? "" : s.group(1);
            Matcher m = MATCHER.matcher(s.group(2));
            while (m.find()) {
                if (m.group(1).equals("__name__")) {
                    throw new IllegalArgumentException(where + ": matching on __name__ hides the metric from this check: " + expr);
                }
                matched.computeIfAbsent(metric, k -> new TreeSet<>()).add(m.group(1));
            }
            s.appendReplacement(rest, " " + Matcher.quoteReplacement(metric) + " ");
        }
        s.appendTail(rest);
        Set<String> metrics = new TreeSet<>();
        Matcher id = IDENTIFIER.matcher(rest);
        while (id.find()) {
            if (!KEYWORDS.contains(id.group(1).toLowerCase())) {
                metrics.add(id.group(1));
            }
        }
        if (matched.containsKey("")) {
            throw new IllegalArgumentException(where + ": a selector without a metric name: " + expr);
        }
        return new Use(where, expr, metrics, matched, grouped);
    }

    /** Every expression of the alert rules and the dashboard, read from k8s/base/monitoring. */
    static List<Use> uses(Path k8s) throws IOException {
        List<Use> uses = new ArrayList<>();
        JsonNode rule = new YAMLMapper().readTree(k8s.resolve("base/monitoring/prometheus-rule.yaml").toFile());
        for (JsonNode group : rule.path("spec").path("groups")) {
            for (JsonNode r : group.path("rules")) {
                String name = r.has("alert") ? r.path("alert").asText() : r.path("record").asText();
                uses.add(parse("alert " + name, r.path("expr").asText()));
            }
        }
        JsonNode dashboard = new ObjectMapper().readTree(k8s.resolve("base/monitoring/grafana-dashboard.json").toFile());
        for (JsonNode panel : dashboard.path("panels")) {
            for (JsonNode t : panel.path("targets")) {
                uses.add(parse("panel '" + panel.path("title").asText() + "'", t.path("expr").asText()));
            }
        }
        for (JsonNode variable : dashboard.path("templating").path("list")) {
            Matcher m = LABEL_VALUES.matcher(variable.path("definition").asText());
            if (m.find()) {
                uses.add(new Use("variable " + variable.path("name").asText(), m.group(), Set.of(m.group(1)), Map.of(),
                        Set.of(m.group(2))));
            }
        }
        return uses;
    }

    /** Series names and their label names, from Prometheus text-format scrapes. */
    static Map<String, Set<String>> exported(List<String> scrapes) {
        Pattern sample = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})?\\s+\\S+.*$");
        Pattern label = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"");
        Map<String, Set<String>> out = new HashMap<>();
        for (String text : scrapes) {
            for (String line : text.split("\n")) {
                Matcher m = sample.matcher(line.strip());
                if (line.startsWith("#") || !m.matches()) {
                    continue;
                }
                Set<String> labels = out.computeIfAbsent(m.group(1), k -> new HashSet<>());
                if (m.group(3) != null) {
                    Matcher l = label.matcher(m.group(3).replaceAll("\"(?:[^\"\\\\]|\\\\.)*\"", "\"\""));
                    while (l.find()) {
                        labels.add(l.group(1));
                    }
                }
            }
        }
        return out;
    }

    /** What the uses ask for that the scrapes do not have; empty when the contract holds. */
    static List<String> missing(List<Use> uses, Map<String, Set<String>> exported) {
        Set<String> problems = new LinkedHashSet<>();
        for (Use use : uses) {
            Set<String> labelsOfExpression = new HashSet<>(TARGET_LABELS);
            for (String metric : use.metrics()) {
                Set<String> labels = exported.get(metric);
                if (labels == null) {
                    problems.add(use.where() + ": metric " + metric + " is not exported");
                    continue;
                }
                labelsOfExpression.addAll(labels);
                for (String l : use.matched().getOrDefault(metric, Set.of())) {
                    if (!labels.contains(l) && !TARGET_LABELS.contains(l)) {
                        problems.add(use.where() + ": " + metric + " has no label " + l + " (it has " + labels + ")");
                    }
                }
            }
            for (String l : use.grouped()) {
                if (!labelsOfExpression.contains(l)) {
                    problems.add(use.where() + ": no metric of '" + use.expr().strip() + "' has the label " + l);
                }
            }
        }
        return List.copyOf(problems);
    }
}
