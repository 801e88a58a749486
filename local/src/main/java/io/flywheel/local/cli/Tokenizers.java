package io.flywheel.local.cli;

import io.flywheel.core.cli.UsageError;
import io.flywheel.core.serde.RecordFormatException;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.io.IOException;

/** Loads a tokenizer named on the command line, turning every failure into a usage error. */
final class Tokenizers {
    private Tokenizers() {}

    static Tokenizer load(String nameOrPath) {
        try {
            return TokenizerFiles.load(nameOrPath);
        } catch (IOException e) {
            throw new UsageError(e.getMessage(), e);
        } catch (RecordFormatException e) {
            throw new UsageError(nameOrPath + " is not a valid tokenizer file: " + e.getMessage(), e);
        }
    }
}
