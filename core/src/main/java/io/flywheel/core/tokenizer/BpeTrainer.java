package io.flywheel.core.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.function.Consumer;

/**
 * Learns a byte-level BPE vocabulary from a corpus.
 *
 * <ol>
 *   <li>Chunk the corpus with the pre-tokenizer and count each distinct chunk ("word").</li>
 *   <li>Count every adjacent pair of tokens across words, weighted by word count, and remember which
 *       words hold each pair.</li>
 *   <li>Repeatedly take the most frequent pair from a priority queue, make it a token, and rewrite
 *       only the words that hold it, adjusting the counts of the pairs around each rewrite. Queue
 *       entries whose count went stale are re-queued on pop, so nothing is ever recounted from
 *       scratch.</li>
 * </ol>
 *
 * Deterministic: words are processed in byte order and ties go to the smaller (left, right) pair,
 * so the same corpus gives the same file. Vocabulary size counts the 256 bytes, the merges and the
 * special tokens, and is met exactly or training fails.
 */
public final class BpeTrainer {

    /** Special tokens of Flywheel's own tokenizers: end of document and the chat template's role markers. */
    public static final List<String> DEFAULT_SPECIALS =
            List.of("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>");

    private final PreTokenizer pattern;
    private final int vocabSize;
    private final List<String> specials;
    private final Consumer<String> log;

    private final Map<String, long[]> textChunks = new HashMap<>();
    private final Map<ByteKey, long[]> byteChunks = new HashMap<>();
    private long corpusBytes;

    public BpeTrainer(PreTokenizer pattern, int vocabSize, List<String> specials, Consumer<String> log) {
        int minimum = 256 + specials.size();
        if (vocabSize < minimum) {
            throw new IllegalArgumentException("vocabulary size must be at least " + minimum
                    + " (256 bytes + " + specials.size() + " special tokens), was " + vocabSize);
        }
        this.pattern = pattern;
        this.vocabSize = vocabSize;
        this.specials = List.copyOf(specials);
        this.log = log;
    }

    /** Adds one document of the corpus (any bytes; invalid UTF-8 is kept as bytes). */
    public void add(byte[] document) {
        corpusBytes += document.length;
        Utf8.forEachSegment(document,
                text -> pattern.split(text, (s, start, end) ->
                        textChunks.computeIfAbsent(s.substring(start, end), k -> new long[1])[0]++),
                (from, to) -> byteChunks.computeIfAbsent(new ByteKey(Arrays.copyOfRange(document, from, to)), k -> new long[1])[0]++);
    }

    /** Learns the merges and returns the tokenizer file's bytes. */
    public byte[] train() {
        long started = System.nanoTime();
        // Words in byte order, so that nothing depends on hash order.
        Map<ByteKey, Long> chunkCounts = new HashMap<>();
        textChunks.forEach((s, c) -> chunkCounts.merge(new ByteKey(s.getBytes(StandardCharsets.UTF_8)), c[0], Long::sum));
        byteChunks.forEach((k, c) -> chunkCounts.merge(k, c[0], Long::sum));
        ByteKey[] keys = chunkCounts.keySet().toArray(new ByteKey[0]);
        Arrays.sort(keys);
        int[][] words = new int[keys.length][];
        long[] counts = new long[keys.length];
        for (int w = 0; w < keys.length; w++) {
            byte[] b = keys[w].bytes;
            words[w] = new int[b.length];
            for (int i = 0; i < b.length; i++) {
                words[w][i] = b[i] & 0xFF;
            }
            counts[w] = chunkCounts.get(keys[w]);
        }
        log.accept(String.format("%,d bytes, %,d distinct chunks (%.1f s)", corpusBytes, keys.length,
                (System.nanoTime() - started) / 1e9));

        Map<Long, PairStat> pairs = new HashMap<>();
        for (int w = 0; w < words.length; w++) {
            int[] word = words[w];
            for (int i = 0; i + 1 < word.length; i++) {
                PairStat stat = pairs.computeIfAbsent(pair(word[i], word[i + 1]), PairStat::new);
                stat.count += counts[w];
                stat.addWord(w);
            }
        }
        PriorityQueue<Candidate> queue = new PriorityQueue<>();
        pairs.values().forEach(p -> queue.add(new Candidate(p.count, p.key)));

        List<byte[]> tokens = new ArrayList<>();
        Map<ByteKey, Integer> idOf = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(new byte[] {(byte) b});
            idOf.put(new ByteKey(tokens.get(b)), b);
        }
        List<int[]> merges = new ArrayList<>();
        int target = vocabSize - specials.size();
        int[] seen = new int[words.length];
        int step = 0;
        while (tokens.size() < target) {
            Candidate top = queue.poll();
            if (top == null) {
                throw new IllegalArgumentException(String.format(
                        "the corpus supports only %,d tokens (%,d with specials); asked for %,d: give more text or a smaller --vocab-size",
                        tokens.size(), tokens.size() + specials.size(), vocabSize));
            }
            PairStat stat = pairs.get(top.key);
            if (stat.count != top.count) {
                if (stat.count > 0 && stat.count < top.count) {
                    queue.add(new Candidate(stat.count, stat.key));
                }
                continue;
            }
            if (stat.count <= 0) {
                continue;
            }
            step++;
            int a = (int) (top.key >>> 32);
            int b = (int) top.key;
            byte[] joined = concat(tokens.get(a), tokens.get(b));
            // Two different pairs can spell the same bytes ("ab"+"c", "a"+"bc"). The vocabulary keeps
            // one token per byte string (tiktoken's rank semantics), so the second merge reuses it.
            Integer existing = idOf.get(new ByteKey(joined));
            int newId;
            if (existing != null) {
                newId = existing;
            } else {
                newId = tokens.size();
                tokens.add(joined);
                idOf.put(new ByteKey(joined), newId);
                merges.add(new int[] {a, b});
            }
            List<Long> grown = new ArrayList<>();
            int[] holders = stat.words;
            int holderCount = stat.wordCount;
            for (int h = 0; h < holderCount; h++) {
                int w = holders[h];
                if (seen[w] == step) {
                    continue;
                }
                seen[w] = step;
                int[] word = words[w];
                if (!containsPair(word, a, b)) {
                    continue;
                }
                long c = counts[w];
                for (int i = 0; i + 1 < word.length; i++) {
                    pairs.get(pair(word[i], word[i + 1])).count -= c;
                }
                int[] rewritten = new int[word.length];
                int n = 0;
                for (int i = 0; i < word.length; i++) {
                    if (i + 1 < word.length && word[i] == a && word[i + 1] == b) {
                        rewritten[n++] = newId;
                        i++;
                    } else {
                        rewritten[n++] = word[i];
                    }
                }
                rewritten = Arrays.copyOf(rewritten, n);
                words[w] = rewritten;
                for (int i = 0; i + 1 < n; i++) {
                    long key = pair(rewritten[i], rewritten[i + 1]);
                    PairStat p = pairs.computeIfAbsent(key, PairStat::new);
                    p.count += c;
                    if (rewritten[i] == newId || rewritten[i + 1] == newId) {
                        p.addWord(w);
                        grown.add(key);
                    }
                }
            }
            for (long key : grown) {
                PairStat p = pairs.get(key);
                if (p.count > 0) {
                    queue.add(new Candidate(p.count, key));
                }
            }
            if (step % 1000 == 0) {
                log.accept(String.format("%,d merges, vocabulary %,d (%.1f s)", step, tokens.size(),
                        (System.nanoTime() - started) / 1e9));
            }
        }
        Map<String, Integer> specialIds = new java.util.LinkedHashMap<>();
        for (String s : specials) {
            specialIds.put(s, tokens.size() + specialIds.size());
        }
        log.accept(String.format("vocabulary %,d (%,d merges, %,d specials) in %.1f s", vocabSize, merges.size(),
                specials.size(), (System.nanoTime() - started) / 1e9));
        return TokenizerFiles.write(pattern, merges, specialIds);
    }

    private static boolean containsPair(int[] word, int a, int b) {
        for (int i = 0; i + 1 < word.length; i++) {
            if (word[i] == a && word[i + 1] == b) {
                return true;
            }
        }
        return false;
    }

    private static byte[] concat(byte[] x, byte[] y) {
        byte[] out = Arrays.copyOf(x, x.length + y.length);
        System.arraycopy(y, 0, out, x.length, y.length);
        return out;
    }

    /** Count of one pair and the words that hold (or once held) it. */
    private static final class PairStat {
        final long key;
        long count;
        int[] words = new int[2];
        int wordCount;

        PairStat(long key) {
            this.key = key;
        }

        void addWord(int w) {
            if (wordCount > 0 && words[wordCount - 1] == w) {
                return;
            }
            if (wordCount == words.length) {
                words = Arrays.copyOf(words, wordCount * 2);
            }
            words[wordCount++] = w;
        }
    }

    /** Most frequent first; ties to the smaller (left, right) pair. */
    private record Candidate(long count, long key) implements Comparable<Candidate> {
        @Override
        public int compareTo(Candidate o) {
            int c = Long.compare(o.count, count);
            return c != 0 ? c : Long.compare(key, o.key);
        }
    }

    /** Two adjacent ids as one map key: the left in the upper half. */
    private static long pair(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }
}
