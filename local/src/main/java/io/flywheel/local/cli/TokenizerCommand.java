package io.flywheel.local.cli;

import io.flywheel.core.cli.UsageError;
import io.flywheel.core.tokenizer.BpeTrainer;
import io.flywheel.core.tokenizer.PreTokenizer;
import io.flywheel.core.tokenizer.Tokenizer;
import io.flywheel.core.tokenizer.TokenizerFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code flywheel tokenizer train|export}. */
@Command(name = "tokenizer", mixinStandardHelpOptions = true, description = "Train or export a byte-level BPE tokenizer.",
        subcommands = {TokenizerCommand.Train.class, TokenizerCommand.Export.class})
public final class TokenizerCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "Missing subcommand: train or export");
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = {"Learn a byte-level BPE vocabulary from text files (folders are read recursively).",
                    "Deterministic: the same files and options give the same tokenizer file, and so the same id."})
    public static final class Train implements Callable<Integer> {

        @Option(names = "--vocab-size", required = true, paramLabel = "N",
                description = "Total ids: 256 bytes + merges + 5 special tokens (<|endoftext|> and the chat role markers).")
        int vocabSize;

        @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the tokenizer (JSON).")
        Path out;

        @Option(names = "--pattern", defaultValue = "gpt2", paramLabel = "gpt2|cl100k",
                description = "Pre-tokenization regex: GPT-2's or cl100k's (default: ${DEFAULT-VALUE}).")
        String pattern;

        @Option(names = "--tiktoken-out", paramLabel = "FILE", description = "Also write the vocabulary in tiktoken's rank format.")
        Path tiktokenOut;

        @Parameters(arity = "1..*", paramLabel = "FILE", description = "Corpus files or folders.")
        List<Path> inputs;

        @Override
        public Integer call() throws IOException {
            PreTokenizer pre;
            try {
                pre = PreTokenizer.byId(pattern);
            } catch (IllegalArgumentException e) {
                throw new UsageError(e.getMessage());
            }
            BpeTrainer trainer;
            try {
                trainer = new BpeTrainer(pre, vocabSize, BpeTrainer.DEFAULT_SPECIALS, msg -> System.err.println("tokenizer: " + msg));
            } catch (IllegalArgumentException e) {
                throw new UsageError(e.getMessage());
            }
            List<Path> files = expand(inputs);
            for (Path file : files) {
                try {
                    trainer.add(Files.readAllBytes(file));
                } catch (IOException e) {
                    throw new UsageError("cannot read " + file + ": " + e.getMessage(), e);
                }
            }
            byte[] tokenizerFile;
            try {
                tokenizerFile = trainer.train();
            } catch (IllegalArgumentException e) {
                throw new UsageError(e.getMessage());
            }
            writeAtomically(out, tokenizerFile);
            Tokenizer tok = TokenizerFiles.read(out.getFileName().toString(), tokenizerFile);
            if (tiktokenOut != null) {
                writeAtomically(tiktokenOut, TokenizerFiles.exportTiktoken(tok));
            }
            System.out.println("tokenizer: " + out + " vocab " + tok.vocabSize() + " id " + tok.id());
            return 0;
        }

        static List<Path> expand(List<Path> inputs) {
            List<Path> files = new ArrayList<>();
            for (Path in : inputs) {
                if (Files.isDirectory(in)) {
                    try (Stream<Path> walk = Files.walk(in)) {
                        walk.filter(Files::isRegularFile).sorted().forEach(files::add);
                    } catch (IOException e) {
                        throw new UsageError("cannot read folder " + in + ": " + e.getMessage(), e);
                    }
                } else if (Files.isRegularFile(in) && Files.isReadable(in)) {
                    files.add(in);
                } else {
                    throw new UsageError("cannot read " + in + ": no such readable file");
                }
            }
            return files;
        }
    }

    @Command(name = "export", mixinStandardHelpOptions = true,
            description = "Write a tokenizer's vocabulary in tiktoken's rank format (base64 bytes, rank).")
    public static final class Export implements Callable<Integer> {

        @Option(names = "--tokenizer", required = true, paramLabel = "FILE|NAME")
        String tokenizer;

        @Option(names = "--out", required = true, paramLabel = "FILE")
        Path out;

        @Override
        public Integer call() throws IOException {
            Tokenizer tok = Tokenizers.load(tokenizer);
            writeAtomically(out, TokenizerFiles.exportTiktoken(tok));
            System.out.println("tiktoken: " + out + " (" + tok.ordinaryCount() + " ranks; specials " + tok.specialTokens() + ")");
            return 0;
        }
    }

    /** Writes beside the target, then renames: a reader never sees half a file. */
    static void writeAtomically(Path target, byte[] bytes) {
        try {
            Path parent = target.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            Path tmp = Files.createTempFile(parent, ".flywheel-", ".tmp");
            Files.write(tmp, bytes);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UsageError("cannot write " + target + ": " + e.getMessage(), e);
        }
    }
}
