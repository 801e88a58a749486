package io.flywheel.serving;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;

/**
 * Request bodies get a size limit (413) and a deadline (408), each answered with an OpenAI-style
 * error before any worker thread is involved. An HTTP/1 body is read here, whole, on the event
 * loop, and handed to the REST layer with {@code RoutingContext.setBody}: a blocking endpoint
 * otherwise reads its body on its worker thread, so a client that sends half a body holds a
 * worker until the deadline, and enough of them stall every endpoint, health and metrics
 * included. Over HTTP/2 the REST layer reads the body itself (it pauses the request it is given,
 * which HTTP/2 refuses once the body has ended); there the deadline and the limit are watched.
 */
@ApplicationScoped
public class RequestBodies {

    private static final long CHECK_MS = 100;

    private final ServingMetrics metrics;

    RequestBodies(ServingMetrics metrics) {
        this.metrics = metrics;
    }

    void install(@Observes Router router, Vertx vertx, ServingConfig config) {
        long limit = config.maxBodyBytes();
        long timeoutMs = config.bodyTimeout().toMillis();
        for (HttpMethod method : new HttpMethod[] {HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH}) {
            router.route().method(method).order(-100).handler(ctx -> {
                String declared = ctx.request().getHeader(HttpHeaders.CONTENT_LENGTH);
                if (declared != null && tooLarge(declared, limit)) {
                    refuse(ctx, 413, "request_too_large", "The request body is larger than this server's limit of " + limit + " bytes");
                    return;
                }
                if (ctx.request().version() != HttpVersion.HTTP_2) {
                    readWhole(ctx, vertx, limit, timeoutMs, config.bodyTimeout().toSeconds());
                    return;
                }
                // HTTP/2 (h2c): the REST layer pauses the request it is given, which HTTP/2 refuses once
                // the body has ended, so the body is left to it. One check every 100 ms while it
                // arrives: past the limit (a chunked body, whose length nobody declared) it is 413,
                // past the deadline 408; done once it has all come.
                long deadline = System.nanoTime() + timeoutMs * 1_000_000;
                long length = declared == null ? -1 : length(declared);
                long timer = vertx.setPeriodic(CHECK_MS, id -> {
                    // A paused request does not report its end: a declared length that has all come is the end too.
                    boolean whole = ctx.request().isEnded() || (length >= 0 && ctx.request().bytesRead() >= length);
                    if (whole || ctx.response().headWritten() || ctx.response().closed()) {
                        vertx.cancelTimer(id);
                    } else if (ctx.request().bytesRead() > limit) {
                        vertx.cancelTimer(id);
                        refuse(ctx, 413, "request_too_large", "The request body is larger than this server's limit of " + limit + " bytes");
                    } else if (System.nanoTime() > deadline) {
                        vertx.cancelTimer(id);
                        refuse(ctx, 408, "request_timeout", "The request body did not arrive within "
                                + config.bodyTimeout().toSeconds() + " s");
                    }
                });
                ctx.addEndHandler(ended -> vertx.cancelTimer(timer));
                ctx.next();
            });
        }
    }

    /**
     * Reads an HTTP/1 body here, on the event loop, and hands it to the REST layer whole (it reads
     * a body it is given instead of the connection): a slow client waits on no worker thread.
     */
    private void readWhole(RoutingContext ctx, Vertx vertx, long limit, long timeoutMs, long timeoutSeconds) {
        Buffer body = Buffer.buffer();
        boolean[] done = {false};
        long timer = vertx.setTimer(timeoutMs, id -> {
            if (!done[0]) {
                done[0] = true;
                refuse(ctx, 408, "request_timeout", "The request body did not arrive within " + timeoutSeconds + " s");
            }
        });
        ctx.request().handler(chunk -> {
            if (done[0]) {
                return;
            }
            body.appendBuffer(chunk);
            if (body.length() > limit) {
                done[0] = true;
                vertx.cancelTimer(timer);
                refuse(ctx, 413, "request_too_large", "The request body is larger than this server's limit of " + limit + " bytes");
            }
        });
        ctx.request().exceptionHandler(e -> {
            done[0] = true;
            vertx.cancelTimer(timer);
        });
        ctx.request().endHandler(end -> {
            if (done[0]) {
                return;
            }
            done[0] = true;
            vertx.cancelTimer(timer);
            ctx.setBody(body);
            ctx.next();
        });
        ctx.request().resume();
    }

    private static boolean tooLarge(String declared, long limit) {
        return length(declared) > limit;
    }

    /** A declared Content-Length, or -1 when it is malformed (Vert.x itself refuses those). */
    private static long length(String declared) {
        try {
            return Long.parseLong(declared.strip());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * Answers, then closes an HTTP/1 connection: the rest of the body is not worth reading. An
     * HTTP/2 connection carries other requests; ending the response resets only this stream.
     */
    private void refuse(RoutingContext ctx, int status, String code, String message) {
        boolean http1 = ctx.request().version() != HttpVersion.HTTP_2;
        if (ctx.response().headWritten()) {
            if (http1) {
                ctx.request().connection().close();
            }
            return;
        }
        metrics.request(status);
        byte[] body = ApiError.of(status, "invalid_request_error", code, message).body();
        ctx.response().setStatusCode(status).putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
        if (http1) {
            ctx.response().putHeader(HttpHeaders.CONNECTION, "close");
        }
        ctx.response().end(Buffer.buffer(body)).onComplete(done -> {
            if (http1) {
                ctx.request().connection().close();
            }
        });
    }
}
