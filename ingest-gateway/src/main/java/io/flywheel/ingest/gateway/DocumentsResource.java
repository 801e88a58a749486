package io.flywheel.ingest.gateway;

import io.flywheel.core.records.RawText;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * {@code POST /v1/documents}: one JSON document ({@code application/json}) or a batch as NDJSON
 * ({@code application/x-ndjson}, one document per line) into {@code text.raw}. Answers
 * {@code 202 {"object": "list", "data": [{"id": ...}, ...]}} once the broker has them all, in the
 * order sent. The tokenizer stream then cleans them; what it rejects goes to {@code text.rejected}.
 */
@Path("/v1/documents")
public class DocumentsResource {

    static final String NDJSON = "application/x-ndjson";

    private final GatewayConfig config;
    private final RawTextSink sink;
    private final GatewayMetrics metrics;

    DocumentsResource(GatewayConfig config, RawTextSink sink, GatewayMetrics metrics) {
        this.config = config;
        this.sink = sink;
        this.metrics = metrics;
    }

    public record Accepted(String object, List<Item> data) {}

    public record Item(String id) {}

    @POST
    @Consumes({MediaType.APPLICATION_JSON, NDJSON, "application/jsonl", "application/x-jsonlines"})
    @Produces(MediaType.APPLICATION_JSON)
    public Response submit(InputStream body, @HeaderParam(HttpHeaders.CONTENT_TYPE) MediaType type,
                           @HeaderParam(HttpHeaders.CONTENT_LENGTH) Long length,
                           @HeaderParam("X-Flywheel-Source") String sourceHeader) throws IOException {
        if (length != null && length > config.maxBatchBytes()) {
            throw DocumentBatch.batchTooLarge(config.maxBatchBytes());    // without reading the body
        }
        boolean ndjson = !type.isCompatible(MediaType.APPLICATION_JSON_TYPE);
        String source = sourceHeader == null || sourceHeader.isBlank() ? config.defaultSource() : sourceHeader.strip();
        DocumentBatch.Rules rules = new DocumentBatch.Rules(config.maxDocumentBytes(), config.maxBatchBytes(),
                config.maxBatchDocuments(), source);
        List<RawText> docs = DocumentBatch.read(body, ndjson, rules, System.currentTimeMillis());

        long start = System.nanoTime();
        long recordBytes = sink.sendAll(docs, config.sendTimeout());
        metrics.accepted(docs.size(), recordBytes, System.nanoTime() - start);
        List<Item> ids = docs.stream().map(d -> new Item(d.id())).toList();
        return Response.accepted(new Accepted("list", ids)).type(MediaType.APPLICATION_JSON_TYPE).build();
    }
}
