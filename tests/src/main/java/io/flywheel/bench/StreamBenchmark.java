package io.flywheel.bench;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.RawText;
import io.flywheel.core.streams.StreamsApp;
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
 * then the ingest CLI's throughput into the broker. Arguments: corpus megabytes (default 20);
 * optionally the guarantees to run, comma-separated (default both).
 *
 * <p>The stream runs in two phases: first three times as many documents made of random corpus lines
 * warm up the JIT of the stream and of the broker, and more rounds follow until the JIT has settled;
 * then the corpus documents are produced and measured end to end, from the first send to the last
 * committed output.
 */
public final class StreamBenchmark {

    public static void main(String[] args) throws Exception {
        int megabytes = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        byte[] corpus = TokenizerBenchmark.europarl(megabytes * 1024 * 1024);
        List<String> docs = documents(new String(corpus, StandardCharsets.UTF_8), 10);
        long bytes = docs.stream().mapToLong(d -> d.getBytes(StandardCharsets.UTF_8).length).sum();
        System.out.printf(Locale.ROOT, "corpus: Europarl, %,d documents of 10 lines, %.1f MB%n", docs.size(), bytes / 1e6);

        Tokenizer tokenizer = TokenizerFiles.load("cl100k_base");
        double bare = bareTokenizer(tokenizer, docs, bytes);  // the best of five
        System.out.printf(Locale.ROOT, "bare tokenizer (cl100k_base, one thread): %.1f MB/s%n", bare);

        Path dir = Files.createTempDirectory("flywheel-bench");
        var options = new BrokerProcess.Options(dir.resolve("data"), "127.0.0.1", 29592, 29593, "512m", Duration.ofSeconds(90));
        try (BrokerProcess broker = BrokerProcess.start(options, TopicCatalog.defaults(), System.out)) {
            List<String> guarantees = args.length > 1 ? List.of(args[1].split(",")) : List.of(StreamConfig.EXACTLY_ONCE, StreamConfig.AT_LEAST_ONCE);
            for (String guarantee : guarantees) {
                String prefix = "bench-" + guarantee.replace('_', '-') + ".";
                TopicCatalog topics = topics(prefix);
                try (var admin = org.apache.kafka.clients.admin.Admin.create(Map.of("bootstrap.servers", broker.bootstrap()))) {
                    topics.ensureCreated(admin);
                }
                Phases result = runStream(broker,  prefix, guarantee, tokenizer, dir, docs);
                // Again with this JVM as warm as the stream: the faster of the two is the yardstick.
                double bareAfter = bareTokenizer(tokenizer, docs, bytes);
                System.out.printf(Locale.ROOT, "bare tokenizer again, after the stream: %.1f MB/s%n", bareAfter);
                bare = Math.max(bare, bareAfter);
                double mbPerSecond = bytes / 1e6 / result.measuredSeconds();
                System.out.printf(Locale.ROOT, "stream %s, warm: %.0f documents/s, %.1f MB/s of raw text (%.2f of the bare tokenizer)%n",
                        guarantee, docs.size() / result.measuredSeconds(), mbPerSecond, mbPerSecond / bare);
                System.out.printf(Locale.ROOT, "stream %s, cold (the warm-up, from start-up): %.1f MB/s, %.1f s%n",
                        guarantee, result.warmupBytes() / 1e6 / result.warmupSeconds(), result.warmupSeconds());
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
        for (int run = 0; run < 5; run++) {
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

    private static void produce(String bootstrap, TopicCatalog topics, List<String> docs, int firstId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 10);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 512 * 1024);
        try (var producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer())) {
            int i = firstId;
            for (String d : docs) {
                String id = "doc-" + i++;
                producer.send(new ProducerRecord<>(topics.name(Topic.TEXT_RAW), id,
                        RawText.CODEC.encode(new RawText(id, "bench", d, System.currentTimeMillis(), Map.of()))));
            }
        }
    }

    /** The warm-up phase (from start-up) and the measured phase over {@code docs}. */
    record Phases(double warmupSeconds, long warmupBytes, double measuredSeconds) {}

    /**
     * Two phases on one running stream: documents of random corpus lines warm it up (JIT, RocksDB,
     * the broker) and are waited for to the last output; then {@code docs} are produced and timed
     * from the first send to the last committed output, end to end.
     */
    private static Phases runStream(BrokerProcess broker, String prefix, String guarantee, Tokenizer tokenizer, Path dir,
                                    List<String> docs) throws Exception {
        String bootstrap = broker.bootstrap();
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
        List<String> warmup = shuffledDocuments(docs, 3 * docs.size(), 10, 42);
        long start = System.nanoTime();
        try (StreamsApp stream = TokenizerStream.start(config, tokenizer, streamsOverrides());
             var consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(config.topics().name(Topic.TOKENS), config.topics().name(Topic.TEXT_REJECTED)));
            produce(bootstrap, config.topics(), warmup, 0);
            awaitOutputs(consumer, warmup.size());
            double warmupSeconds = (System.nanoTime() - start) / 1e9;
            int nextId = warmup.size() + settleJit(bootstrap, config.topics(), consumer, docs, warmup.size());

            long measuredStart = System.nanoTime();
            Map<String, Long> threadsBefore = threadCpu();
            Map<String, Long> nativeBefore = nativeThreadCpu();
            long processBefore = processCpuNanos();
            long brokerBefore = cpuNanos(broker.handle());
            produce(bootstrap, config.topics(), docs, nextId);  // ids after the warm-up's
            awaitOutputs(consumer, docs.size());
            double measuredSeconds = (System.nanoTime() - measuredStart) / 1e9;
            System.out.printf(Locale.ROOT, "  measured phase: %.1f s; CPU of the broker %.1f s, of this JVM %.1f s, of its busiest threads:%n",
                    measuredSeconds, (cpuNanos(broker.handle()) - brokerBefore) / 1e9, (processCpuNanos() - processBefore) / 1e9);
            printBusiest(threadsBefore, threadCpu());
            System.out.println("  by the operating system's thread names (GC, JIT and RocksDB's threads included):");
            printBusiest(nativeBefore, nativeThreadCpu());
            long warmupBytes = warmup.stream().mapToLong(d -> d.getBytes(StandardCharsets.UTF_8).length).sum();
            return new Phases(warmupSeconds, warmupBytes, measuredSeconds);
        }
    }

    /**
     * More warm-up until the JIT has settled. Code that runs once per record (parsing, serdes, the
     * dedup stores, Kafka's clients) reaches C2's thresholds only after some ten thousand records,
     * and on a busy machine waits in C2's queue after that: measured right after the first warm-up,
     * a third of the measured phase went to C2 and the per-record stages ran C1's profiling code.
     * A long-running stream is past that, so rounds of 20,000 short documents (two random lines)
     * run until C2 spends less than a twentieth of a round compiling (at most six rounds).
     *
     * @return how many documents the rounds produced (the measured ids follow them)
     */
    private static int settleJit(String bootstrap, TopicCatalog topics, KafkaConsumer<byte[], byte[]> consumer,
                                 List<String> docs, int firstId) {
        var jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        int produced = 0;
        for (int round = 1; round <= 6; round++) {
            List<String> more = shuffledDocuments(docs, 20_000, 2, round);
            long compiledBefore = jit.getTotalCompilationTime();
            long start = System.nanoTime();
            produce(bootstrap, topics, more, firstId + produced);
            awaitOutputs(consumer, more.size());
            produced += more.size();
            double seconds = (System.nanoTime() - start) / 1e9;
            double compiling = (jit.getTotalCompilationTime() - compiledBefore) / 1e3;
            System.out.printf(Locale.ROOT, "  warm-up round %d: %.1f s, the JIT compiled for %.1f s%n", round, seconds, compiling);
            if (compiling < seconds / 20) {
                break;
            }
        }
        return produced;
    }

    /** The threads that used more than 50 ms of CPU between the two snapshots, busiest first. */
    private static void printBusiest(Map<String, Long> before, Map<String, Long> after) {
        after.entrySet().stream()
                .map(e -> Map.entry(e.getKey(), e.getValue() - before.getOrDefault(e.getKey(), 0L)))
                .filter(e -> e.getValue() > 50_000_000L)
                .sorted(Map.Entry.<String, Long>comparingByValue().reversed())
                .forEach(e -> System.out.printf(Locale.ROOT, "    %.2f s %s%n", e.getValue() / 1e9, e.getKey()));
    }

    /**
     * Kafka Streams properties to try, from {@code FLYWHEEL_BENCH_STREAMS}: comma-separated
     * {@code key=value} pairs, e.g. {@code consumer.fetch.min.bytes=65536}.
     */
    private static Map<String, String> streamsOverrides() {
        Map<String, String> overrides = new HashMap<>();
        for (String pair : System.getenv().getOrDefault("FLYWHEEL_BENCH_STREAMS", "").split(",")) {
            int eq = pair.indexOf('=');
            if (eq > 0) {
                overrides.put(pair.substring(0, eq).strip(), pair.substring(eq + 1).strip());
            }
        }
        return overrides;
    }

    /** CPU time by thread name, the application ids masked so that the two runs' threads line up. */
    private static Map<String, Long> threadCpu() {
        var threads = java.lang.management.ManagementFactory.getThreadMXBean();
        Map<String, Long> cpu = new HashMap<>();
        for (var info : threads.dumpAllThreads(false, false)) {
            cpu.merge(info.getThreadName().replaceAll("[0-9a-f]{8}-[0-9a-f-]{27}", "*"),
                    Math.max(0, threads.getThreadCpuTime(info.getThreadId())), Long::sum);
        }
        return cpu;
    }

    /**
     * CPU time of every thread of this process as Linux counts it ({@code /proc/self/task}), by
     * its short name with digits masked; empty elsewhere.
     */
    private static Map<String, Long> nativeThreadCpu() {
        Map<String, Long> cpu = new HashMap<>();
        long nanosPerTick = 10_000_000L; // USER_HZ is 100 on Linux
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path task : (Iterable<Path>) tasks::iterator) {
                try {
                    String stat = Files.readString(task.resolve("stat"));
                    String name = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replaceAll("[0-9]+", "N");
                    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    long ticks = Long.parseLong(fields[11]) + Long.parseLong(fields[12]); // utime, stime
                    cpu.merge(name, ticks * nanosPerTick, Long::sum);
                } catch (java.io.IOException | RuntimeException e) {
                    // the thread ended while we looked
                }
            }
        } catch (java.io.IOException e) {
            return Map.of();
        }
        return cpu;
    }

    private static long cpuNanos(ProcessHandle process) {
        return process.info().totalCpuDuration().map(Duration::toNanos).orElse(0L);
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    /**
     * {@code count} documents of {@code lines} lines drawn at random from {@code docs}: new texts
     * (neither exact nor near duplicates of each other or of the originals) in the same language
     * mix, for warming up.
     */
    static List<String> shuffledDocuments(List<String> docs, int count, int lines, long seed) {
        List<String> all = new ArrayList<>();
        docs.forEach(d -> all.addAll(List.of(d.split("\n"))));
        java.util.Random random = new java.util.Random(seed);
        List<String> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            StringBuilder doc = new StringBuilder();
            for (int l = 0; l < lines; l++) {
                doc.append(l == 0 ? "" : "\n").append(all.get(random.nextInt(all.size())));
            }
            out.add(doc.toString());
        }
        return out;
    }

    private static void awaitOutputs(KafkaConsumer<byte[], byte[]> consumer, int expected) {
        long deadline = System.nanoTime() + Duration.ofMinutes(20).toNanos();
        int seen = 0;
        while (seen < expected && System.nanoTime() < deadline) {
            seen += consumer.poll(Duration.ofMillis(50)).count();
        }
        if (seen != expected) {
            throw new IllegalStateException(seen + " outputs where " + expected + " were expected");
        }
    }
}
