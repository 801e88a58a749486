package io.flywheel.bench;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.RawText;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.ingest.IngestCommand;
import io.flywheel.local.broker.BrokerProcess;
import io.flywheel.tokenizerstream.StreamConfig;
import io.flywheel.tokenizerstream.TokenizerStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import picocli.CommandLine;

/**
 * Tokenizer stream throughput on the local broker (a child process, as {@code ./flywheel up} runs
 * it), with exactly-once and with at-least-once, beside the bare tokenizer on the same documents;
 * then the ingest CLI's throughput into the broker. Arguments: corpus megabytes (default 20).
 */
public final class StreamBenchmark {

    public static void main(String[] args) throws Exception {
        int megabytes = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        byte[] corpus = TokenizerBenchmark.europarl(megabytes * 1024 * 1024);
        List<String> docs = documents(new String(corpus, StandardCharsets.UTF_8), 10);
        long bytes = docs.stream().mapToLong(d -> d.getBytes(StandardCharsets.UTF_8).length).sum();
        System.out.printf(Locale.ROOT, "corpus: Europarl, %,d documents of 10 lines, %.1f MB%n", docs.size(), bytes / 1e6);

        Tokenizer tokenizer = TokenizerFiles.load("cl100k_base");
        double bare = bareTokenizer(tokenizer, docs, bytes);
        System.out.printf(Locale.ROOT, "bare tokenizer (cl100k_base, one thread): %.1f MB/s%n", bare);

        Path dir = Files.createTempDirectory("flywheel-bench");
        var options = new BrokerProcess.Options(dir.resolve("data"), "127.0.0.1", 29592, 29593, "512m", Duration.ofSeconds(90));
        try (BrokerProcess broker = BrokerProcess.start(options, TopicCatalog.defaults(), System.out)) {
            for (String guarantee : List.of(StreamConfig.EXACTLY_ONCE, StreamConfig.AT_LEAST_ONCE)) {
                String prefix = "bench-" + guarantee.replace('_', '-') + ".";
                TopicCatalog topics = topics(prefix);
                try (var admin = org.apache.kafka.clients.admin.Admin.create(Map.of("bootstrap.servers", broker.bootstrap()))) {
                    topics.ensureCreated(admin);
                }
                produce(broker.bootstrap(), topics, docs);
                double[] result = runStream(broker.bootstrap(), prefix, guarantee, tokenizer, dir, docs.size());
                System.out.printf(Locale.ROOT, "stream %s: %.0f documents/s, %.1f MB/s of raw text (%.2f of the bare tokenizer); %.1f s with start-up%n",
                        guarantee, docs.size() / result[0], bytes / 1e6 / result[0], bytes / 1e6 / result[0] / bare, result[1]);
            }
            Path file = dir.resolve("corpus.txt");
            Files.write(file, corpus);
            long start = System.nanoTime();
            int exit = new CommandLine(new IngestCommand()).execute("--bootstrap", broker.bootstrap(), "--split", "line", file.toString());
            double secs = (System.nanoTime() - start) / 1e9;
            System.out.printf(Locale.ROOT, "ingest CLI (--split line, exit %d): %.1f MB/s into text.raw (%.1f s for %.1f MB)%n",
                    exit, corpus.length / 1e6 / secs, secs, corpus.length / 1e6);
        }
    }

    /** Documents of {@code lines} consecutive corpus lines. */
    static List<String> documents(String text, int lines) {
        String[] all = text.split("\n");
        List<String> docs = new ArrayList<>();
        for (int i = 0; i + lines <= all.length; i += lines) {
            docs.add(String.join("\n", java.util.Arrays.copyOfRange(all, i, i + lines)));
        }
        return docs;
    }

    private static double bareTokenizer(Tokenizer tokenizer, List<String> docs, long bytes) {
        long best = Long.MAX_VALUE;
        for (int run = 0; run < 3; run++) {
            long start = System.nanoTime();
            long tokens = 0;
            for (String d : docs) {
                tokens += tokenizer.encode(d).length;
            }
            best = Math.min(best, System.nanoTime() - start);
            if (tokens == 0) {
                throw new IllegalStateException();
            }
        }
        return bytes / 1e6 / (best / 1e9);
    }

    private static TopicCatalog topics(String prefix) {
        return TopicCatalog.from(Settings.of(Map.of(Settings.envName("topics.prefix"), prefix), Map.of()));
    }

    private static void produce(String bootstrap, TopicCatalog topics, List<String> docs) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 10);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 512 * 1024);
        try (var producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            int i = 0;
            for (String d : docs) {
                String id = "doc-" + i++;
                producer.send(new ProducerRecord<>(topics.name(Topic.TEXT_RAW), id,
                        RawText.CODEC.encode(new RawText(id, "bench", d, System.currentTimeMillis(), Map.of()))));
            }
        }
    }

    /** Seconds from the first output to the last, and from start to the last. */
    private static double[] runStream(String bootstrap, String prefix, String guarantee, Tokenizer tokenizer, Path dir, int expected) throws Exception {
        Map<String, String> env = new HashMap<>(System.getenv()); // FLYWHEEL_STREAM_THREADS etc. apply
        env.put(Settings.envName("topics.prefix"), prefix);
        env.put(Settings.envName("kafka.bootstrap"), bootstrap);
        env.put(Settings.envName("stream.guarantee"), guarantee);
        env.put(Settings.envName("stream.application-id"), "bench-" + UUID.randomUUID());
        env.put(Settings.envName("stream.state-dir"), dir.resolve("streams-" + guarantee).toString());
        env.put(Settings.envName("stream.metrics.port"), "0");
        StreamConfig config = StreamConfig.from(Settings.of(env, Map.of()));
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, "bench-count-" + UUID.randomUUID());
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        long start = System.nanoTime();
        long first = 0;
        long end = 0;
        int seen = 0;
        try (TokenizerStream stream = TokenizerStream.start(config, tokenizer, Map.of());
             var consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(config.topics().name(Topic.TOKENS), config.topics().name(Topic.TEXT_REJECTED)));
            long deadline = System.nanoTime() + Duration.ofMinutes(20).toNanos();
            while (seen < expected && System.nanoTime() < deadline) {
                int n = consumer.poll(Duration.ofMillis(100)).count();
                if (n > 0 && first == 0) {
                    first = System.nanoTime();
                }
                seen += n;
                end = System.nanoTime();
            }
        }
        if (seen < expected) {
            throw new IllegalStateException("only " + seen + " of " + expected + " outputs");
        }
        return new double[] {(end - first) / 1e9, (end - start) / 1e9};
    }
}
