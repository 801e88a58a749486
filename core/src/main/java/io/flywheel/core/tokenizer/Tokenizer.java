package io.flywheel.core.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A byte-level BPE tokenizer with tiktoken semantics: text is split into chunks by a
 * {@link PreTokenizer}; within a chunk, starting from single bytes, the adjacent pair whose
 * concatenation has the lowest rank is merged until no adjacent pair forms a token. A token's rank
 * is its id. Special tokens ({@code <|endoftext|>}, chat role markers) are never produced from
 * ordinary text: {@link #encode(String)} treats their spelling as plain text, and only
 * {@link #encodeWithSpecials(String)} or {@link #specialId(String)} yield them.
 *
 * <p>Any byte sequence round-trips: {@code decodeBytes(encode(bytes))} equals {@code bytes}, also
 * for invalid UTF-8, because every byte is a token and chunks cover the input.
 *
 * <p>Instances are immutable and thread-safe. A small direct-mapped cache of recent chunks makes
 * repeated words cost one hash probe; entries are immutable, so racing threads at worst recompute.
 */
public final class Tokenizer {

    private static final int NO_MERGE = MergeTable.NONE;
    /** Chunks up to this many bytes use the quadratic scan; longer ones a heap (linear-log). */
    private static final int SMALL_CHUNK = 64;
    private static final int CACHE_SIZE = 1 << 15;
    private static final int CACHE_MAX_CHARS = 24;

    private final String name;
    private final String id;
    private final PreTokenizer preTokenizer;
    private final byte[][] tokenBytes;
    private final int ordinaryCount;
    private final Map<String, Integer> specials;
    private final int[] byteToId = new int[256];
    private final MergeTable merges;
    private final Map<ByteKey, Integer> wholeTokens;
    private final CacheEntry[] cache = new CacheEntry[CACHE_SIZE];

    private record CacheEntry(String chunk, int[] ids) {}

    /**
     * @param name          human-readable name ({@code cl100k_base}, or the file name)
     * @param id            sha256 of the file the tokenizer was read from
     * @param preTokenizer  the chunking pattern
     * @param ordinary      token bytes by id; every single byte must be present
     * @param specials      special token spellings and their ids, all at or above {@code ordinary.length}
     */
    Tokenizer(String name, String id, PreTokenizer preTokenizer, byte[][] ordinary, Map<String, Integer> specials) {
        this.name = name;
        this.id = id;
        this.preTokenizer = preTokenizer;
        this.ordinaryCount = ordinary.length;
        this.specials = Collections.unmodifiableMap(new LinkedHashMap<>(specials));
        int size = ordinary.length;
        for (int special : specials.values()) {
            if (special < ordinary.length) {
                throw new IllegalArgumentException("special token id " + special + " collides with an ordinary token");
            }
            size = Math.max(size, special + 1);
        }
        this.tokenBytes = Arrays.copyOf(ordinary, size);
        specials.forEach((text, sid) -> tokenBytes[sid] = text.getBytes(StandardCharsets.UTF_8));

        wholeTokens = new HashMap<>(ordinary.length * 2);
        Arrays.fill(byteToId, -1);
        for (int t = 0; t < ordinary.length; t++) {
            byte[] bytes = ordinary[t];
            if (bytes == null) {
                continue;
            }
            if (wholeTokens.put(new ByteKey(bytes), t) != null) {
                throw new IllegalArgumentException("two tokens have the same bytes (id " + t + ")");
            }
            if (bytes.length == 1) {
                byteToId[bytes[0] & 0xFF] = t;
            }
        }
        for (int b = 0; b < 256; b++) {
            if (byteToId[b] < 0) {
                throw new IllegalArgumentException("byte " + b + " has no token: not a byte-level vocabulary");
            }
        }
        // Every way to split a token into two tokens is a merge that yields it. This is exactly
        // "merge the pair whose concatenation has the lowest rank", with int lookups only.
        IntList lefts = new IntList(ordinary.length * 2);
        IntList rights = new IntList(ordinary.length * 2);
        IntList merged = new IntList(ordinary.length * 2);
        for (int t = 0; t < ordinary.length; t++) {
            byte[] bytes = ordinary[t];
            if (bytes == null || bytes.length < 2) {
                continue;
            }
            for (int k = 1; k < bytes.length; k++) {
                Integer left = wholeTokens.get(new ByteKey(Arrays.copyOfRange(bytes, 0, k)));
                Integer right = left == null ? null : wholeTokens.get(new ByteKey(Arrays.copyOfRange(bytes, k, bytes.length)));
                if (right != null) {
                    lefts.add(left);
                    rights.add(right);
                    merged.add(t);
                }
            }
        }
        merges = new MergeTable(lefts.toArray(), rights.toArray(), merged.toArray(), merged.size());
    }

    public String name() {
        return name;
    }

    /** The sha256 (hex) of the tokenizer file: what token records carry. */
    public String id() {
        return id;
    }

    public PreTokenizer preTokenizer() {
        return preTokenizer;
    }

    /** Number of ids, ordinary and special: the model's vocabulary size. */
    public int vocabSize() {
        return tokenBytes.length;
    }

    /** Number of ordinary (byte-sequence) tokens; special ids start at or after it. */
    public int ordinaryCount() {
        return ordinaryCount;
    }

    public Map<String, Integer> specialTokens() {
        return specials;
    }

    /** The id of a special token such as {@code <|endoftext|>}. */
    public int specialId(String spelling) {
        Integer sid = specials.get(spelling);
        if (sid == null) {
            throw new IllegalArgumentException("tokenizer " + name + " has no special token " + spelling);
        }
        return sid;
    }

    public boolean isSpecial(int tokenId) {
        return tokenId >= ordinaryCount && tokenId < tokenBytes.length && tokenBytes[tokenId] != null;
    }

    /** The bytes of one token (a copy). */
    public byte[] tokenBytes(int tokenId) {
        return checkedBytes(tokenId).clone();
    }

    // ---------------------------------------------------------------- encoding

    /** Encodes ordinary text: special-token spellings in it are plain text. */
    public int[] encode(String text) {
        IntList out = new IntList(text.length() / 3 + 8);
        encodeInto(text, out);
        return out.toArray();
    }

    /** Encodes text in which special-token spellings become their special ids. */
    public int[] encodeWithSpecials(String text) {
        IntList out = new IntList(text.length() / 3 + 8);
        int from = 0;
        while (from < text.length()) {
            int next = -1;
            String found = null;
            for (String special : specials.keySet()) {
                int at = text.indexOf(special, from);
                if (at >= 0 && (next < 0 || at < next)) {
                    next = at;
                    found = special;
                }
            }
            if (found == null) {
                encodeInto(text.substring(from), out);
                break;
            }
            encodeInto(text.substring(from, next), out);
            out.add(specials.get(found));
            from = next + found.length();
        }
        return out.toArray();
    }

    /**
     * Encodes any bytes. Runs of valid UTF-8 are chunked like text; bytes that are not valid UTF-8
     * form chunks of their own, so they survive the round trip exactly.
     */
    public int[] encode(byte[] data) {
        IntList out = new IntList(data.length / 3 + 8);
        Utf8.forEachSegment(data, text -> encodeInto(text, out),
                (from, to) -> encodeChunk(Arrays.copyOfRange(data, from, to), out));
        return out.toArray();
    }

    private void encodeInto(String text, IntList out) {
        preTokenizer.split(text, (s, start, end) -> encodeChunk(s, start, end, out));
    }

    private void encodeChunk(String s, int start, int end, IntList out) {
        int len = end - start;
        if (len == 1 && s.charAt(start) < 0x80) {
            out.add(byteToId[s.charAt(start)]);
            return;
        }
        if (len > CACHE_MAX_CHARS) {
            encodeChunk(s.substring(start, end).getBytes(StandardCharsets.UTF_8), out);
            return;
        }
        int h = 0;
        for (int i = start; i < end; i++) {
            h = 31 * h + s.charAt(i);
        }
        int slot = (h ^ (h >>> 15)) & (CACHE_SIZE - 1);
        CacheEntry entry = cache[slot];
        if (entry != null && entry.chunk.length() == len && s.regionMatches(start, entry.chunk, 0, len)) {
            out.addAll(entry.ids);
            return;
        }
        String chunk = s.substring(start, end);
        int before = out.size();
        encodeChunk(chunk.getBytes(StandardCharsets.UTF_8), out);
        cache[slot] = new CacheEntry(chunk, out.copyFrom(before));
    }

    /** BPE over the bytes of one chunk, appending the ids to {@code out}. */
    private void encodeChunk(byte[] bytes, IntList out) {
        if (bytes.length == 1) {
            out.add(byteToId[bytes[0] & 0xFF]);
            return;
        }
        Integer whole = wholeTokens.get(new ByteKey(bytes));
        if (whole != null) {
            out.add(whole);
        } else if (bytes.length <= SMALL_CHUNK) {
            mergeSmall(bytes, out);
        } else {
            mergeLarge(bytes, out);
        }
    }

    private int mergeOf(int left, int right) {
        return merges.get(left, right);
    }

    /** Quadratic but allocation-light: the right choice for the short chunks of natural text. */
    private void mergeSmall(byte[] bytes, IntList out) {
        int n = bytes.length;
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = byteToId[bytes[i] & 0xFF];
        }
        int[] rank = new int[n];
        for (int i = 0; i + 1 < n; i++) {
            rank[i] = mergeOf(ids[i], ids[i + 1]);
        }
        while (n > 1) {
            int best = NO_MERGE;
            int at = -1;
            for (int i = 0; i + 1 < n; i++) {
                if (rank[i] < best) {
                    best = rank[i];
                    at = i;
                }
            }
            if (at < 0) {
                break;
            }
            ids[at] = best;
            System.arraycopy(ids, at + 2, ids, at + 1, n - at - 2);
            System.arraycopy(rank, at + 2, rank, at + 1, n - at - 2);
            n--;
            if (at > 0) {
                rank[at - 1] = mergeOf(ids[at - 1], ids[at]);
            }
            rank[at] = at + 1 < n ? mergeOf(ids[at], ids[at + 1]) : NO_MERGE;
        }
        for (int i = 0; i < n; i++) {
            out.add(ids[i]);
        }
    }

    /**
     * The same merge order for long chunks (a megabyte of punctuation must not take hours): a
     * linked list of parts and a heap of candidate merges ordered by (rank, position), so ties go
     * to the leftmost pair as in the scan. Stale heap entries are skipped on pop.
     */
    private void mergeLarge(byte[] bytes, IntList out) {
        int n = bytes.length;
        int[] ids = new int[n];
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = byteToId[bytes[i] & 0xFF];
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            int r = mergeOf(ids[i], ids[i + 1]);
            if (r != NO_MERGE) {
                heap.push(((long) r << 32) | i);
            }
        }
        boolean[] gone = new boolean[n];
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int r = (int) (top >>> 32);
            int i = (int) top;
            int j = next[i];
            if (gone[i] || j < 0 || mergeOf(ids[i], ids[j]) != r) {
                continue;
            }
            ids[i] = r;
            gone[j] = true;
            next[i] = next[j];
            if (next[j] >= 0) {
                prev[next[j]] = i;
            }
            if (prev[i] >= 0) {
                int p = prev[i];
                int pr = mergeOf(ids[p], ids[i]);
                if (pr != NO_MERGE) {
                    heap.push(((long) pr << 32) | p);
                }
            }
            if (next[i] >= 0) {
                int nr = mergeOf(ids[i], ids[next[i]]);
                if (nr != NO_MERGE) {
                    heap.push(((long) nr << 32) | i);
                }
            }
        }
        for (int i = 0; i >= 0; i = next[i]) {
            out.add(ids[i]);
        }
    }

    // ---------------------------------------------------------------- decoding

    /** The exact bytes the ids stand for. */
    public byte[] decodeBytes(int[] ids) {
        int total = 0;
        for (int t : ids) {
            total += checkedBytes(t).length;
        }
        byte[] out = new byte[total];
        int pos = 0;
        for (int t : ids) {
            byte[] b = tokenBytes[t];
            System.arraycopy(b, 0, out, pos, b.length);
            pos += b.length;
        }
        return out;
    }

    /** The text the ids stand for; invalid UTF-8 (a token split mid-character) becomes U+FFFD. */
    public String decode(int[] ids) {
        return new String(decodeBytes(ids), StandardCharsets.UTF_8);
    }

    private byte[] checkedBytes(int tokenId) {
        if (tokenId < 0 || tokenId >= tokenBytes.length || tokenBytes[tokenId] == null) {
            throw new IllegalArgumentException("token id " + tokenId + " is not in the vocabulary of " + name
                    + " (ids 0.." + (tokenBytes.length - 1) + ")");
        }
        return tokenBytes[tokenId];
    }

    @Override
    public String toString() {
        return "Tokenizer[" + name + ", vocab=" + vocabSize() + ", id=" + id.substring(0, 12) + "]";
    }
}
