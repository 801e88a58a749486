package io.flywheel.ingest.gateway;

import io.flywheel.core.records.RawText;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The gateway's own metrics, beside Quarkus's HTTP ones ({@code http_server_requests_seconds}):
 * <ul>
 *   <li>{@code flywheel_gateway_documents_total}, {@code flywheel_gateway_document_bytes_total}:
 *       documents (and their text bytes) the broker acknowledged;</li>
 *   <li>{@code flywheel_gateway_requests_failed_total{code}}: requests answered with an error, by
 *       the error code of the body ({@code invalid_json}, {@code document_too_large}, ...);</li>
 *   <li>{@code flywheel_gateway_send_seconds}: time from sending a batch to the broker's last ack.</li>
 * </ul>
 */
@ApplicationScoped
public class GatewayMetrics {

    private final MeterRegistry registry;
    private final Counter documents;
    private final Counter bytes;
    private final Timer send;

    GatewayMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.documents = Counter.builder("flywheel.gateway.documents")
                .description("Documents the broker acknowledged").register(registry);
        this.bytes = Counter.builder("flywheel.gateway.document.bytes").baseUnit("bytes")
                .description("UTF-8 bytes of the text of acknowledged documents").register(registry);
        this.send = Timer.builder("flywheel.gateway.send")
                .description("Time from sending a batch to the broker's acknowledgement of all of it")
                .publishPercentileHistogram().register(registry);
    }

    void accepted(List<RawText> docs, long sendNanos) {
        documents.increment(docs.size());
        long total = 0;
        for (RawText doc : docs) {
            total += doc.text().getBytes(StandardCharsets.UTF_8).length;
        }
        bytes.increment(total);
        send.record(sendNanos, java.util.concurrent.TimeUnit.NANOSECONDS);
    }

    void failed(ApiError error) {
        registry.counter("flywheel.gateway.requests.failed", "code",
                error.code() == null ? "unknown" : error.code()).increment();
    }
}
