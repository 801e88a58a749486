package io.flywheel.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import io.flywheel.model.AdamW;
import io.flywheel.model.Gpt;
import io.flywheel.model.GptConfig;
import io.flywheel.model.Inference;
import io.flywheel.model.OptimizerConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Reward-model pair accuracy on FineGrainedRLHF's qa_feedback dev split
 * ({@code ../shared/data/finegrained-rlhf-qa-dev.json}): 500 questions, 4 answers each, human
 * preferences between answer pairs. Questions 1-400 train, 401-500 are held out (whole questions, so
 * no prompt is on both sides). The reward head and the loss are the trainer's
 * ({@link Gpt#preferenceGradients}, Bradley-Terry only); the prompt is the chat template with the
 * question, the answer is closed by {@code <|end|>}, as the feedback stream builds pairs.
 *
 * <p>Arguments: {@code [pretrain-minutes 5] [epochs 3] [context 256]}. Pre-training is next-token
 * learning on the train questions' passages and answers, the model's only knowledge of the domain.
 */
public final class RewardBenchmark {

    private static final int[][] PAIRS = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

    record Pair(int[] prompt, int[] chosen, int[] rejected) {}

    public static void main(String[] args) throws Exception {
        double pretrainMinutes = args.length > 0 ? Double.parseDouble(args[0]) : 5;
        int epochs = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int context = args.length > 2 ? Integer.parseInt(args[2]) : 256;
        Path file = Path.of(System.getProperty("bench.data", "../../shared/data")).resolve("finegrained-rlhf-qa-dev.json");
        JsonNode data = new ObjectMapper().readTree(file.toFile());
        List<JsonNode> questions = new ArrayList<>();
        data.forEach(questions::add);
        List<JsonNode> train = questions.subList(0, 400);
        List<JsonNode> heldOut = questions.subList(400, questions.size());

        StringBuilder corpus = new StringBuilder();
        for (JsonNode q : train) {
            corpus.append(q.path("question").asText()).append('\n');
            for (JsonNode passage : q.path("passages")) {
                for (int i = 1; i < passage.size(); i++) {
                    corpus.append(passage.get(i).asText()).append(' ');
                }
                corpus.append('\n');
            }
            for (int a = 1; a <= 4; a++) {
                corpus.append(q.path("prediction " + a).asText()).append('\n');
            }
        }
        BpeTrainer bpe = new BpeTrainer(PreTokenizer.GPT2, 4096, BpeTrainer.DEFAULT_SPECIALS, s -> {});
        bpe.add(corpus.toString().getBytes(StandardCharsets.UTF_8));
        Tokenizer tokenizer = TokenizerFiles.read("rlhf-qa", bpe.train());
        List<Pair> trainPairs = pairs(train, tokenizer);
        List<Pair> heldOutPairs = pairs(heldOut, tokenizer);
        System.out.printf(Locale.ROOT, "finegrained-rlhf qa dev: %d train pairs (questions 1-400), %d held-out pairs (401-500); "
                + "corpus %,d bytes, BPE 4096%n", trainPairs.size(), heldOutPairs.size(), corpus.length());

        GptConfig config = new GptConfig(tokenizer.vocabSize(), context, 4, 4, 128, 4, 0.0, true);
        Gpt model = Gpt.initialize(config, 1337);
        System.out.printf(Locale.ROOT, "model %s, %.2fM parameters%n", config, config.parameterCount() / 1e6);
        System.out.printf(Locale.ROOT, "untrained: held-out pair accuracy %.3f%n", accuracy(model, heldOutPairs, context));

        if (pretrainMinutes > 0) {
            int[] tokens = tokenizer.encode(corpus.toString());
            AdamW lm = new AdamW(new OptimizerConfig(1e-3, 1e-4, 50, OptimizerConfig.Schedule.COSINE, 3000, 0.1, 0.9, 0.99, 1e-8, 1.0));
            Random random = new Random(1);
            long start = System.nanoTime();
            int steps = 0;
            double loss = Double.NaN;
            while ((System.nanoTime() - start) / 60e9 < pretrainMinutes) {
                int[][] in = new int[8][];
                int[][] out = new int[8][];
                for (int b = 0; b < 8; b++) {
                    int at = random.nextInt(tokens.length - context - 1);
                    in[b] = Arrays.copyOfRange(tokens, at, at + context);
                    out[b] = Arrays.copyOfRange(tokens, at + 1, at + context + 1);
                }
                Gpt.Gradients g = model.gradients(in, out, null);
                lm.apply(model.parameters(), g.byParameter());
                loss = g.loss();
                steps++;
            }
            System.out.printf(Locale.ROOT, "pre-trained %.1f min: %d steps of 8 x %d tokens (%,d tokens), last loss %.3f; "
                    + "held-out pair accuracy %.3f%n", pretrainMinutes, steps, context, (long) steps * 8 * context, loss,
                    accuracy(model, heldOutPairs, context));
        }

        AdamW rm = new AdamW(new OptimizerConfig(3e-4, 3e-5, 20, OptimizerConfig.Schedule.CONSTANT, 1, 0.1, 0.9, 0.99, 1e-8, 1.0));
        System.out.println("| epoch | pairs trained | train loss (last 50 steps) | held-out pair accuracy | minutes |");
        System.out.println("|---|---|---|---|---|");
        long start = System.nanoTime();
        int trained = 0;
        Random shuffle = new Random(7);
        int[] checkpoints = {250, 500, 1000};
        int next = 0;
        for (int epoch = 1; epoch <= epochs; epoch++) {
            List<Pair> order = new ArrayList<>(trainPairs);
            Collections.shuffle(order, shuffle);
            double recent = 0;
            int recentSteps = 0;
            for (int at = 0; at + 8 <= order.size(); at += 8) {
                List<Gpt.Sequence> chosen = new ArrayList<>();
                List<Gpt.Sequence> rejected = new ArrayList<>();
                for (Pair p : order.subList(at, at + 8)) {
                    chosen.add(Gpt.Sequence.fit(p.prompt(), p.chosen(), context));
                    rejected.add(Gpt.Sequence.fit(p.prompt(), p.rejected(), context));
                }
                Gpt.PreferenceGradients g = model.preferenceGradients(chosen, rejected, new float[8], List.of(), 1.0, 0.0, 0.1);
                // The body at a tenth of the head's rate, as the trainer's pref.lr-scale does.
                rm.apply(model.parameters(), g.byParameter(), name -> name.startsWith("reward.") ? 1.0 : 0.1);
                trained += 8;
                recent += g.rewardLoss();
                recentSteps++;
                if (recentSteps > 50) {
                    recent *= 50.0 / recentSteps;
                    recentSteps = 50;
                }
                if (epoch == 1 && next < checkpoints.length && trained >= checkpoints[next]) {
                    row(epoch, trained, recent / recentSteps, accuracy(model, heldOutPairs, context), start);
                    next++;
                }
            }
            row(epoch, trained, recent / Math.max(1, recentSteps), accuracy(model, heldOutPairs, context), start);
        }
    }

    private static void row(int epoch, int trained, double loss, double accuracy, long start) {
        System.out.printf(Locale.ROOT, "| %d | %,d | %.3f | %.3f | %.1f |%n", epoch, trained, loss, accuracy, (System.nanoTime() - start) / 60e9);
    }

    private static List<Pair> pairs(List<JsonNode> questions, Tokenizer tokenizer) {
        int end = tokenizer.specialId("<|end|>");
        List<Pair> out = new ArrayList<>();
        for (JsonNode q : questions) {
            int[] prompt = tokenizer.encodeWithSpecials("<|endoftext|><|user|>" + q.path("question").asText() + "<|end|><|assistant|>");
            JsonNode preference = q.path("preference");
            for (int k = 0; k < PAIRS.length && k < preference.size(); k++) {
                int p = preference.get(k).asInt();
                if (p == 0) {
                    continue;
                }
                int winner = p == 1 ? PAIRS[k][0] : PAIRS[k][1];
                int loser = p == 1 ? PAIRS[k][1] : PAIRS[k][0];
                out.add(new Pair(prompt, closed(tokenizer.encode(q.path("prediction " + (winner + 1)).asText()), end),
                        closed(tokenizer.encode(q.path("prediction " + (loser + 1)).asText()), end)));
            }
        }
        return out;
    }

    private static int[] closed(int[] ids, int end) {
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = end;
        return out;
    }

    /** Share of pairs whose chosen answer the reward head scores higher, on the eager path serving uses. */
    private static double accuracy(Gpt model, List<Pair> pairs, int context) {
        Inference inference = new Inference(model);
        int right = 0;
        for (Pair p : pairs) {
            double c = inference.reward(Gpt.Sequence.fit(p.prompt(), p.chosen(), context).tokens());
            double r = inference.reward(Gpt.Sequence.fit(p.prompt(), p.rejected(), context).tokens());
            right += c > r ? 1 : 0;
        }
        return (double) right / pairs.size();
    }
}
