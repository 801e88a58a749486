package io.flywheel.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.RawText;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.testsupport.KafkaBroker;
import io.flywheel.testsupport.KafkaBrokerExtension;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** {@code flywheel ingest} through the real CLI into a real broker. */
@ExtendWith(KafkaBrokerExtension.class)
class IngestCliTest {

    @TempDir
    Path dir;

    private KafkaBroker broker;
    private TopicCatalog topics;
    private Map<String, String> env;

    @BeforeEach
    void topics(KafkaBroker broker) throws Exception {
        this.broker = broker;
        String prefix = KafkaBroker.uniqueName("ingest") + ".";
        env = Map.of(Settings.envName("topics.prefix"), prefix);
        topics = TopicCatalog.from(Settings.of(env, Map.of()));
        topics.ensureCreated(broker.admin());
    }

    private Cli.Result ingest(byte[] stdin, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of("ingest", "--bootstrap", broker.bootstrapServers()));
        all.addAll(List.of(args));
        return Cli.run(env, stdin, all.toArray(String[]::new));
    }

    @Test
    void foldersFilesAndStdinGoInWithStableIds() throws Exception {
        Files.createDirectories(dir.resolve("corpus/nested"));
        Files.writeString(dir.resolve("corpus/a.txt"), "First paragraph,\nstill first.\n\nSecond paragraph.\n");
        Files.writeString(dir.resolve("corpus/nested/b.txt"), "Third paragraph from a nested file.\r\n");
        Cli.Result result = ingest("Fourth, from stdin.\n\nFifth.".getBytes(StandardCharsets.UTF_8),
                "--split", "paragraph", dir.resolve("corpus").toString(), "-");
        assertEquals(0, result.exit(), result.stderr());
        assertTrue(result.out().startsWith("ingest: sent 5 documents"), result.out());

        List<RawText> docs = read(5);
        assertEquals(List.of("First paragraph,\nstill first.", "Second paragraph.", "Third paragraph from a nested file.",
                "Fourth, from stdin.", "Fifth."), docs.stream().map(RawText::text).sorted(this::byCorpusOrder).toList());
        RawText second = docs.stream().filter(d -> d.text().equals("Second paragraph.")).findFirst().orElseThrow();
        assertEquals(dir.resolve("corpus/a.txt").toString(), second.source());
        assertEquals("4", second.meta().get("line"));

        // A re-run sends the same ids: the stream recognises it downstream.
        assertEquals(0, ingest("Fourth, from stdin.\n\nFifth.".getBytes(StandardCharsets.UTF_8),
                "--split", "paragraph", dir.resolve("corpus").toString(), "-").exit());
        Map<String, Long> times = read(10).stream().collect(java.util.stream.Collectors.groupingBy(RawText::id, java.util.stream.Collectors.counting()));
        assertEquals(docs.stream().map(RawText::id).collect(java.util.stream.Collectors.toSet()), times.keySet());
        assertTrue(times.values().stream().allMatch(n -> n == 2), times.toString());
    }

    private int byCorpusOrder(String a, String b) {
        List<String> order = List.of("First", "Second", "Third", "Fourth", "Fifth");
        return Integer.compare(order.indexOf(a.split("[ ,.]")[0]), order.indexOf(b.split("[ ,.]")[0]));
    }

    @Test
    void jsonLinesUseTheGivenFieldsAndBadLinesAreReportedWithTheirNumber() throws Exception {
        Path file = dir.resolve("docs.jsonl");
        Files.write(file, String.join("\n",
                "{\"id\": \"doc-1\", \"body\": \"the first document\"}",
                "{\"id\": 2, \"body\": \"the second document\"}",
                "",
                "{\"id\": \"doc-3\", \"title\": \"no body here\"}",
                "{\"id\": \"doc-4\", \"body\": ",
                "{\"id\": \"doc-5\", \"body\": \"   \"}",
                "{\"body\": \"no id: hashed\"}").getBytes(StandardCharsets.UTF_8));
        Path broken = dir.resolve("broken.txt");
        Files.write(broken, new byte[] {'o', 'k', '\n', (byte) 0xC3, (byte) 0x28, '\n'});
        Cli.Result result = ingest(new byte[0], "--format", "jsonl", "--text-field", "body", file.toString(), dir.resolve("missing.jsonl").toString());
        assertEquals(1, result.exit(), result.out());
        String err = result.stderr();
        assertTrue(err.contains(file + ":4: no \"body\" field"), err);
        assertTrue(err.contains(file + ":5: not JSON"), err);
        assertTrue(err.contains(file + ":6: empty document"), err);
        assertTrue(err.contains("missing.jsonl: no such file or folder"), err);
        assertTrue(result.out().contains("sent 3 documents") && result.out().contains("4 failed"), result.out());
        List<RawText> docs = read(3);
        assertEquals(List.of("2", "doc-1"), docs.stream().map(RawText::id).filter(id -> id.length() < 10).sorted().toList());
        assertEquals(32, docs.stream().filter(d -> d.text().equals("no id: hashed")).findFirst().orElseThrow().id().length());

        Cli.Result lines = ingest(new byte[0], "--split", "line", broken.toString());
        assertEquals(1, lines.exit());
        assertTrue(lines.stderr().contains(broken + ":2: invalid UTF-8 at byte 1"), lines.stderr());
        assertTrue(lines.out().contains("sent 1 documents"), lines.out());
    }

    @Test
    void badFlagsAreUsageErrors() throws Exception {
        Cli.Result format = ingest(new byte[0], "--format", "xml", "-");
        assertEquals(2, format.exit());
        assertTrue(format.stderr().contains("--format must be text or jsonl"), format.stderr());
        assertEquals(2, ingest(new byte[0], "--format", "jsonl", "--split", "line", "-").exit());
        assertEquals(2, ingest(new byte[0]).exit());
    }

    private List<RawText> read(int count) {
        Properties p = broker.consumerProperties(KafkaBroker.uniqueName("read"));
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<RawText> docs = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topics.name(Topic.TEXT_RAW)));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (docs.size() < count && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(r -> {
                    RawText doc = RawText.CODEC.decode(r.value());
                    assertEquals(doc.id(), r.key());
                    docs.add(doc);
                });
            }
        }
        assertEquals(count, docs.size());
        return docs;
    }
}
