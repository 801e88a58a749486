package io.flywheel.core.records;

import io.flywheel.core.serde.Binary;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.RecordFormatException;
import java.util.Arrays;
import java.util.Objects;

/**
 * A training example built from feedback, on {@code flywheel.preferences}, keyed by prompt hash.
 * A {@link Kind#PAIR} holds a chosen and a rejected completion of one prompt; a
 * {@link Kind#SUPERVISED} example holds one liked completion and no rejected one.
 *
 * <p>Binary layout, version 1: {@code [version=1][tokenizer sha256: 32 bytes][kind: 0 pair, 1
 * supervised][prompt ids][chosen ids][rejected ids]}, each id array a varint count then varints.
 */
public record PreferenceRecord(String tokenizerId, Kind kind, int[] promptIds, int[] chosenIds, int[] rejectedIds) {

    public static final int VERSION = 1;

    public enum Kind { PAIR, SUPERVISED }

    public PreferenceRecord {
        Binary.sha256FromHex("tokenizer", tokenizerId);
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(promptIds, "promptIds");
        Objects.requireNonNull(chosenIds, "chosenIds");
        Objects.requireNonNull(rejectedIds, "rejectedIds");
        if (chosenIds.length == 0) {
            throw new RecordFormatException("chosen", "must not be empty");
        }
        if (kind == Kind.PAIR && rejectedIds.length == 0) {
            throw new RecordFormatException("rejected", "must not be empty in a pair");
        }
        if (kind == Kind.SUPERVISED && rejectedIds.length != 0) {
            throw new RecordFormatException("rejected", "must be empty in a supervised example");
        }
    }

    public static PreferenceRecord pair(String tokenizerId, int[] prompt, int[] chosen, int[] rejected) {
        return new PreferenceRecord(tokenizerId, Kind.PAIR, prompt, chosen, rejected);
    }

    public static PreferenceRecord supervised(String tokenizerId, int[] prompt, int[] completion) {
        return new PreferenceRecord(tokenizerId, Kind.SUPERVISED, prompt, completion, new int[0]);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PreferenceRecord p && tokenizerId.equals(p.tokenizerId) && kind == p.kind
                && Arrays.equals(promptIds, p.promptIds) && Arrays.equals(chosenIds, p.chosenIds)
                && Arrays.equals(rejectedIds, p.rejectedIds);
    }

    @Override
    public int hashCode() {
        return Objects.hash(tokenizerId, kind, Arrays.hashCode(promptIds), Arrays.hashCode(chosenIds),
                Arrays.hashCode(rejectedIds));
    }

    @Override
    public String toString() {
        return "PreferenceRecord[" + kind + ", prompt=" + promptIds.length + ", chosen=" + chosenIds.length
                + ", rejected=" + rejectedIds.length + " tokens]";
    }

    public static final Codec<PreferenceRecord> CODEC = new Codec<>() {
        @Override
        public byte[] encode(PreferenceRecord r) {
            return new Binary.Writer(40 + 2 * (r.promptIds.length + r.chosenIds.length + r.rejectedIds.length))
                    .writeByte(VERSION)
                    .writeBytes(Binary.sha256FromHex("tokenizer", r.tokenizerId))
                    .writeByte(r.kind.ordinal())
                    .writeIds(r.promptIds)
                    .writeIds(r.chosenIds)
                    .writeIds(r.rejectedIds)
                    .toByteArray();
        }

        @Override
        public PreferenceRecord decode(byte[] bytes) {
            Binary.Reader in = new Binary.Reader(bytes);
            int version = in.readByte("version");
            if (version != VERSION) {
                throw new RecordFormatException("version", "unsupported preference record version " + version + " (expected " + VERSION + ")");
            }
            String tokenizer = Binary.sha256ToHex(in.readBytes("tokenizer", 32));
            int kind = in.readByte("kind");
            if (kind >= Kind.values().length) {
                throw new RecordFormatException("kind", "unknown kind code " + kind);
            }
            int[] prompt = in.readIds("prompt");
            int[] chosen = in.readIds("chosen");
            int[] rejected = in.readIds("rejected");
            in.expectEnd();
            return new PreferenceRecord(tokenizer, Kind.values()[kind], prompt, chosen, rejected);
        }
    };
}
