package io.flywheel.tokenizerstream;

import io.flywheel.core.serde.Binary;
import io.flywheel.core.serde.Codec;
import io.flywheel.core.serde.RecordFormatException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A cleaned, tokenized document on its way to deduplication, through the internal repartition
 * topic keyed by {@link #contentHash}. It carries the raw original so that a duplicate can still
 * be rejected with the record exactly as it arrived.
 *
 * @param id          document id (the output key)
 * @param contentHash SHA-256 of the cleaned text's UTF-8 bytes: the exact-dedup key
 * @param signature   MinHash signature of the cleaned text: the near-dedup key
 * @param tokens      the cleaned text's token ids
 * @param original    the raw record value
 */
record Candidate(String id, byte[] contentHash, int[] signature, int[] tokens, byte[] original) {

    private static final int VERSION = 1;

    static final Codec<Candidate> CODEC = new Codec<>() {
        @Override
        public byte[] encode(Candidate c) {
            byte[] id = c.id.getBytes(StandardCharsets.UTF_8);
            ByteBuffer signature = ByteBuffer.allocate(4 * c.signature.length);
            signature.asIntBuffer().put(c.signature);
            return new Binary.Writer(64 + id.length + signature.capacity() + 2 * c.tokens.length + c.original.length)
                    .writeByte(VERSION)
                    .writeVarint(id.length).writeBytes(id)
                    .writeBytes(c.contentHash)
                    .writeVarint(c.signature.length).writeBytes(signature.array())
                    .writeIds(c.tokens)
                    .writeVarint(c.original.length).writeBytes(c.original)
                    .toByteArray();
        }

        @Override
        public Candidate decode(byte[] bytes) {
            Binary.Reader in = new Binary.Reader(bytes);
            int version = in.readByte("version");
            if (version != VERSION) {
                throw new RecordFormatException("version", "unsupported candidate version " + version);
            }
            String id = new String(in.readBytes("id", in.readVarint("id.length")), StandardCharsets.UTF_8);
            byte[] hash = in.readBytes("content_hash", 32);
            int[] signature = new int[in.readVarint("signature.length")];
            ByteBuffer.wrap(in.readBytes("signature", 4 * signature.length)).asIntBuffer().get(signature);
            int[] tokens = in.readIds("tokens");
            byte[] original = in.readBytes("original", in.readVarint("original.length"));
            in.expectEnd();
            return new Candidate(id, hash, signature, tokens, original);
        }
    };
}
