package io.flywheel.trainer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Turns the train split into windows of {@code context + 1} tokens. Documents are laid end to end,
 * each followed by {@code <|endoftext|>}, and the stream starts with one {@code <|endoftext|>} (as if
 * a document had just ended). Consecutive windows overlap by one token: the last token of a window
 * is the first input of the next, so every token of every document, and each document's closing
 * {@code <|endoftext|>}, is a training target exactly once.
 *
 * <p>The packer also knows where each pending token came from ({@link Segment}), so that a window can
 * name the record slices it trains on, and so that the tokens not yet trained can be saved in a
 * checkpoint beside the consumer offsets: offsets plus the pending tokens are the exact position in
 * the stream.
 */
final class Packer {

    /**
     * Tokens {@code [from, to)} of the record at {@code offset} in {@code partition}; index
     * {@code length} is the document's closing {@code <|endoftext|>}.
     */
    record Segment(int partition, long offset, int from, int to) {
        int length() {
            return to - from;
        }
    }

    /** A training window and the record slices its targets (positions 1..context) come from. */
    record Window(int[] tokens, List<Segment> sources) {}

    /** What a checkpoint stores: the pending tokens (the first is the carried-over input) and their sources. */
    record Snapshot(int[] tokens, List<Segment> segments) {}

    private final int context;
    private final int endOfText;
    private int[] buffer;
    private int head;        // buffer[head] is the carried-over token: already a target, or the start marker
    private int end;
    private final ArrayDeque<Segment> segments = new ArrayDeque<>();   // cover buffer[head + 1, end) in order

    Packer(int context, int endOfText) {
        this.context = context;
        this.endOfText = endOfText;
        this.buffer = new int[Math.max(16, 2 * (context + 1))];
        this.buffer[0] = endOfText;
        this.end = 1;
    }

    static Packer restore(int context, int endOfText, Snapshot snapshot) {
        Packer p = new Packer(context, endOfText);
        int[] tokens = snapshot.tokens();
        int covered = snapshot.segments().stream().mapToInt(Segment::length).sum();
        if (tokens.length < 1 || covered != tokens.length - 1) {
            throw new IllegalArgumentException("packer snapshot: " + tokens.length + " tokens, segments cover " + covered);
        }
        p.buffer = Arrays.copyOf(tokens, Math.max(p.buffer.length, tokens.length));
        p.end = tokens.length;
        p.segments.addAll(snapshot.segments());
        return p;
    }

    /** Appends a document (and its closing {@code <|endoftext|>}). */
    void add(int partition, long offset, int[] ids) {
        ensureRoom(ids.length + 1);
        System.arraycopy(ids, 0, buffer, end, ids.length);
        buffer[end + ids.length] = endOfText;
        end += ids.length + 1;
        segments.addLast(new Segment(partition, offset, 0, ids.length + 1));
    }

    /** Whole windows that can be cut now. */
    int windowsReady() {
        return (end - head - 1) / context;
    }

    /** Tokens waiting to be trained. */
    int pendingTokens() {
        return end - head - 1;
    }

    /** Cuts the next window; {@link #windowsReady()} must be positive. */
    Window cut() {
        if (windowsReady() < 1) {
            throw new IllegalStateException("not enough tokens for a window");
        }
        int[] tokens = Arrays.copyOfRange(buffer, head, head + context + 1);
        List<Segment> sources = new ArrayList<>();
        int needed = context;
        while (needed > 0) {
            Segment s = segments.removeFirst();
            int take = Math.min(needed, s.length());
            sources.add(new Segment(s.partition(), s.offset(), s.from(), s.from() + take));
            if (take < s.length()) {
                segments.addFirst(new Segment(s.partition(), s.offset(), s.from() + take, s.to()));
            }
            needed -= take;
        }
        head += context;
        return new Window(tokens, sources);
    }

    Snapshot snapshot() {
        return new Snapshot(Arrays.copyOfRange(buffer, head, end), List.copyOf(segments));
    }

    private void ensureRoom(int extra) {
        if (end + extra <= buffer.length) {
            return;
        }
        int live = end - head;
        int[] target = live + extra <= buffer.length / 2 ? buffer : new int[Math.max(2 * buffer.length, live + extra)];
        System.arraycopy(buffer, head, target, 0, live);
        buffer = target;
        head = 0;
        end = live;
    }
}
