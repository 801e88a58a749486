package io.flywheel.core.metrics;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Whether the broker answers, asked every few seconds, for a service's readiness: a stream or a
 * trainer whose broker is gone keeps its own state (Kafka Streams stays RUNNING), so without this
 * its {@code /health/ready} would say 200 through a whole outage.
 */
public final class BrokerProbe implements AutoCloseable {

    private static final Duration EVERY = Duration.ofSeconds(5);
    /** Unreachable once no answer has come for this long (three probes). */
    private static final Duration STALE = Duration.ofSeconds(15);

    private final Admin admin;
    private final Thread thread;
    private volatile long lastAnswer;
    private volatile boolean answered;
    private volatile boolean closed;

    private BrokerProbe(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "flywheel-broker-probe");
        this.admin = Admin.create(p);
        this.thread = new Thread(this::probe, "broker-probe");
        thread.setDaemon(true);
    }

    /** Starts probing {@code bootstrap} now and every 5 s. */
    public static BrokerProbe start(String bootstrap) {
        BrokerProbe probe = new BrokerProbe(bootstrap);
        probe.thread.start();
        return probe;
    }

    /** Whether the broker answered within the last 15 s. */
    public boolean reachable() {
        return answered && System.nanoTime() - lastAnswer < STALE.toNanos();
    }

    /** Asks the broker now; whether it answers within {@code timeout}. */
    public boolean answersWithin(Duration timeout) {
        try {
            admin.describeCluster().clusterId().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            lastAnswer = System.nanoTime();
            answered = true;
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (Exception unreachable) {
            return false;
        }
    }

    private void probe() {
        while (!closed) {
            try {
                admin.describeCluster().clusterId().get(3, TimeUnit.SECONDS);
                lastAnswer = System.nanoTime();
                answered = true;
            } catch (InterruptedException e) {
                return;
            } catch (Exception unreachable) {
                // reachable() turns false once the last answer is stale
            }
            try {
                Thread.sleep(EVERY.toMillis());
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        admin.close(Duration.ofSeconds(1));
    }
}
