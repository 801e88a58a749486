package io.flywheel.model;

import io.flywheel.core.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * Text generation: the prompt fills the cache once, then one position per new token. It ends at a stop token ({@code <|endoftext|>}, or the chat template's end of turn), at a stop string (cut from the text, as OpenAI does), at
 * {@code max_tokens}, or when the context is full.
 */
public final class Generator {

    public enum Finish { STOP, LENGTH }

    /** A completion: its token ids and text (without the stop string), and why it ended. */
    public record Completion(int[] tokens, String text, Finish finish) {}

    private final Inference inference;
    private final Tokenizer tokenizer;
    private final Set<Integer> stopTokens;

    /** Stops at {@code <|endoftext|>}. */
    public Generator(Inference inference, Tokenizer tokenizer) {
        this(inference, tokenizer, List.of("<|endoftext|>"));
    }

    /**
     * Stops at any of the named special tokens that the tokenizer has (a chat template's
     * {@code <|end|>}, for example); they never appear in the text.
     */
    public Generator(Inference inference, Tokenizer tokenizer, List<String> stopSpecials) {
        this.inference = inference;
        this.tokenizer = tokenizer;
        Set<Integer> ids = new HashSet<>();
        for (String special : stopSpecials) {
            Integer id = tokenizer.specialTokens().get(special);
            if (id != null) {
                ids.add(id);
            }
        }
        this.stopTokens = Set.copyOf(ids);
    }

    /**
     * @param onText receives each new piece of text as soon as it is certain not to belong to a
     *               stop string (for streaming); may be {@code null}
     */
    public Completion generate(int[] prompt, Sampling sampling, Consumer<String> onText) {
        return generate(prompt, sampling, onText, null);
    }

    /**
     * One completion on this thread, with a cache of its own (serving runs many at once through a
     * {@link Batcher} instead; both drive the same {@link Run}).
     *
     * @param onToken receives each sampled token id as soon as it is drawn (for latency metrics),
     *                stop tokens included; may be {@code null}
     */
    public Completion generate(int[] prompt, Sampling sampling, Consumer<String> onText, IntConsumer onToken) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        Run run = start(sampling, onText, onToken);
        try (Inference.Session session = inference.session()) {
            float[] logits = session.append(prompt);
            while (true) {
                Completion done = run.next(logits, session.remaining());
                if (done != null) {
                    return done;
                }
                logits = session.append(run.last());
            }
        }
    }

    /** A completion that the caller drives token by token (see {@link Run#next}). */
    public Run start(Sampling sampling, Consumer<String> onText, IntConsumer onToken) {
        return new Run(sampling, onText, onToken);
    }

    /**
     * One completion in progress: its sampler, the tokens and text so far, and the stop rules.
     * Whoever runs the model hands it the logits after each position; it draws the next token and
     * says whether the completion has ended. Not thread-safe.
     */
    public final class Run implements Batcher.Sequence {
        private final Sampling sampling;
        private final Sampling.Sampler sampler;
        private final Consumer<String> onText;
        private final IntConsumer onToken;
        private final int[] out;
        private int count;
        private int emitted;
        private String text = "";

        private Run(Sampling sampling, Consumer<String> onText, IntConsumer onToken) {
            this.sampling = sampling;
            this.sampler = sampling.sampler();
            this.onText = onText;
            this.onToken = onToken;
            this.out = new int[sampling.maxTokens()];
        }

        /** The last token drawn: the one to append to the sequence next. */
        @Override
        public int last() {
            return out[count - 1];
        }

        /** Tokens generated so far. */
        public int count() {
            return count;
        }

        /**
         * Draws the next token from {@code logits}.
         *
         * @param remaining positions left in the sequence's context (for the token just drawn)
         * @return the completion when it has ended, else {@code null}: append {@link #last()} and
         *         call again with the logits that follow
         */
        @Override
        public Completion next(float[] logits, int remaining) {
            int next = sampler.next(logits);
            if (onToken != null) {
                onToken.accept(next);
            }
            if (stopTokens.contains(next)) {
                return finish(out, count, text, emitted, Finish.STOP, onText);
            }
            out[count++] = next;
            text = tokenizer.decode(Arrays.copyOf(out, count));
            int stopAt = firstStop(text, sampling);
            if (stopAt >= 0) {
                return finish(out, count, text.substring(0, stopAt), emitted, Finish.STOP, onText);
            }
            // Hold back a tail that could still grow into a stop string, and an unfinished UTF-8 character.
            int safe = text.length() - holdBack(text, sampling);
            if (onText != null && safe > emitted) {
                onText.accept(text.substring(emitted, safe));
                emitted = safe;
            }
            if (count == sampling.maxTokens() || remaining == 0) {
                return finish(out, count, text, emitted, Finish.LENGTH, onText);
            }
            return null;
        }
    }

    private static Completion finish(int[] out, int count, String text, int emitted, Finish finish, Consumer<String> onText) {
        if (onText != null && text.length() > emitted) {
            onText.accept(text.substring(emitted));
        }
        return new Completion(Arrays.copyOf(out, count), text, finish);
    }

    private static int firstStop(String text, Sampling sampling) {
        int first = -1;
        for (String stop : sampling.stop()) {
            int at = text.indexOf(stop);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        return first;
    }

    private static int holdBack(String text, Sampling sampling) {
        int hold = text.endsWith("\uFFFD") ? 1 : 0;
        for (String stop : sampling.stop()) {
            for (int k = Math.min(stop.length() - 1, text.length()); k > hold; k--) {
                if (text.endsWith(stop.substring(0, k))) {
                    hold = k;
                    break;
                }
            }
        }
        return hold;
    }
}
