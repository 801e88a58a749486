package io.flywheel.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.config.Settings;
import io.flywheel.core.topics.TopicCatalog;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The manifests are valid and say what the code does. Without kubectl, the base's own files are
 * still checked; the rendering of the overlays is then skipped with a message.
 */
class ManifestsTest {

    private static final Path BASE = Manifests.ROOT.resolve("base");

    private static List<JsonNode> base() throws Exception {
        return Manifests.kubectlPresent() ? Manifests.render(BASE) : Manifests.resourcesOf(BASE);
    }

    @ParameterizedTest
    @ValueSource(strings = {"base", "overlays/local", "overlays/gpu"})
    void rendersAndEveryResourceMatchesItsSchema(String dir) throws Exception {
        List<JsonNode> docs;
        if (Manifests.kubectlPresent()) {
            docs = Manifests.render(Manifests.ROOT.resolve(dir));
        } else if (dir.equals("base")) {
            System.out.println("kubectl not found: checking base/'s files as written, overlays not rendered");
            docs = Manifests.resourcesOf(BASE);
        } else {
            Assumptions.abort("kubectl not found: " + dir + " cannot be rendered here (install kubectl to run this test)");
            return;
        }
        assertTrue(docs.size() >= 30, "resources: " + docs.size());
        List<String> errors = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        for (JsonNode doc : docs) {
            errors.addAll(Manifests.unknownFields(doc));
            if (!ids.add(Manifests.id(doc))) {
                errors.add("duplicate resource " + Manifests.id(doc));
            }
        }
        assertEquals(List.of(), errors);
    }

    @Test
    void theStrictCheckCatchesAMisspeltField() throws Exception {
        JsonNode deployment = Manifests.parse("""
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: x}
                spec:
                  selector: {matchLabels: {a: b}}
                  template:
                    metadata: {labels: {a: b}}
                    spec:
                      containers:
                        - name: x
                          image: x
                          readinessProbe: {httpGet: {path: /, port: 80}, periodSecond: 5}
                """).get(0);
        assertEquals(List.of("apps/v1/Deployment x.spec.template.spec.containers[0].readinessProbe: unknown field(s) [periodSecond]"),
                Manifests.unknownFields(deployment));
        JsonNode topic = Manifests.parse("""
                apiVersion: kafka.strimzi.io/v1beta2
                kind: KafkaTopic
                metadata: {name: t}
                spec: {partitions: 3, replica: 3}
                """).get(0);
        assertEquals(1, Manifests.unknownFields(topic).size(), Manifests.unknownFields(topic).toString());
    }

    @Test
    void topicsAreTheCatalogWithThreeReplicas() throws Exception {
        TopicCatalog catalog = TopicCatalog.from(Settings.of(Map.of("FLYWHEEL_TOPICS_REPLICATION_FACTOR", "3"), Map.of()));
        Map<String, JsonNode> topics = new TreeMap<>();
        for (JsonNode doc : Manifests.read(BASE.resolve("topics.yaml"))) {
            topics.put(doc.path("spec").path("topicName").asText(), doc.path("spec"));
        }
        assertEquals(catalog.all().size(), topics.size(), topics.keySet().toString());
        for (TopicCatalog.Spec spec : catalog.all()) {
            JsonNode t = topics.get(spec.name());
            assertTrue(t != null, "no KafkaTopic for " + spec.name());
            assertEquals(spec.partitions(), t.path("partitions").asInt(), spec.name());
            assertEquals(spec.replicationFactor(), t.path("replicas").asInt(), spec.name());
            Map<String, String> config = new TreeMap<>();
            t.path("config").fields().forEachRemaining(e -> config.put(e.getKey(), e.getValue().asText()));
            assertEquals(new TreeMap<>(spec.configs()), config, spec.name());
        }
    }

    @Test
    void everyContainerSetsItsHeapProbesRealEndpointsAndHasLimits() throws Exception {
        int containers = 0;
        for (JsonNode doc : base()) {
            String kind = doc.path("kind").asText();
            if (!kind.equals("Deployment") && !kind.equals("StatefulSet")) {
                continue;
            }
            for (JsonNode c : doc.path("spec").path("template").path("spec").path("containers")) {
                containers++;
                String where = Manifests.id(doc) + " " + c.path("name").asText();
                String javaOptions = "";
                for (JsonNode e : c.path("env")) {
                    if (e.path("name").asText().equals("JAVA_TOOL_OPTIONS")) {
                        javaOptions = e.path("value").asText();
                    }
                }
                assertTrue(javaOptions.contains("-Xmx"), where + " sets no heap");
                if (List.of("serving", "trainer").contains(c.path("name").asText())) {
                    assertTrue(javaOptions.contains("org.bytedeco.javacpp.maxbytes") && javaOptions.contains("maxphysicalbytes"),
                            where + " leaves ND4J's off-heap memory uncapped");
                }
                assertFalse(c.path("resources").path("limits").path("memory").isMissingNode(), where + " has no memory limit");
                assertFalse(c.path("resources").path("requests").path("cpu").isMissingNode(), where + " has no CPU request");
                Map<String, Integer> ports = new HashMap<>();
                c.path("ports").forEach(p -> ports.put(p.path("name").asText(), p.path("containerPort").asInt()));
                for (String probe : List.of("readinessProbe", "livenessProbe")) {
                    JsonNode get = c.path(probe).path("httpGet");
                    assertFalse(get.isMissingNode(), where + " has no " + probe);
                    Integer port = ports.get(get.path("port").asText());
                    assertTrue(port != null, where + " " + probe + " names an unknown port");
                    // The endpoints the services serve: core's MetricsServer on 94xx, Quarkus's SmallRye Health otherwise.
                    String expected = (port >= 9400 && port < 9500 ? "/health/" : "/q/health/")
                            + (probe.equals("readinessProbe") ? "ready" : "live");
                    assertEquals(expected, get.path("path").asText(), where + " " + probe);
                }
            }
        }
        assertEquals(5, containers);
    }

    @Test
    void theLocalOverlayFitsOneKafkaNode() throws Exception {
        Assumptions.assumeTrue(Manifests.kubectlPresent(), "kubectl not found: overlays/local cannot be rendered here");
        int nodes = 0;
        for (JsonNode doc : Manifests.render(Manifests.ROOT.resolve("overlays/local"))) {
            String kind = doc.path("kind").asText();
            JsonNode spec = doc.path("spec");
            String where = Manifests.id(doc);
            assertEquals("flywheel", kind.equals("Namespace") ? doc.path("metadata").path("name").asText()
                    : doc.path("metadata").path("namespace").asText(), where);
            switch (kind) {
                // A replication factor above the number of brokers: topics are never created, Streams never start.
                case "KafkaNodePool" -> nodes += spec.path("replicas").asInt();
                case "KafkaTopic" -> {
                    assertEquals(1, spec.path("replicas").asInt(), where);
                    assertEquals(1, spec.path("config").path("min.insync.replicas").asInt(), where);
                }
                case "Kafka" -> {
                    JsonNode config = spec.path("kafka").path("config");
                    for (String key : List.of("default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
                            "transaction.state.log.replication.factor", "transaction.state.log.min.isr")) {
                        assertEquals(1, config.path(key).asInt(), where + " " + key);
                    }
                }
                case "ConfigMap" -> {
                    if (doc.path("metadata").path("name").asText().equals("flywheel-config")) {
                        assertEquals("1", doc.path("data").path("FLYWHEEL_TOPICS_REPLICATION_FACTOR").asText(), where);
                    }
                }
                case "PersistentVolumeClaim" -> assertEquals("ReadWriteOnce", spec.path("accessModes").path(0).asText(), where);
                default -> { }
            }
        }
        assertEquals(1, nodes, "Kafka nodes in overlays/local");
    }

    @Test
    void theGpuOverlayPutsOnlyTheTrainerOnAGpu() throws Exception {
        Assumptions.assumeTrue(Manifests.kubectlPresent(), "kubectl not found: overlays/gpu cannot be rendered here");
        Set<String> onGpu = new HashSet<>();
        for (JsonNode doc : Manifests.render(Manifests.ROOT.resolve("overlays/gpu"))) {
            for (JsonNode c : doc.path("spec").path("template").path("spec").path("containers")) {
                if (!c.path("resources").path("limits").path("nvidia.com/gpu").isMissingNode()) {
                    onGpu.add(doc.path("metadata").path("name").asText());
                    assertTrue(c.path("image").asText().startsWith("flywheel/trainer-cuda:"), c.path("image").asText());
                    JsonNode pod = doc.path("spec").path("template").path("spec");
                    assertTrue(pod.path("tolerations").toString().contains("nvidia.com/gpu"), "tolerates the GPU taint");
                    assertFalse(pod.path("nodeSelector").isEmpty(), "selects GPU nodes");
                }
            }
        }
        assertEquals(Set.of("trainer"), onGpu);
    }

    /**
     * A misspelt FLYWHEEL_ variable is silently ignored by the service, so every one the manifests set
     * must be a setting the code reads: a dotted key in the sources (core's Settings convention) or a
     * key or variable of a Quarkus app's application.properties.
     */
    @Test
    void everyFlywheelVariableIsASettingTheServicesRead() throws Exception {
        Set<String> known = new HashSet<>();
        Pattern key = Pattern.compile("\"([a-z][a-z0-9-]*(?:\\.[a-z0-9-]+)+)\"");
        Pattern quarkusKey = Pattern.compile("(?m)^#?\\s*flywheel\\.([a-z0-9.-]+)=");
        Pattern quarkusVar = Pattern.compile("\\$\\{(FLYWHEEL_[A-Z0-9_]+)");
        Path project = Manifests.ROOT.getParent();
        try (Stream<Path> files = Files.walk(project)) {
            for (Path f : files.filter(p -> p.toString().contains("/src/main/")).toList()) {
                String name = f.getFileName().toString();
                if (name.endsWith(".java")) {
                    Matcher m = key.matcher(Files.readString(f));
                    while (m.find()) {
                        known.add(Settings.envName(m.group(1)));
                    }
                } else if (name.equals("application.properties")) {
                    String text = Files.readString(f);
                    Matcher m = quarkusKey.matcher(text);
                    while (m.find()) {
                        known.add(Settings.envName(m.group(1)));
                    }
                    m = quarkusVar.matcher(text);
                    while (m.find()) {
                        known.add(m.group(1));
                    }
                }
            }
        }
        assertTrue(known.contains("FLYWHEEL_KAFKA_BOOTSTRAP") && known.contains("FLYWHEEL_SERVING_API_KEYS"), "sources read: " + known.size());
        Set<String> unknown = new TreeSet<>();
        for (String dir : List.of("base", "overlays/local", "overlays/gpu")) {
            List<JsonNode> docs = Manifests.kubectlPresent() ? Manifests.render(Manifests.ROOT.resolve(dir)) : Manifests.resourcesOf(BASE);
            for (JsonNode doc : docs) {
                List<String> names = new ArrayList<>();
                if (doc.path("kind").asText().equals("ConfigMap")) {
                    doc.path("data").fieldNames().forEachRemaining(names::add);
                }
                for (JsonNode c : doc.path("spec").path("template").path("spec").path("containers")) {
                    c.path("env").forEach(e -> names.add(e.path("name").asText()));
                }
                names.stream().filter(n -> n.startsWith("FLYWHEEL_") && !known.contains(n)).forEach(n -> unknown.add(Manifests.id(doc) + ": " + n));
            }
        }
        assertEquals(Set.of(), unknown);
    }

    @Test
    void everyImageIsNamedInTheKustomization() throws Exception {
        JsonNode kustomization = Manifests.YAML.readTree(BASE.resolve("kustomization.yaml").toFile());
        Set<String> named = new HashSet<>();
        kustomization.path("images").forEach(i -> named.add(i.path("name").asText()));
        Set<String> used = new HashSet<>();
        for (JsonNode doc : Manifests.resourcesOf(BASE)) {
            doc.path("spec").path("template").path("spec").path("containers").forEach(c -> used.add(c.path("image").asText()));
        }
        assertEquals(named, used);
    }

    @Test
    void onlyServingAndTheGatewayTakeOutsideTraffic() throws Exception {
        Map<String, JsonNode> policies = new TreeMap<>();
        for (JsonNode doc : Manifests.read(BASE.resolve("network-policies.yaml"))) {
            policies.put(doc.path("metadata").path("name").asText(), doc.path("spec"));
        }
        JsonNode deny = policies.get("default-deny-ingress");
        assertTrue(deny.path("podSelector").isEmpty() && deny.path("ingress").isMissingNode(), "default deny selects every pod");
        for (JsonNode spec : policies.values()) {
            for (JsonNode rule : spec.path("ingress")) {
                if (rule.path("from").isMissingNode()) {   // from anywhere
                    String app = spec.path("podSelector").path("matchLabels").path("app.kubernetes.io/name").asText();
                    assertTrue(Set.of("serving", "ingest-gateway").contains(app), "open to everyone: " + spec);
                }
            }
        }
    }

    @Test
    void theDashboardIsWellFormed() throws Exception {
        JsonNode dashboard = new ObjectMapper().readTree(BASE.resolve("monitoring/grafana-dashboard.json").toFile());
        Set<Integer> ids = new HashSet<>();
        int targets = 0;
        for (JsonNode panel : dashboard.path("panels")) {
            assertTrue(ids.add(panel.path("id").asInt()), "duplicate panel id " + panel.path("id"));
            assertFalse(panel.path("title").asText().isBlank());
            assertFalse(panel.path("gridPos").isMissingNode(), panel.path("title").asText());
            for (JsonNode t : panel.path("targets")) {
                targets++;
                assertFalse(t.path("expr").asText().isBlank(), panel.path("title").asText());
            }
        }
        assertTrue(targets >= 14, "targets: " + targets);
        assertTrue(Stream.of("datasource", "namespace").allMatch(v -> dashboard.path("templating").toString().contains("\"" + v + "\"")));
        assertTrue(Files.size(BASE.resolve("monitoring/grafana-dashboard.json")) < 1_000_000, "a ConfigMap holds at most 1 MiB");
    }
}
