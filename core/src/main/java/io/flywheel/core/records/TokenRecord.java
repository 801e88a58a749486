package io.flywheel.core.records;

import io.flywheel.core.serde.Binary;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.RecordFormatException;
import java.util.Arrays;
import java.util.Objects;

/**
 * One cleaned document as token ids, on {@code flywheel.tokens}, keyed by document id.
 *
 * <p>Binary layout, version 1: {@code [version=1][tokenizer sha256: 32 bytes][split: 0 train, 1
 * validation][count: varint][ids: varint...]}.
 *
 * @param tokenizerId sha256 (hex) of the tokenizer file that produced the ids
 * @param split       train or validation
 * @param ids         the token ids, in order
 */
public record TokenRecord(String tokenizerId, Split split, int[] ids) {

    public static final int VERSION = 1;

    public TokenRecord {
        Binary.sha256FromHex("tokenizer", tokenizerId);
        Objects.requireNonNull(split, "split");
        Objects.requireNonNull(ids, "ids");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenRecord t && tokenizerId.equals(t.tokenizerId) && split == t.split
                && Arrays.equals(ids, t.ids);
    }

    @Override
    public int hashCode() {
        return Objects.hash(tokenizerId, split, Arrays.hashCode(ids));
    }

    @Override
    public String toString() {
        return "TokenRecord[tokenizer=" + tokenizerId.substring(0, 12) + ", split=" + split + ", tokens=" + ids.length + "]";
    }

    public static final Codec<TokenRecord> CODEC = new Codec<>() {
        @Override
        public byte[] encode(TokenRecord r) {
            return new Binary.Writer(34 + 2 * r.ids.length)
                    .writeByte(VERSION)
                    .writeBytes(Binary.sha256FromHex("tokenizer", r.tokenizerId))
                    .writeByte(r.split.code())
                    .writeIds(r.ids)
                    .toByteArray();
        }

        @Override
        public TokenRecord decode(byte[] bytes) {
            Binary.Reader in = new Binary.Reader(bytes);
            int version = in.readByte("version");
            if (version != VERSION) {
                throw new RecordFormatException("version", "unsupported token record version " + version + " (expected " + VERSION + ")");
            }
            String tokenizer = Binary.sha256ToHex(in.readBytes("tokenizer", 32));
            int code = in.readByte("split");
            Split split = Split.ofCode(code);
            if (split == null) {
                throw new RecordFormatException("split", "unknown split code " + code);
            }
            int[] ids = in.readIds("ids");
            in.expectEnd();
            return new TokenRecord(tokenizer, split, ids);
        }
    };
}
