package io.flywheel.trainer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The validation split, held back from training: the most recent documents up to a token budget
 * (older ones leave first, so the set follows the stream). Each document keeps its closing
 * {@code <|endoftext|>}. Every change bumps {@link #revision()}, so that a loss measured on an older
 * revision is never compared with one measured on this one.
 */
final class EvaluationSet {

    private final int maxTokens;
    private final int endOfText;
    private final ArrayDeque<int[]> documents = new ArrayDeque<>();
    private int tokens;
    private long revision;

    EvaluationSet(int maxTokens, int endOfText) {
        this.maxTokens = maxTokens;
        this.endOfText = endOfText;
    }

    /** Adds a document, truncated to the budget, evicting the oldest ones to make room. */
    void add(int[] ids) {
        int length = Math.min(ids.length + 1, maxTokens);
        int[] doc = Arrays.copyOf(ids, length);
        doc[length - 1] = endOfText;
        while (tokens + length > maxTokens && !documents.isEmpty()) {
            tokens -= documents.removeFirst().length;
        }
        documents.addLast(doc);
        tokens += length;
        revision++;
    }

    boolean isEmpty() {
        return documents.isEmpty();
    }

    int tokens() {
        return tokens;
    }

    long revision() {
        return revision;
    }

    List<int[]> documents() {
        return List.copyOf(documents);
    }

    /**
     * The set as windows of {@code context + 1} tokens overlapping by one, starting with
     * {@code <|endoftext|>}; the last window may be shorter. Every token is a target exactly once.
     */
    List<int[]> windows(int context) {
        int[] stream = new int[tokens + 1];
        stream[0] = endOfText;
        int at = 1;
        for (int[] doc : documents) {
            System.arraycopy(doc, 0, stream, at, doc.length);
            at += doc.length;
        }
        List<int[]> windows = new ArrayList<>();
        for (int start = 0; start + 1 < stream.length; start += context) {
            windows.add(Arrays.copyOfRange(stream, start, Math.min(stream.length, start + context + 1)));
        }
        return windows;
    }

    static EvaluationSet restore(int maxTokens, int endOfText, List<int[]> documents, long revision) {
        EvaluationSet set = new EvaluationSet(maxTokens, endOfText);
        for (int[] doc : documents) {
            set.documents.addLast(doc);
            set.tokens += doc.length;
        }
        set.revision = revision;
        return set;
    }
}
