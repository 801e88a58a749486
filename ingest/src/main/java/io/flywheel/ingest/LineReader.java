package io.flywheel.ingest;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

/** Lines as bytes, without the line break ({@code \n} or {@code \r\n}). */
public final class LineReader {
    /** Returned by {@link #next()} for a line longer than the limit; its bytes are skipped. */
    public static final byte[] TOO_LONG = new byte[0];

    private final InputStream in;
    private final int maxLine;
    private final byte[] buffer = new byte[1 << 16];
    private int pos;
    private int limit;
    private int number;
    private boolean eof;

    public LineReader(InputStream in, int maxLine) {
        this.in = in;
        this.maxLine = maxLine;
    }

    /** 1-based number of the line {@link #next()} returned last. */
    public int number() {
        return number;
    }

    /** The next line, {@link #TOO_LONG}, or {@code null} at the end of the input. */
    public byte[] next() throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        boolean tooLong = false;
        boolean any = false;
        while (true) {
            if (pos == limit) {
                if (eof || (limit = in.read(buffer)) < 0) {
                    eof = true;
                    limit = 0;
                    pos = 0;
                    if (!any) {
                        return null;
                    }
                    break;
                }
                pos = 0;
            }
            any = true;
            int nl = -1;
            for (int i = pos; i < limit; i++) {
                if (buffer[i] == '\n') {
                    nl = i;
                    break;
                }
            }
            int end = nl < 0 ? limit : nl;
            if (!tooLong) {
                line.write(buffer, pos, end - pos);
                if (line.size() > maxLine) {
                    tooLong = true;
                    line.reset();
                }
            }
            pos = nl < 0 ? limit : nl + 1;
            if (nl >= 0) {
                break;
            }
        }
        number++;
        if (tooLong) {
            return TOO_LONG;
        }
        byte[] bytes = line.toByteArray();
        if (bytes.length > 0 && bytes[bytes.length - 1] == '\r') {
            bytes = Arrays.copyOf(bytes, bytes.length - 1);
        }
        return bytes;
    }
}
