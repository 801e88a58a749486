package io.flywheel.ingest.gateway;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flywheel.core.records.RawText;
import io.flywheel.core.serde.StrictUtf8;
import io.flywheel.core.records.DocumentIds;
import io.flywheel.ingest.JsonDocument;
import io.flywheel.ingest.LineReader;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a request body into documents: one JSON object, or NDJSON (one object per line). A batch
 * is all or nothing: the first bad line fails the whole request with an error that names it, and
 * nothing of that request is sent, so a producer can fix the line and resend the same batch.
 *
 * <p>A document is {@code {"text": "...", "id": "...", "source": "...", "meta": {"k": "v"}}};
 * only {@code text} is required. The same rules as {@code flywheel ingest --format jsonl} apply to
 * {@code text} and {@code id} ({@link JsonDocument}).
 */
final class DocumentBatch {

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final Set<String> FIELDS = Set.of("text", "id", "source", "meta");

    /** Limits and defaults for one request. */
    record Rules(int maxDocumentBytes, int maxBatchBytes, int maxBatchDocuments, String source) {}

    private DocumentBatch() {}

    /**
     * @param ndjson {@code true}: one document per non-blank line; {@code false}: the whole body
     *               is one document
     * @param now    event time given to every document, epoch milliseconds
     * @throws ApiError 400 or 413 naming the line; {@code line} is absent for a single document
     */
    static List<RawText> read(InputStream body, boolean ndjson, Rules rules, long now) throws IOException {
        InputStream limited = new Limited(body, rules.maxBatchBytes());
        List<RawText> docs = new ArrayList<>();
        if (!ndjson) {
            byte[] bytes = limited.readAllBytes();
            docs.add(document(bytes, null, rules, now));
            return docs;
        }
        LineReader lines = new LineReader(limited, rules.maxBatchBytes());
        byte[] line;
        while ((line = lines.next()) != null) {
            if (isBlank(line)) {
                continue;
            }
            if (docs.size() == rules.maxBatchDocuments()) {
                throw ApiError.tooLarge("too_many_documents", lines.number(),
                        "a batch holds at most " + rules.maxBatchDocuments() + " documents");
            }
            docs.add(document(line, lines.number(), rules, now));
        }
        if (docs.isEmpty()) {
            throw ApiError.badRequest("empty_batch", null, "the body holds no documents");
        }
        return docs;
    }

    private static RawText document(byte[] bytes, Integer line, Rules rules, long now) {
        String json = StrictUtf8.decodeOrNull(bytes);
        if (json == null) {
            throw ApiError.badRequest("invalid_utf8", line, "invalid UTF-8 at byte " + StrictUtf8.firstInvalidByte(bytes));
        }
        if (json.isBlank()) {
            throw ApiError.badRequest("empty_body", line, "the body is empty; send a JSON object with a \"text\" field");
        }
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw ApiError.badRequest("invalid_json", line, "not JSON: " + e.getOriginalMessage()
                    + (line == null ? "" : "; a batch is NDJSON: one object per line"));
        }
        if (node != null && node.isObject()) {
            for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
                String name = names.next();
                if (!FIELDS.contains(name)) {
                    throw ApiError.badRequest("unknown_field", line, "unknown field \"" + name
                            + "\"; a document has \"text\" and optionally \"id\", \"source\", \"meta\"");
                }
            }
        }
        JsonDocument doc;
        try {
            doc = JsonDocument.from(node, "text", "id");
        } catch (JsonDocument.Invalid e) {
            throw ApiError.badRequest("invalid_document", line, e.getMessage());
        }
        // JSON never encodes text in fewer bytes than its UTF-8, so only long lines need the count.
        if (bytes.length > rules.maxDocumentBytes()
                && doc.text().getBytes(StandardCharsets.UTF_8).length > rules.maxDocumentBytes()) {
            throw ApiError.tooLarge("document_too_large", line,
                    "document text is larger than " + rules.maxDocumentBytes() + " bytes");
        }
        String source = rules.source();
        JsonNode given = node.get("source");
        if (given != null && !given.isNull()) {
            if (!given.isTextual() || given.asText().isBlank()) {
                throw ApiError.badRequest("invalid_document", line, "\"source\" must be a non-empty string");
            }
            source = given.asText();
        }
        String id = doc.givenId() != null ? doc.givenId() : DocumentIds.of(source, doc.text());
        return new RawText(id, source, doc.text(), now, meta(node.get("meta"), line));
    }

    private static Map<String, String> meta(JsonNode meta, Integer line) {
        if (meta == null || meta.isNull()) {
            return Map.of();
        }
        if (!meta.isObject()) {
            throw ApiError.badRequest("invalid_document", line, "\"meta\" must be an object of strings");
        }
        Map<String, String> values = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> fields = meta.fields(); fields.hasNext(); ) {
            Map.Entry<String, JsonNode> field = fields.next();
            if (!field.getValue().isTextual()) {
                throw ApiError.badRequest("invalid_document", line,
                        "\"meta\" must be an object of strings; \"" + field.getKey() + "\" is not a string");
            }
            values.put(field.getKey(), field.getValue().asText());
        }
        return values;
    }

    static ApiError batchTooLarge(long limit) {
        return ApiError.tooLarge("batch_too_large", null, "the body is larger than " + limit + " bytes");
    }

    private static boolean isBlank(byte[] line) {
        for (byte b : line) {
            if (b != ' ' && b != '\t' && b != '\r') {
                return false;
            }
        }
        return true;
    }

    /** Fails the request with 413 as soon as the body grows past the limit, without reading the rest. */
    private static final class Limited extends FilterInputStream {
        private final long limit;
        private long count;

        Limited(InputStream in, long limit) {
            super(in);
            this.limit = limit;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                count(1);
            }
            return b;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
            int n = super.read(buffer, offset, length);
            if (n > 0) {
                count(n);
            }
            return n;
        }

        private void count(int n) {
            count += n;
            if (count > limit) {
                throw batchTooLarge(limit);
            }
        }
    }
}
