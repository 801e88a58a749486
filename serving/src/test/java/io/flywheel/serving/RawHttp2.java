package io.flywheel.serving;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;

/**
 * An HTTP/2 client over a raw socket, cleartext with prior knowledge (RFC 9113 §3.3), that writes
 * frames exactly as a test asks: a request's headers and as much of its body as the flow-control
 * window allows, in one write, before the server has said anything. It keeps the connection-level
 * window the server grants, which is what a JDK or browser client would wait on. Headers are sent
 * as HPACK literals without indexing, so no dynamic table is involved; received headers are not
 * decoded.
 */
final class RawHttp2 implements AutoCloseable {

    static final int DATA = 0x0;
    static final int HEADERS = 0x1;
    static final int RST_STREAM = 0x3;
    static final int SETTINGS = 0x4;
    static final int PING = 0x6;
    static final int GOAWAY = 0x7;
    static final int WINDOW_UPDATE = 0x8;
    private static final int END_STREAM = 0x1;
    private static final int ACK = 0x1;
    private static final int END_HEADERS = 0x4;
    /** Every HTTP/2 connection starts with this window and frame size (RFC 9113 §6.5.2, §6.9.2). */
    static final int INITIAL_WINDOW = 65_535;
    static final int MAX_FRAME = 16_384;

    record Frame(int type, int flags, int stream, byte[] payload) {
        /** A HEADERS frame's header block: its payload without padding and priority (RFC 9113 §6.2). */
        byte[] headerBlock() {
            int from = 0;
            int to = payload.length;
            if ((flags & 0x08) != 0) {    // PADDED
                to -= payload[0] & 0xff;
                from = 1;
            }
            if ((flags & 0x20) != 0) {    // PRIORITY
                from += 5;
            }
            return java.util.Arrays.copyOfRange(payload, from, to);
        }
    }

    private final Socket socket;
    private final OutputStream out;
    private final DataInputStream in;
    /** Bytes the server has let this client send on the connection, less those sent. */
    private long sendWindow = INITIAL_WINDOW;
    /** What a new stream may send before its own WINDOW_UPDATE (the server's SETTINGS_INITIAL_WINDOW_SIZE). */
    private int streamWindow = INITIAL_WINDOW;

    RawHttp2(URI server) throws IOException {
        socket = new Socket(server.getHost(), server.getPort());
        out = socket.getOutputStream();
        in = new DataInputStream(socket.getInputStream());
        out.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        frame(SETTINGS, 0, 0, new byte[0]);
        out.flush();
    }

    /** What the connection lets this client send now (the server's WINDOW_UPDATEs on stream 0 so far). */
    long sendWindow() {
        return sendWindow;
    }

    /** What a new stream may send before the server says more. */
    int streamWindow() {
        return streamWindow;
    }

    /** Asks for a PING's answer: every frame the server wrote before it has been read once it comes. */
    void ping() throws IOException {
        frame(PING, 0, 0, new byte[8]);
        out.flush();
    }

    /**
     * A POST on {@code stream}: its headers, then {@code body} bytes of body in DATA frames
     * ({@code endStream} on the last), all in one write.
     */
    void post(int stream, String path, Map<String, String> headers, byte[] body, boolean endStream) throws IOException {
        ByteArrayOutputStream block = new ByteArrayOutputStream();
        literal(block, ":method", "POST");
        literal(block, ":scheme", "http");
        literal(block, ":authority", "localhost");
        literal(block, ":path", path);
        headers.forEach((name, value) -> literal(block, name, value));
        frame(HEADERS, END_HEADERS | (body.length == 0 && endStream ? END_STREAM : 0), stream, block.toByteArray());
        for (int at = 0; at < body.length; at += MAX_FRAME) {
            int n = Math.min(MAX_FRAME, body.length - at);
            byte[] payload = new byte[n];
            System.arraycopy(body, at, payload, 0, n);
            frame(DATA, endStream && at + n == body.length ? END_STREAM : 0, stream, payload);
            sendWindow -= n;
        }
        out.flush();
    }

    /**
     * The next frame from the server, or null when none comes within {@code timeout}. Answers
     * SETTINGS and PING as a client must and counts the connection's WINDOW_UPDATEs.
     */
    Frame read(Duration timeout) throws IOException {
        socket.setSoTimeout((int) Math.max(1, timeout.toMillis()));
        int length;
        try {
            length = (in.readUnsignedByte() << 16) | in.readUnsignedShort();
        } catch (SocketTimeoutException e) {
            return null;
        }
        int type = in.readUnsignedByte();
        int flags = in.readUnsignedByte();
        int stream = in.readInt() & 0x7fff_ffff;
        byte[] payload = in.readNBytes(length);
        if (type == SETTINGS && (flags & ACK) == 0) {
            for (int at = 0; at + 6 <= payload.length; at += 6) {
                if ((((payload[at] & 0xff) << 8) | (payload[at + 1] & 0xff)) == 0x4) {   // SETTINGS_INITIAL_WINDOW_SIZE
                    streamWindow = ((payload[at + 2] & 0x7f) << 24) | ((payload[at + 3] & 0xff) << 16)
                            | ((payload[at + 4] & 0xff) << 8) | (payload[at + 5] & 0xff);
                }
            }
            frame(SETTINGS, ACK, 0, new byte[0]);
            out.flush();
        } else if (type == PING && (flags & ACK) == 0) {
            frame(PING, ACK, 0, payload);
            out.flush();
        } else if (type == WINDOW_UPDATE && stream == 0) {
            sendWindow += ((payload[0] & 0x7f) << 24) | ((payload[1] & 0xff) << 16) | ((payload[2] & 0xff) << 8) | (payload[3] & 0xff);
        }
        return new Frame(type, flags, stream, payload);
    }

    private void frame(int type, int flags, int stream, byte[] payload) throws IOException {
        out.write(new byte[] {(byte) (payload.length >>> 16), (byte) (payload.length >>> 8), (byte) payload.length,
                (byte) type, (byte) flags, (byte) (stream >>> 24), (byte) (stream >>> 16), (byte) (stream >>> 8), (byte) stream});
        out.write(payload);
    }

    /** HPACK "literal header field without indexing, new name" (RFC 7541 §6.2.2), no Huffman coding. */
    private static void literal(ByteArrayOutputStream block, String name, String value) {
        block.write(0x00);
        string(block, name.getBytes(StandardCharsets.UTF_8));
        string(block, value.getBytes(StandardCharsets.UTF_8));
    }

    /** A string literal: its length as a 7-bit-prefix integer (RFC 7541 §5.1), then its bytes. */
    private static void string(ByteArrayOutputStream block, byte[] bytes) {
        int length = bytes.length;
        if (length < 127) {
            block.write(length);
        } else {
            block.write(127);
            for (length -= 127; length >= 128; length >>>= 7) {
                block.write((length & 0x7f) | 0x80);
            }
            block.write(length);
        }
        block.writeBytes(bytes);
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
