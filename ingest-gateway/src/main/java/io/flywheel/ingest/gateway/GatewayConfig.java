package io.flywheel.ingest.gateway;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The gateway's settings, {@code flywheel.gateway.*} in {@code application.properties}; each can
 * be overridden by its environment variable ({@code FLYWHEEL_GATEWAY_MAX_BATCH_BYTES}, ...).
 */
@ConfigMapping(prefix = "flywheel.gateway")
public interface GatewayConfig {

    /** Keys accepted as {@code Authorization: Bearer KEY}. None: open, for local use only. */
    Optional<List<String>> apiKeys();

    /** Largest document text, in UTF-8 bytes. A larger one fails the request with 413. */
    @WithDefault("4194304")
    int maxDocumentBytes();

    /** Largest request body, in bytes. */
    @WithDefault("33554432")
    int maxBatchBytes();

    /** Most documents in one request. */
    @WithDefault("10000")
    int maxBatchDocuments();

    /** Source recorded for documents that name none (neither a field nor the header). */
    @WithDefault("http")
    String defaultSource();

    /** How long a request waits for the broker to acknowledge its documents before answering 503. */
    @WithDefault("30s")
    Duration sendTimeout();
}
