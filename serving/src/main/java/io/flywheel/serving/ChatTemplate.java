package io.flywheel.serving;

import io.flywheel.core.tokenizer.Tokenizer;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * How chat messages become one prompt. With a tokenizer that has the role tokens (Flywheel's own
 * tokenizers do: {@code <|system|> <|user|> <|assistant|> <|end|>}):
 * <pre>
 *   &lt;|endoftext|&gt;&lt;|system|&gt;You are terse.&lt;|end|&gt;&lt;|user|&gt;Hi!&lt;|end|&gt;&lt;|assistant|&gt;
 * </pre>
 * and the model answers until it writes {@code <|end|>} (or {@code <|endoftext|>}). Message text is
 * encoded as ordinary text, so a user who types {@code <|end|>} cannot forge a turn. A tokenizer
 * without role tokens (the public vocabularies) gets the same turns in plain text,
 * {@code "system: ...\n\nuser: ...\n\nassistant:"}.
 */
final class ChatTemplate {

    static final Set<String> ROLES = Set.of("system", "user", "assistant");

    record Message(String role, String content) {}

    /** The prompt's tokens and, for the responses topic, its text with the special tokens spelled out. */
    record Rendered(String text, int[] tokens) {}

    private ChatTemplate() {}

    static Rendered render(List<Message> messages, Tokenizer tokenizer) {
        boolean roleTokens = tokenizer.specialTokens().keySet().containsAll(List.of("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"));
        StringBuilder text = new StringBuilder("<|endoftext|>");
        IntStream.Builder tokens = IntStream.builder();
        tokens.add(tokenizer.specialId("<|endoftext|>"));
        for (Message m : messages) {
            if (roleTokens) {
                String open = "<|" + m.role() + "|>";
                text.append(open).append(m.content()).append("<|end|>");
                tokens.add(tokenizer.specialId(open));
                IntStream.of(tokenizer.encode(m.content())).forEach(tokens::add);
                tokens.add(tokenizer.specialId("<|end|>"));
            } else {
                String turn = m.role() + ": " + m.content() + "\n\n";
                text.append(turn);
                IntStream.of(tokenizer.encode(turn)).forEach(tokens::add);
            }
        }
        if (roleTokens) {
            text.append("<|assistant|>");
            tokens.add(tokenizer.specialId("<|assistant|>"));
        } else {
            text.append("assistant:");
            IntStream.of(tokenizer.encode("assistant:")).forEach(tokens::add);
        }
        return new Rendered(text.toString(), tokens.build().toArray());
    }
}
