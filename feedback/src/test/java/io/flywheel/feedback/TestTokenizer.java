package io.flywheel.feedback;

import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.nio.charset.StandardCharsets;

/** A small tokenizer of our own, with the chat template's role tokens, trained once per test JVM. */
final class TestTokenizer {

    private static Tokenizer tokenizer;

    private TestTokenizer() {}

    static synchronized Tokenizer get() {
        if (tokenizer == null) {
            BpeTrainer bpe = new BpeTrainer(PreTokenizer.GPT2, 300, BpeTrainer.DEFAULT_SPECIALS, s -> {});
            bpe.add("The sea is wide and the waves are calm. Tell me about the deep salt sea."
                    .repeat(20).getBytes(StandardCharsets.UTF_8));
            tokenizer = TokenizerFiles.read("feedback-test", bpe.train());
        }
        return tokenizer;
    }
}
