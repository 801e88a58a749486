package io.flywheel.ingest.gateway;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.concurrent.TimeUnit;

/**
 * The gateway's own metrics, beside Quarkus's HTTP ones ({@code http_server_requests_seconds}):
 * <ul>
 *   <li>{@code flywheel_gateway_documents_total}, {@code flywheel_gateway_document_bytes_total}:
 *       documents the broker acknowledged, and the bytes of their records;</li>
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
                .description("Bytes of the acknowledged documents' records on text.raw").register(registry);
        this.send = Timer.builder("flywheel.gateway.send")
                .description("Time from sending a batch to the broker's acknowledgement of all of it")
                .publishPercentileHistogram().register(registry);
    }

    void accepted(int count, long recordBytes, long sendNanos) {
        documents.increment(count);
        bytes.increment(recordBytes);
        send.record(sendNanos, TimeUnit.NANOSECONDS);
    }

    void failed(ApiError error) {
        registry.counter("flywheel.gateway.requests.failed", "code", error.code()).increment();
    }
}
