package io.flywheel.core.serde;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The compact binary layout of token records: a version byte first, then fixed fields, then token
 * id arrays as an unsigned LEB128 length followed by unsigned LEB128 ids. Ids below 128 take one
 * byte, below 16384 two, so an 8k-vocabulary record is about half the size of 32-bit ints.
 */
public final class Binary {

    private Binary() {}

    /**
     * A growable byte array. Not {@link java.io.ByteArrayOutputStream}: its {@code write} is
     * synchronized, one lock per byte, which was a tenth of the tokenizer stream thread's time
     * when every token id of a document went through it.
     */
    public static final class Writer {
        private byte[] buf;
        private int size;

        public Writer(int expectedSize) {
            buf = new byte[Math.max(16, expectedSize)];
        }

        private void room(int more) {
            if (size + more > buf.length) {
                buf = java.util.Arrays.copyOf(buf, Math.max(buf.length * 2, size + more));
            }
        }

        public Writer writeByte(int b) {
            room(1);
            buf[size++] = (byte) b;
            return this;
        }

        public Writer writeBytes(byte[] bytes) {
            room(bytes.length);
            System.arraycopy(bytes, 0, buf, size, bytes.length);
            size += bytes.length;
            return this;
        }

        public Writer writeVarint(int value) {
            if (value < 0) {
                throw new IllegalArgumentException("negative value " + value);
            }
            room(5);
            while ((value & ~0x7F) != 0) {
                buf[size++] = (byte) ((value & 0x7F) | 0x80);
                value >>>= 7;
            }
            buf[size++] = (byte) value;
            return this;
        }

        public Writer writeIds(int[] ids) {
            writeVarint(ids.length);
            room(5 * ids.length);
            for (int id : ids) {
                writeVarint(id);
            }
            return this;
        }

        /** The bytes written: the buffer itself when it is exactly full, else a copy. */
        public byte[] toByteArray() {
            return size == buf.length ? buf : java.util.Arrays.copyOf(buf, size);
        }
    }

    public static final class Reader {
        private final byte[] bytes;
        private int pos;

        public Reader(byte[] bytes) {
            this.bytes = bytes;
        }

        public int readByte(String field) {
            if (pos >= bytes.length) {
                throw new RecordFormatException(field, "truncated: record ends at byte " + pos);
            }
            return bytes[pos++] & 0xFF;
        }

        public byte[] readBytes(String field, int n) {
            if (bytes.length - pos < n) {
                throw new RecordFormatException(field, "truncated: needs " + n + " bytes, " + (bytes.length - pos) + " left");
            }
            byte[] out = java.util.Arrays.copyOfRange(bytes, pos, pos + n);
            pos += n;
            return out;
        }

        public int readVarint(String field) {
            int value = 0;
            for (int shift = 0; shift < 35; shift += 7) {
                int b = readByte(field);
                if (shift == 28 && (b & 0xF8) != 0) {
                    throw new RecordFormatException(field, "varint larger than 2^31-1 at byte " + (pos - 1));
                }
                value |= (b & 0x7F) << shift;
                if ((b & 0x80) == 0) {
                    return value;
                }
            }
            throw new RecordFormatException(field, "varint longer than 5 bytes at byte " + pos);
        }

        public int[] readIds(String field) {
            int n = readVarint(field + ".length");
            // Every id takes at least one byte: a length beyond what is left is corrupt, and must not
            // make us allocate gigabytes.
            if (n > bytes.length - pos) {
                throw new RecordFormatException(field, "length " + n + " exceeds the " + (bytes.length - pos) + " bytes left");
            }
            int[] ids = new int[n];
            for (int i = 0; i < n; i++) {
                ids[i] = readVarint(field + "[" + i + "]");
            }
            return ids;
        }

        public void expectEnd() {
            if (pos != bytes.length) {
                throw new RecordFormatException("record", (bytes.length - pos) + " unexpected trailing bytes");
            }
        }
    }

    /** A sha256 in hex, checked for shape. */
    public static byte[] sha256FromHex(String field, String hex) {
        if (hex == null || hex.length() != 64) {
            throw new RecordFormatException(field, "must be a sha256 of 64 hex digits");
        }
        try {
            return HexFormat.of().parseHex(hex);
        } catch (IllegalArgumentException e) {
            throw new RecordFormatException(field, "must be a sha256 of 64 hex digits", e);
        }
    }

    public static String sha256ToHex(byte[] sha) {
        return HexFormat.of().formatHex(sha);
    }

    /** SHA-256 of the bytes. */
    public static byte[] sha256(byte[] bytes) {
        return sha256Digest().digest(bytes);
    }

    /** A fresh SHA-256 digest, for hashing streams. */
    public static MessageDigest sha256Digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
