package io.flywheel.bench;

import io.flywheel.core.config.Settings;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import io.flywheel.local.broker.BrokerProcess;
import io.flywheel.core.checkpoint.CheckpointStore;
import io.flywheel.model.AdamW;
import io.flywheel.model.Decoder;
import io.flywheel.model.Gpt;
import io.flywheel.model.GptConfig;
import io.flywheel.model.Inference;
import io.flywheel.model.KvCacheDtype;
import io.flywheel.model.MatmulPeak;
import io.flywheel.model.ModelCheckpoint;
import io.flywheel.model.OptimizerConfig;
import io.flywheel.model.Quantization;
import io.flywheel.trainer.Trainer;
import io.flywheel.trainer.TrainerConfig;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The trainer's benchmarks (run with {@code OMP_NUM_THREADS=1}; see docs/benchmarks.md):
 * <ul>
 *   <li>{@code throughput}: tokens/s and MFU of a training step (forward, backward, AdamW) for three
 *       model sizes, against ND4J's float32 matrix-multiply peak measured in the same run;</li>
 *   <li>{@code shakespeare MINUTES [VOCAB]}: learning speed. tinyshakespeare's first 90% is
 *       produced as train records, the last 10% as validation records, to a local broker; the real
 *       trainer learns from the topic, and each checkpoint's validation bits per byte is printed
 *       against wall-clock time since the trainer started. The RSS of this JVM (which is the
 *       trainer's) is printed beside it, so a long run ({@code -Dbench.epochs=N} sends the train
 *       split N times) doubles as the memory check.</li>
 * </ul>
 */
public final class TrainerBenchmark {

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "throughput";
        switch (mode) {
            case "throughput" -> throughput();
            case "shakespeare" -> shakespeare(args.length > 1 ? Double.parseDouble(args[1]) : 4,
                    args.length > 2 ? Integer.parseInt(args[2]) : 1024, Arrays.copyOfRange(args, Math.min(3, args.length), args.length));
            default -> throw new IllegalArgumentException("mode: throughput or shakespeare");
        }
    }

    // --- tokens/s and MFU ------------------------------------------------------------------------

    private static void throughput() {
        double peak = MatmulPeak.measure(2048, 5);
        System.out.printf(Locale.ROOT, "OpenBLAS sgemm peak (2048^3 float32, best of 5, OMP_NUM_THREADS=%s, OPENBLAS_CORETYPE=%s): %.1f GFLOP/s%n",
                System.getenv().getOrDefault("OMP_NUM_THREADS", "unset"), System.getenv().getOrDefault("OPENBLAS_CORETYPE", "unset"), peak / 1e9);
        int vocab = 1024;
        int context = 128;
        int batch = 8;
        List<GptConfig> sizes = List.of(
                new GptConfig(vocab, context, 4, 4, 128, 4, 0.0, true),
                new GptConfig(vocab, context, 6, 8, 256, 4, 0.0, true),
                new GptConfig(vocab, context, 8, 8, 512, 4, 0.0, true));
        System.out.println("| model | parameters | tokens/step | step (median) | of which AdamW | tokens/s | GFLOP/s | MFU |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (GptConfig c : sizes) {
            Gpt model = Gpt.initialize(c, 1);
            AdamW adam = new AdamW(OptimizerConfig.defaults());
            SplittableRandom r = new SplittableRandom(7);
            int steps = c.width() >= 512 ? 6 : 12;
            double[] seconds = new double[steps];
            double[] updateSeconds = new double[steps];
            // Warm-up: three steps and at least 5 s, as the JIT compiles the fused loops in the
            // first seconds (on two threads, the compiler threads then take cores from the step).
            long warmUp = System.nanoTime();
            int warm = 0;
            while (warm < 3 || System.nanoTime() - warmUp < 5_000_000_000L) {
                warm++;
                int[][][] io = randomBatch(r, batch, context, vocab);
                adam.apply(model.parameters(), model.gradients(io[0], io[1], null).byParameter());
            }
            for (int s = 0; s < steps; s++) {
                int[][][] io = randomBatch(r, batch, context, vocab);
                long start = System.nanoTime();
                Gpt.Gradients g = model.gradients(io[0], io[1], null);
                long update = System.nanoTime();
                adam.apply(model.parameters(), g.byParameter());
                seconds[s] = (System.nanoTime() - start) / 1e9;
                updateSeconds[s] = (System.nanoTime() - update) / 1e9;
            }
            Arrays.sort(seconds);
            Arrays.sort(updateSeconds);
            double median = seconds[steps / 2];
            double tokensPerSecond = batch * context / median;
            double flops = c.trainingFlopsPerToken() * tokensPerSecond;
            System.out.printf(Locale.ROOT, "| L%d d%d h%d, vocab %d, context %d | %.2fM | %d | %.0f ms | %.0f ms | %,.0f | %.1f | %.0f%% |%n",
                    c.layers(), c.width(), c.heads(), vocab, context, c.parameterCount() / 1e6, batch * context,
                    median * 1000, updateSeconds[steps / 2] * 1000, tokensPerSecond, flops / 1e9, 100 * flops / peak);
        }
    }

    // --- learning speed on tinyshakespeare -------------------------------------------------------

    private static void shakespeare(double minutes, int vocab, String[] overrides) throws Exception {
        Path corpus = Path.of(System.getProperty("bench.data", "../../shared/data")).resolve("tinyshakespeare.txt");
        byte[] all = Files.readAllBytes(corpus);
        int cut = (int) (all.length * 0.9);
        while ((all[cut] & 0xC0) == 0x80) {
            cut++;   // do not split a UTF-8 sequence
        }
        String train = new String(all, 0, cut, StandardCharsets.UTF_8);
        String validation = new String(all, cut, all.length - cut, StandardCharsets.UTF_8);
        BpeTrainer bpe = new BpeTrainer(PreTokenizer.GPT2, vocab, BpeTrainer.DEFAULT_SPECIALS, s -> {});
        bpe.add(train.getBytes(StandardCharsets.UTF_8));
        Path dir = Files.createTempDirectory("flywheel-trainer-bench");
        Path tokenizerFile = dir.resolve("shakespeare.json");
        Files.write(tokenizerFile, bpe.train());
        Tokenizer tokenizer = TokenizerFiles.load(tokenizerFile.toString());
        List<String> trainDocs = paragraphs(train);
        List<String> valDocs = paragraphs(validation);
        long trainTokens = trainDocs.stream().mapToLong(d -> tokenizer.encode(d).length).sum();
        long valTokens = valDocs.stream().mapToLong(d -> tokenizer.encode(d).length).sum();
        System.out.printf(Locale.ROOT, "tinyshakespeare: train %,d bytes -> %,d documents, %,d tokens (%.2f bytes/token, vocab %d); "
                        + "validation %,d bytes -> %,d documents, %,d tokens%n",
                cut, trainDocs.size(), trainTokens, (double) cut / trainTokens, vocab, all.length - cut, valDocs.size(), valTokens);

        var options = new BrokerProcess.Options(dir.resolve("data"), "127.0.0.1", 29692, 29693, "512m", Duration.ofSeconds(90));
        try (BrokerProcess broker = BrokerProcess.start(options, TopicCatalog.defaults(), System.out)) {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            try (var producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
                String topic = TopicCatalog.defaults().name(Topic.TOKENS);
                // Validation first, so the trainer's evaluation set is complete from its first checkpoint.
                int i = 0;
                for (String d : valDocs) {
                    producer.send(new ProducerRecord<>(topic, ("val-" + i++).getBytes(StandardCharsets.UTF_8),
                            TokenRecord.CODEC.encode(new TokenRecord(tokenizer.id(), Split.VALIDATION, tokenizer.encode(d)))));
                }
                producer.flush();
                // -Dbench.epochs=N sends the train split N times, for long runs (the memory check).
                int epochs = Integer.getInteger("bench.epochs", 1);
                for (int epoch = 0; epoch < epochs; epoch++) {
                    for (String d : trainDocs) {
                        producer.send(new ProducerRecord<>(topic, ("train-" + i++).getBytes(StandardCharsets.UTF_8),
                                TokenRecord.CODEC.encode(new TokenRecord(tokenizer.id(), Split.TRAIN, tokenizer.encode(d)))));
                    }
                }
            }
            Map<String, String> settings = new HashMap<>();
            settings.put("kafka.bootstrap", broker.bootstrap());
            settings.put("trainer.tokenizer", tokenizerFile.toString());
            settings.put("trainer.checkpoint-dir", dir.resolve("checkpoints").toString());
            settings.put("trainer.metrics.port", "0");
            // nanoGPT's CPU configuration for shakespeare_char: 4 layers, 4 heads, 128 wide, context 64,
            // batch 12, lr 1e-3 warm-up 100 cosine to 1e-4 over 2000 steps, no dropout.
            settings.put("model.context", "64");
            settings.put("model.layers", "4");
            settings.put("model.heads", "4");
            settings.put("model.width", "128");
            settings.put("train.batch", "12");
            settings.put("optim.decay-steps", "2000");
            settings.put("eval.max-tokens", Long.toString(valTokens + valDocs.size()));
            settings.put("checkpoint.every-steps", "1000000");
            settings.put("checkpoint.every-seconds", "20");
            for (String o : overrides) {
                int eq = o.indexOf('=');
                settings.put(o.substring(0, eq), o.substring(eq + 1));
            }
            System.out.println("trainer settings: " + new java.util.TreeMap<>(settings));
            Settings s = Settings.of(Map.of(), Map.of());
            for (var e : settings.entrySet()) {
                s = s.with(e.getKey(), e.getValue());
            }
            Trainer trainer = Trainer.start(TrainerConfig.from(s), tokenizer);
            Thread loop = new Thread(trainer::run, "trainer");
            long start = System.nanoTime();
            loop.start();
            System.out.println("| minutes | steps | tokens trained | train loss | validation loss (nats/token) | validation bits/byte | RSS MB |");
            System.out.println("|---|---|---|---|---|---|---|");
            double lastVersion = 0;
            HttpClient http = HttpClient.newHttpClient();
            while ((System.nanoTime() - start) / 60e9 < minutes) {
                Thread.sleep(1000);
                Map<String, Double> m = scrape(http, trainer.metricsPort());
                double version = m.getOrDefault("flywheel_trainer_checkpoint_version", 0.0);
                if (version > lastVersion) {
                    lastVersion = version;
                    System.out.printf(Locale.ROOT, "| %.2f | %.0f | %,.0f | %.3f | %.3f | %.3f | %d |%n",
                            (System.nanoTime() - start) / 60e9, m.get("flywheel_trainer_steps_total"),
                            m.get("flywheel_trainer_tokens_trained_total"), m.get("flywheel_trainer_loss"),
                            m.get("flywheel_trainer_validation_loss"), m.get("flywheel_trainer_validation_bits_per_byte"), rssMegabytes());
                }
            }
            Map<String, Double> m = scrape(http, trainer.metricsPort());
            System.out.printf(Locale.ROOT, "training: %.0f tokens/s at the last step, MFU %.0f%% of %.1f GFLOP/s measured at start%n",
                    m.get("flywheel_trainer_tokens_per_second"), 100 * m.get("flywheel_trainer_mfu"), m.get("flywheel_trainer_peak_flops") / 1e9);
            trainer.requestStop();
            trainer.awaitStop(Duration.ofMinutes(2));
            trainer.close();
            quantizedLoss(dir.resolve("checkpoints"), tokenizer, valDocs);
        }
    }

    /**
     * Serving's int8 weights and its bfloat16 key/value cache against float32 on the model just
     * trained: the validation loss of the last checkpoint through serving's decoder each way (each
     * document in windows of the context, every target predicted once).
     */
    private static void quantizedLoss(Path checkpoints, Tokenizer tokenizer, List<String> docs) throws IOException {
        CheckpointStore store = CheckpointStore.open(checkpoints);
        long version = store.latest().orElseThrow();
        ModelCheckpoint.Weights w = ModelCheckpoint.loadWeights(store.open(version).folder(), null);
        List<int[]> encoded = docs.stream().map(tokenizer::encode).toList();
        double full = loss(w, Quantization.NONE, KvCacheDtype.FLOAT32, encoded, version);
        double int8 = loss(w, Quantization.INT8, KvCacheDtype.FLOAT32, encoded, version);
        double bf16 = loss(w, Quantization.NONE, KvCacheDtype.BFLOAT16, encoded, version);
        System.out.printf(Locale.ROOT, "int8 - float32: %+.5f nats/token (%+.3f%%)%n", int8 - full, 100 * (int8 - full) / full);
        System.out.printf(Locale.ROOT, "bfloat16 cache - float32: %+.5f nats/token (%+.3f%%)%n", bf16 - full, 100 * (bf16 - full) / full);
    }

    private static double loss(ModelCheckpoint.Weights w, Quantization q, KvCacheDtype kv, List<int[]> encoded, long version) {
        int T = w.config().contextLength();
        double nll = 0;
        long tokens = 0;
        try (Inference inference = new Inference(Decoder.copyOf(w.config(), w.weights(), q), kv)) {
            for (int[] ids : encoded) {
                for (int from = 0; from + 1 < ids.length; from += T) {
                    int[] window = Arrays.copyOfRange(ids, from, Math.min(ids.length, from + T + 1));
                    nll += inference.negativeLogLikelihood(window);
                    tokens += window.length - 1;
                }
            }
        }
        System.out.printf(Locale.ROOT, "checkpoint %d through serving's decoder, weights %s, a %s cache: validation loss %.5f nats/token over %,d tokens%n",
                version, q, kv, nll / tokens, tokens);
        return nll / tokens;
    }

    /** Random inputs and targets, [batch][context] each (speed does not depend on them). */
    private static int[][][] randomBatch(SplittableRandom r, int batch, int context, int vocab) {
        int[][][] io = new int[2][batch][context];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < context; t++) {
                io[0][b][t] = r.nextInt(vocab);
                io[1][b][t] = r.nextInt(vocab);
            }
        }
        return io;
    }

    /** Paragraphs (speeches, separated by blank lines) as documents. */
    private static List<String> paragraphs(String text) {
        List<String> docs = new ArrayList<>();
        for (String p : text.split("\n\n")) {
            if (!p.isBlank()) {
                docs.add(p);
            }
        }
        return docs;
    }

    private static Map<String, Double> scrape(HttpClient http, int port) throws IOException, InterruptedException {
        Map<String, Double> values = new HashMap<>();
        String body = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        for (String line : body.split("\n")) {
            if (!line.startsWith("#") && !line.isBlank() && line.indexOf('{') < 0) {
                int space = line.lastIndexOf(' ');
                values.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
            }
        }
        return values;
    }

    private static long rssMegabytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", "")) / 1024;
            }
        }
        return -1;
    }
}
