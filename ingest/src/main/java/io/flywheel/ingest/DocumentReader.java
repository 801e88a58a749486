package io.flywheel.ingest;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.serde.StrictUtf8;
import java.io.IOException;
import java.io.InputStream;

/**
 * Splits one input (a file or stdin) into documents. Input is read as bytes, line by line, and
 * each unit is decoded as strict UTF-8, so that one bad line is reported with its number and the
 * rest of the file still goes in.
 */
final class DocumentReader {

    enum Format { TEXT, JSONL }

    enum Split { FILE, PARAGRAPH, LINE }

    /** Where documents and problems go; {@code line} is 1-based, 0 for a whole file. */
    interface Sink {
        void document(String text, String givenId, int line);

        void problem(int line, String message);
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Format format;
    private final Split split;
    private final String textField;
    private final String idField;
    private final int maxDocumentBytes;

    DocumentReader(Format format, Split split, String textField, String idField, int maxDocumentBytes) {
        this.format = format;
        this.split = split;
        this.textField = textField;
        this.idField = idField;
        this.maxDocumentBytes = maxDocumentBytes;
    }

    void read(InputStream in, Sink sink) throws IOException {
        if (format == Format.JSONL) {
            readJsonLines(in, sink);
        } else if (split == Split.FILE) {
            readWhole(in, sink);
        } else {
            readSplit(in, sink);
        }
    }

    private void readWhole(InputStream in, Sink sink) throws IOException {
        byte[] bytes = in.readNBytes(maxDocumentBytes + 1);
        if (bytes.length > maxDocumentBytes) {
            sink.problem(0, "document larger than " + maxDocumentBytes + " bytes; use --split paragraph or line");
            return;
        }
        String text = StrictUtf8.decodeOrNull(bytes);
        if (text == null) {
            sink.problem(0, "invalid UTF-8 at byte " + StrictUtf8.firstInvalidByte(bytes));
        } else if (text.isBlank()) {
            sink.problem(0, "empty document");
        } else {
            sink.document(text, null, 0);
        }
    }

    private void readSplit(InputStream in, Sink sink) throws IOException {
        LineReader lines = new LineReader(in, maxDocumentBytes);
        StringBuilder paragraph = new StringBuilder();
        int paragraphLine = 0;
        boolean paragraphBroken = false;
        byte[] line;
        while ((line = lines.next()) != null) {
            int number = lines.number();
            if (line == LineReader.TOO_LONG) {
                sink.problem(number, "line longer than " + maxDocumentBytes + " bytes");
                paragraphBroken = split == Split.PARAGRAPH;
                continue;
            }
            String text = StrictUtf8.decodeOrNull(line);
            if (text == null) {
                sink.problem(number, "invalid UTF-8 at byte " + StrictUtf8.firstInvalidByte(line) + " of the line");
                paragraphBroken = split == Split.PARAGRAPH;
                continue;
            }
            if (split == Split.LINE) {
                if (!text.isBlank()) {
                    sink.document(text, null, number);
                }
                continue;
            }
            if (text.isBlank()) {
                flush(paragraph, paragraphLine, paragraphBroken, sink);
                paragraph.setLength(0);
                paragraphBroken = false;
                continue;
            }
            if (paragraph.isEmpty()) {
                paragraphLine = number;
            }
            paragraph.append(paragraph.isEmpty() ? "" : "\n").append(text);
            if (paragraph.length() > maxDocumentBytes) {
                sink.problem(paragraphLine, "paragraph larger than " + maxDocumentBytes + " bytes");
                paragraph.setLength(0);
                paragraphBroken = false;
            }
        }
        if (split == Split.PARAGRAPH) {
            flush(paragraph, paragraphLine, paragraphBroken, sink);
        }
    }

    private static void flush(StringBuilder paragraph, int line, boolean broken, Sink sink) {
        if (paragraph.isEmpty()) {
            return;
        }
        if (broken) {
            sink.problem(line, "paragraph skipped: one of its lines could not be read");
        } else {
            sink.document(paragraph.toString(), null, line);
        }
    }

    private void readJsonLines(InputStream in, Sink sink) throws IOException {
        LineReader lines = new LineReader(in, maxDocumentBytes);
        byte[] line;
        while ((line = lines.next()) != null) {
            int number = lines.number();
            if (line == LineReader.TOO_LONG) {
                sink.problem(number, "line longer than " + maxDocumentBytes + " bytes");
                continue;
            }
            String text = StrictUtf8.decodeOrNull(line);
            if (text == null) {
                sink.problem(number, "invalid UTF-8 at byte " + StrictUtf8.firstInvalidByte(line) + " of the line");
                continue;
            }
            if (text.isBlank()) {
                continue;
            }
            JsonNode node;
            try {
                node = JSON.readTree(text);
            } catch (JsonProcessingException e) {
                sink.problem(number, "not JSON: " + e.getOriginalMessage());
                continue;
            }
            JsonDocument doc;
            try {
                doc = JsonDocument.from(node, textField, idField);
            } catch (JsonDocument.Invalid e) {
                sink.problem(number, e.getMessage());
                continue;
            }
            sink.document(doc.text(), doc.givenId(), number);
        }
    }
}
