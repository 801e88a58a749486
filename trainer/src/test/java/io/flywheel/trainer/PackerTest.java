package io.flywheel.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PackerTest {

    private static final int EOT = 999;

    /** Random documents of 0..40 tokens, as (partition, offset, ids). */
    private static List<int[]> documents(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<int[]> docs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] ids = new int[r.nextInt(41)];
            for (int k = 0; k < ids.length; k++) {
                ids[k] = r.nextInt(500);
            }
            docs.add(ids);
        }
        return docs;
    }

    @Test
    void everyTokenAndEveryEndOfTextIsATargetExactlyOnceInOrder() {
        int context = 16;
        List<int[]> docs = documents(200, 1);
        Packer packer = new Packer(context, EOT);
        List<Integer> expected = new ArrayList<>();
        List<Integer> targets = new ArrayList<>();
        Map<Long, Integer> nextIndex = new HashMap<>();
        for (int i = 0; i < docs.size(); i++) {
            packer.add(i % 3, i, docs.get(i));
            for (int id : docs.get(i)) {
                expected.add(id);
            }
            expected.add(EOT);
            while (packer.windowsReady() > 0) {
                Packer.Window w = packer.cut();
                assertEquals(context + 1, w.tokens().length);
                for (int t = 1; t <= context; t++) {
                    targets.add(w.tokens()[t]);
                }
                assertEquals(context, w.sources().stream().mapToInt(Packer.Segment::length).sum());
                for (Packer.Segment s : w.sources()) {
                    int from = nextIndex.getOrDefault(s.offset(), 0);
                    assertEquals(from, s.from(), "record " + s.offset() + " continues where it stopped");
                    assertEquals(s.offset() % 3, s.partition());
                    nextIndex.put(s.offset(), s.to());
                }
            }
        }
        int pending = packer.pendingTokens();
        assertEquals(expected.subList(0, expected.size() - pending), targets);
        // What was not trained is exactly what the snapshot holds: every record is covered to its end.
        for (Packer.Segment s : packer.snapshot().segments()) {
            assertEquals(nextIndex.getOrDefault(s.offset(), 0), s.from(), "pending part of record " + s.offset());
            nextIndex.put(s.offset(), s.to());
        }
        for (int i = 0; i < docs.size(); i++) {
            assertEquals(docs.get(i).length + 1, nextIndex.get((long) i), "record " + i + " covered to its end");
        }
    }

    @Test
    void aRestoredPackerCutsTheSameWindowsAsTheOriginal() throws Exception {
        int context = 8;
        List<int[]> docs = documents(60, 2);
        Packer original = new Packer(context, EOT);
        for (int i = 0; i < 30; i++) {
            original.add(0, i, docs.get(i));
        }
        for (int i = 0; i < 5; i++) {
            original.cut();
        }
        Packer restored = Packer.restore(context, EOT, original.snapshot());
        for (int i = 30; i < 60; i++) {
            original.add(1, i, docs.get(i));
            restored.add(1, i, docs.get(i));
        }
        assertEquals(original.windowsReady(), restored.windowsReady());
        while (original.windowsReady() > 0) {
            Packer.Window a = original.cut();
            Packer.Window b = restored.cut();
            assertArrayEquals(a.tokens(), b.tokens());
            assertEquals(a.sources(), b.sources());
        }
        assertArrayEquals(original.snapshot().tokens(), restored.snapshot().tokens());
    }

    @Test
    void cuttingWithoutAFullWindowFails() {
        Packer packer = new Packer(8, EOT);
        packer.add(0, 0, new int[] {1, 2, 3});
        assertEquals(0, packer.windowsReady());
        assertThrows(IllegalStateException.class, packer::cut);
    }

    @Test
    void evaluationSetKeepsTheNewestDocumentsWithinItsBudgetAndEveryTokenIsScoredOnce() {
        EvaluationSet set = new EvaluationSet(50, EOT);
        for (int i = 0; i < 10; i++) {
            set.add(new int[] {i, i, i, i, i, i, i, i, i});   // 10 tokens with the end of text
        }
        assertEquals(50, set.tokens());
        assertEquals(10, set.revision());
        assertEquals(5, set.documents().size());
        assertEquals(5, set.documents().get(0)[0], "the oldest documents left first");
        List<int[]> windows = set.windows(16);
        assertEquals(50, windows.stream().mapToInt(w -> w.length - 1).sum());
        assertEquals(EOT, windows.get(0)[0]);
        set.add(new int[200]);
        assertEquals(50, set.tokens(), "a document longer than the budget is truncated to it");
    }

    @Test
    void reservoirHoldsAUniformSample() {
        int trials = 2000;
        int[] hits = new int[100];
        for (int t = 0; t < trials; t++) {
            Rehearsal r = new Rehearsal(10);
            SplittableRandom random = new SplittableRandom(t);
            for (int i = 0; i < 100; i++) {
                r.offer(new int[] {i}, random);
            }
            assertEquals(10, r.size());
            for (int[] w : r.windows()) {
                hits[w[0]]++;
            }
        }
        // Each of the 100 windows is kept with probability 0.1: 200 expected hits, sd ~13.
        for (int i = 0; i < 100; i++) {
            assertEquals(200, hits[i], 70, "window " + i);
        }
    }

    @Test
    void streamStateRoundTrips(@TempDir Path dir) throws Exception {
        Packer packer = new Packer(8, EOT);
        packer.add(2, 40, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
        packer.cut();
        StreamState state = new StreamState(packer.snapshot(), List.of(new int[] {5, EOT}, new int[] {6, 7, EOT}), 7,
                List.of(new int[] {1, 2, 3}), 12, 99, new PreferenceLearner.PreferenceSnapshot(
                        List.of(new PreferenceLearner.Example(new int[] {1}, new int[] {2, 3}, new int[] {4}).pack()),
                        List.of(), 5, List.of(new int[] {1, 1, 0, 7, 8}), 3, 11));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        state.write(out);
        Path file = dir.resolve(StreamState.FILE);
        Files.write(file, out.toByteArray());
        StreamState back = StreamState.read(file);
        assertArrayEquals(state.pending().tokens(), back.pending().tokens());
        assertEquals(state.pending().segments(), back.pending().segments());
        assertEquals(List.of(new Packer.Segment(2, 40, 8, 12)), back.pending().segments());
        assertEquals(2, back.evaluation().size());
        assertArrayEquals(new int[] {6, 7, EOT}, back.evaluation().get(1));
        assertEquals(7, back.evaluationRevision());
        assertEquals(12, back.rehearsalSeen());
        assertEquals(99, back.tokensTrained());
        assertArrayEquals(new int[] {2, 3}, PreferenceLearner.Example.unpack(back.preferences().pending().get(0)).chosen());
        assertEquals(5, back.preferences().replaySeen());
        assertArrayEquals(new int[] {1, 1, 0, 7, 8}, back.preferences().heldOut().get(0));
        assertEquals(3, back.preferences().heldOutRevision());
        assertEquals(11, back.preferences().examplesTrained());
        byte[] truncated = java.util.Arrays.copyOf(out.toByteArray(), out.size() - 3);
        Files.write(file, truncated);
        assertThrows(java.io.IOException.class, () -> StreamState.read(file));
    }
}
