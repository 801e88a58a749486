package io.flywheel.k8s;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SequenceWriter;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Reading, rendering and strictly checking the manifests under {@code k8s/}. */
final class Manifests {

    static final Path ROOT = Path.of(System.getProperty("flywheel.k8s.dir", ".")).toAbsolutePath().normalize();
    static final ObjectMapper YAML = new YAMLMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true);

    /** The Java model of every kind the manifests use; a kind missing here is an error, not a pass. */
    private static final Map<String, String> MODELS = Map.ofEntries(
            Map.entry("v1/Namespace", "io.fabric8.kubernetes.api.model.Namespace"),
            Map.entry("v1/ConfigMap", "io.fabric8.kubernetes.api.model.ConfigMap"),
            Map.entry("v1/Secret", "io.fabric8.kubernetes.api.model.Secret"),
            Map.entry("v1/Service", "io.fabric8.kubernetes.api.model.Service"),
            Map.entry("v1/PersistentVolumeClaim", "io.fabric8.kubernetes.api.model.PersistentVolumeClaim"),
            Map.entry("apps/v1/Deployment", "io.fabric8.kubernetes.api.model.apps.Deployment"),
            Map.entry("apps/v1/StatefulSet", "io.fabric8.kubernetes.api.model.apps.StatefulSet"),
            Map.entry("autoscaling/v2/HorizontalPodAutoscaler", "io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler"),
            Map.entry("policy/v1/PodDisruptionBudget", "io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget"),
            Map.entry("networking.k8s.io/v1/NetworkPolicy", "io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy"),
            Map.entry("monitoring.coreos.com/v1/PodMonitor", "io.fabric8.openshift.api.model.monitoring.v1.PodMonitor"),
            Map.entry("monitoring.coreos.com/v1/PrometheusRule", "io.fabric8.openshift.api.model.monitoring.v1.PrometheusRule"),
            Map.entry("kafka.strimzi.io/v1beta2/Kafka", "io.strimzi.api.kafka.model.kafka.Kafka"),
            Map.entry("kafka.strimzi.io/v1beta2/KafkaNodePool", "io.strimzi.api.kafka.model.nodepool.KafkaNodePool"),
            Map.entry("kafka.strimzi.io/v1beta2/KafkaTopic", "io.strimzi.api.kafka.model.topic.KafkaTopic"));

    private Manifests() {}

    /** Every YAML document of one file (comments and empty documents skipped). */
    static List<JsonNode> read(Path file) throws IOException {
        return parse(Files.readString(file));
    }

    static List<JsonNode> parse(String yaml) throws IOException {
        List<JsonNode> docs = new ArrayList<>();
        try (var it = YAML.readerFor(JsonNode.class).readValues(new YAMLFactory().createParser(yaml))) {
            while (it.hasNext()) {
                JsonNode doc = (JsonNode) it.next();
                if (doc != null && !doc.isMissingNode() && !doc.isNull()) {
                    docs.add(doc);
                }
            }
        }
        return docs;
    }

    /** The resources a kustomization lists itself (not those of the bases it includes). */
    static List<JsonNode> resourcesOf(Path kustomizationDir) throws IOException {
        JsonNode k = YAML.readTree(kustomizationDir.resolve("kustomization.yaml").toFile());
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode r : k.path("resources")) {
            Path p = kustomizationDir.resolve(r.asText());
            if (Files.isRegularFile(p)) {
                out.addAll(read(p));
            }
        }
        return out;
    }

    /** Whether {@code kubectl} (which embeds kustomize) is on the PATH. */
    static boolean kubectlPresent() {
        try {
            Process p = new ProcessBuilder("kubectl", "version", "--client").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** {@code kubectl kustomize DIR}: the resources exactly as they would be applied. */
    static List<JsonNode> render(Path dir) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("kubectl", "kustomize", dir.toString()).start();
        byte[] out = p.getInputStream().readAllBytes();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new AssertionError("kubectl kustomize " + dir + " failed: " + err);
        }
        return parse(new String(out, StandardCharsets.UTF_8));
    }

    static String id(JsonNode doc) {
        return doc.path("apiVersion").asText() + "/" + doc.path("kind").asText() + " " + doc.path("metadata").path("name").asText();
    }

    /**
     * Reads a resource into its Java model and lists every field the model does not know, anywhere
     * in the tree (the models keep unknown fields aside instead of failing; a misspelt key would
     * otherwise pass silently). Wrong types fail in the read itself.
     */
    static List<String> unknownFields(JsonNode doc) {
        String key = doc.path("apiVersion").asText() + "/" + doc.path("kind").asText();
        String model = MODELS.get(key);
        if (model == null) {
            return List.of(id(doc) + ": no schema known for " + key);
        }
        Object resource;
        try {
            resource = YAML.treeToValue(doc, Class.forName(model));
        } catch (Exception e) {
            return List.of(id(doc) + ": " + e.getMessage());
        }
        List<String> errors = new ArrayList<>();
        walk(resource, id(doc), errors, 0);
        return errors.stream().distinct().toList();   // bridge methods can report a field twice
    }

    private static void walk(Object o, String path, List<String> errors, int depth) {
        if (o == null || depth > 40 || o instanceof String || o instanceof Number || o instanceof Boolean || o instanceof Enum<?>) {
            return;
        }
        if (o instanceof Map<?, ?> map) {
            map.forEach((k, v) -> walk(v, path + "." + k, errors, depth + 1));
            return;
        }
        if (o instanceof Collection<?> list) {
            int i = 0;
            for (Object item : list) {
                walk(item, path + "[" + i++ + "]", errors, depth + 1);
            }
            return;
        }
        String pkg = o.getClass().getPackageName();
        if (!pkg.startsWith("io.fabric8.") && !pkg.startsWith("io.strimzi.")) {
            return;
        }
        for (Method m : o.getClass().getMethods()) {
            if (m.getParameterCount() != 0 || Modifier.isStatic(m.getModifiers()) || m.getDeclaringClass() == Object.class) {
                continue;
            }
            String name = m.getName();
            if (!name.startsWith("get") || name.equals("getClass")) {
                continue;
            }
            Object value;
            try {
                value = m.invoke(o);
            } catch (ReflectiveOperationException | RuntimeException e) {
                continue;
            }
            if (name.equals("getAdditionalProperties")) {
                if (value instanceof Map<?, ?> extra && !extra.isEmpty()) {
                    errors.add(path + ": unknown field(s) " + extra.keySet());
                }
                continue;
            }
            walk(value, path + "." + Character.toLowerCase(name.charAt(3)) + name.substring(4), errors, depth + 1);
        }
    }

    static String toYaml(List<JsonNode> docs) throws IOException {
        var out = new java.io.StringWriter();
        try (SequenceWriter w = YAML.writer().writeValues(out)) {
            w.writeAll(docs);
        }
        return out.toString();
    }
}
