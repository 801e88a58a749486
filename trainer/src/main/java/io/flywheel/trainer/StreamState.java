package io.flywheel.trainer;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The trainer's position in the stream beyond the consumer offsets, saved in each checkpoint as
 * {@code stream.bin}: the tokens read but not yet trained (with their sources), the evaluation set,
 * the rehearsal sample, and counters. With the offsets in the manifest it is everything needed to
 * resume without training a token twice or skipping one.
 *
 * <p>Layout (big-endian): magic {@code FWST}, version 1, then the packer (token count, tokens,
 * segment count, segments as partition:int offset:long from:int to:int), the evaluation set
 * (revision:long, document count, each as length + tokens), the rehearsal sample (seen:long, window
 * count, each as length + tokens), and tokens trained (long). Version 2 adds preference learning:
 * pending examples, the replay sample (seen:long, list), the held-out pairs (revision:long, list)
 * and examples trained (long), each example packed as {@link PreferenceLearner.Example#pack()}.
 * Version 1 files are read with no preference state.
 */
record StreamState(Packer.Snapshot pending, List<int[]> evaluation, long evaluationRevision,
                   List<int[]> rehearsal, long rehearsalSeen, long tokensTrained,
                   PreferenceLearner.PreferenceSnapshot preferences) {

    static final String FILE = "stream.bin";
    private static final int MAGIC = 0x46575354;   // "FWST"
    private static final int VERSION = 2;

    void write(OutputStream target) throws IOException {
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(target, 1 << 16));
        out.writeInt(MAGIC);
        out.writeInt(VERSION);
        writeIds(out, pending.tokens());
        out.writeInt(pending.segments().size());
        for (Packer.Segment s : pending.segments()) {
            out.writeInt(s.partition());
            out.writeLong(s.offset());
            out.writeInt(s.from());
            out.writeInt(s.to());
        }
        out.writeLong(evaluationRevision);
        writeList(out, evaluation);
        out.writeLong(rehearsalSeen);
        writeList(out, rehearsal);
        out.writeLong(tokensTrained);
        writeList(out, preferences.pending());
        out.writeLong(preferences.replaySeen());
        writeList(out, preferences.replay());
        out.writeLong(preferences.heldOutRevision());
        writeList(out, preferences.heldOut());
        out.writeLong(preferences.examplesTrained());
        out.flush();
    }

    static StreamState read(Path file) throws IOException {
        try (InputStream raw = Files.newInputStream(file);
             DataInputStream in = new DataInputStream(new BufferedInputStream(raw, 1 << 16))) {
            if (in.readInt() != MAGIC) {
                throw new IOException(file + " is not a trainer stream state");
            }
            int version = in.readInt();
            if (version != 1 && version != VERSION) {
                throw new IOException(file + ": unsupported stream state version " + version);
            }
            int[] tokens = readIds(in);
            int count = in.readInt();
            List<Packer.Segment> segments = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                segments.add(new Packer.Segment(in.readInt(), in.readLong(), in.readInt(), in.readInt()));
            }
            long revision = in.readLong();
            List<int[]> evaluation = readList(in);
            long seen = in.readLong();
            List<int[]> rehearsal = readList(in);
            long trained = in.readLong();
            PreferenceLearner.PreferenceSnapshot preferences = PreferenceLearner.PreferenceSnapshot.EMPTY;
            if (version >= 2) {
                List<int[]> pending = readList(in);
                long replaySeen = in.readLong();
                List<int[]> replay = readList(in);
                long heldOutRevision = in.readLong();
                List<int[]> heldOut = readList(in);
                preferences = new PreferenceLearner.PreferenceSnapshot(pending, replay, replaySeen, heldOut, heldOutRevision, in.readLong());
            }
            if (in.read() != -1) {
                throw new IOException(file + ": unexpected bytes after the stream state");
            }
            return new StreamState(new Packer.Snapshot(tokens, segments), evaluation, revision, rehearsal, seen, trained, preferences);
        }
    }

    private static void writeList(DataOutputStream out, List<int[]> list) throws IOException {
        out.writeInt(list.size());
        for (int[] ids : list) {
            writeIds(out, ids);
        }
    }

    private static List<int[]> readList(DataInputStream in) throws IOException {
        int n = in.readInt();
        List<int[]> list = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            list.add(readIds(in));
        }
        return list;
    }

    private static void writeIds(DataOutputStream out, int[] ids) throws IOException {
        out.writeInt(ids.length);
        for (int id : ids) {
            out.writeInt(id);
        }
    }

    private static int[] readIds(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            throw new IOException("negative length " + n);
        }
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = in.readInt();
        }
        return ids;
    }
}
