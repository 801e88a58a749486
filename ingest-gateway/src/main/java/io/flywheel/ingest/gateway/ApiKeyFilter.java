package io.flywheel.ingest.gateway;

import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.HttpHeaders;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;

/**
 * {@code Authorization: Bearer KEY} on every {@code /v1} request when keys are configured
 * ({@code flywheel.gateway.api-keys}); health and metrics stay open for probes and scrapers.
 */
public class ApiKeyFilter {

    private final List<byte[]> keys;

    ApiKeyFilter(GatewayConfig config) {
        this.keys = config.apiKeys().orElse(List.of()).stream()
                .filter(k -> !k.isBlank())
                .map(k -> k.strip().getBytes(StandardCharsets.UTF_8))
                .toList();
    }

    /** @throws ApiError 401, answered like every other error by {@link ErrorMappers} */
    @ServerRequestFilter
    public void check(ContainerRequestContext request) {
        if (keys.isEmpty() || !request.getUriInfo().getPath().startsWith("/v1")) {
            return;
        }
        String header = request.getHeaderString(HttpHeaders.AUTHORIZATION);
        if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw ApiError.unauthorized("no API key: send the header \"Authorization: Bearer YOUR_KEY\"");
        }
        if (!known(header.substring(7).strip().getBytes(StandardCharsets.UTF_8))) {
            throw ApiError.unauthorized("incorrect API key");
        }
    }

    /** Compares against every key in constant time, so timing does not reveal a key's prefix. */
    private boolean known(byte[] given) {
        boolean found = false;
        for (byte[] key : keys) {
            found |= MessageDigest.isEqual(key, given);
        }
        return found;
    }
}
