package io.flywheel.core.tokenizer;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into the chunks that BPE merges within; merges never cross a chunk boundary. The
 * patterns are the public ones of the OpenAI encodings, compiled with Unicode character classes so
 * that {@code \s} and friends mean what they mean in tiktoken.
 */
public enum PreTokenizer {
    /** GPT-2 (r50k_base): contractions, letters, numbers, other symbols, each with an optional leading space. */
    GPT2("'(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"),
    /** cl100k_base: case-insensitive contractions, digits in groups of at most three, newlines kept apart. */
    CL100K("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
            + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    /** o200k_base: case-aware word pieces with attached contractions. */
    O200K(String.join("|",
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
            "\\p{N}{1,3}",
            " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
            "\\s*[\\r\\n]+",
            "\\s+(?!\\S)",
            "\\s+"));

    private final Pattern pattern;

    PreTokenizer(String regex) {
        this.pattern = Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
    }

    public Pattern pattern() {
        return pattern;
    }

    /** The name used in tokenizer files: {@code gpt2}, {@code cl100k}, {@code o200k}. */
    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static PreTokenizer byId(String id) {
        for (PreTokenizer p : values()) {
            if (p.id().equals(id)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown pre-tokenizer pattern '" + id + "' (known: gpt2, cl100k, o200k)");
    }

    @FunctionalInterface
    public interface ChunkConsumer {
        void accept(String text, int start, int end);
    }

    /** Calls {@code consumer} for every chunk of {@code text}, in order; the chunks cover the text. */
    public void split(String text, ChunkConsumer consumer) {
        switch (this) {
            case GPT2 -> ChunkScanner.splitGpt2(text, consumer);
            case CL100K -> ChunkScanner.splitCl100k(text, consumer);
            default -> splitWithRegex(text, consumer);
        }
    }

    /** The same split through the regex engine: the reference the scanners are tested against. */
    void splitWithRegex(String text, ChunkConsumer consumer) {
        Matcher m = pattern.matcher(text);
        int last = 0;
        while (m.find()) {
            // The patterns match every character (the last alternatives take any whitespace and the
            // others any non-space), so there are no gaps; guard anyway so no byte can be lost.
            if (m.start() > last) {
                consumer.accept(text, last, m.start());
            }
            consumer.accept(text, m.start(), m.end());
            last = m.end();
        }
        if (last < text.length()) {
            consumer.accept(text, last, text.length());
        }
    }
}
