package io.flywheel.model;

import io.flywheel.core.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.function.Consumer;

/**
 * Text generation on the eager path: the prompt fills the cache once, then one position per new
 * token. It ends at the end-of-text token, at a stop string (cut from the text, as OpenAI does), at
 * {@code max_tokens}, or when the context is full.
 */
public final class Generator {

    public enum Finish { STOP, LENGTH }

    /** A completion: its token ids and text (without the stop string), and why it ended. */
    public record Completion(int[] tokens, String text, Finish finish) {}

    private final Inference inference;
    private final Tokenizer tokenizer;
    private final int endOfText;

    public Generator(Inference inference, Tokenizer tokenizer) {
        this.inference = inference;
        this.tokenizer = tokenizer;
        Integer eot = tokenizer.specialTokens().get("<|endoftext|>");
        this.endOfText = eot == null ? -1 : eot;
    }

    /**
     * @param onText receives each new piece of text as soon as it is certain not to belong to a
     *               stop string (for streaming); may be {@code null}
     */
    public Completion generate(int[] prompt, Sampling sampling, Consumer<String> onText) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        Inference.Session session = inference.session();
        float[] logits = session.append(prompt);
        Sampling.Sampler sampler = sampling.sampler();
        int[] out = new int[sampling.maxTokens()];
        int count = 0;
        int emitted = 0;
        String text = "";
        while (true) {
            int next = sampler.next(logits);
            if (next == endOfText) {
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
            if (count == sampling.maxTokens() || session.remaining() == 0) {
                return finish(out, count, text, emitted, Finish.LENGTH, onText);
            }
            logits = session.append(next);
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
