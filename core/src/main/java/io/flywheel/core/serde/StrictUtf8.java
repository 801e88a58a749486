package io.flywheel.core.serde;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** UTF-8 decoding that refuses invalid bytes instead of replacing them. */
public final class StrictUtf8 {

    private StrictUtf8() {}

    /** The text if the bytes are valid UTF-8, else {@code null}. */
    public static String decodeOrNull(byte[] bytes) {
        try {
            return decoder().decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /** 1-based offset of the first byte that is not UTF-8 (where a strict decoder stops). */
    public static int firstInvalidByte(byte[] bytes) {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        decoder().decode(in, CharBuffer.allocate(bytes.length), true);
        return in.position() + 1;
    }

    private static CharsetDecoder decoder() {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
    }
}
