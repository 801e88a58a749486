package io.flywheel.tokenizerstream;

import io.flywheel.core.config.Settings;
import io.flywheel.core.topics.TopicCatalog;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Every setting of the tokenizer stream, with its key and default. Keys follow {@link Settings}:
 * {@code filter.min-chars} is also {@code -Dflywheel.filter.min-chars} and
 * {@code FLYWHEEL_FILTER_MIN_CHARS}.
 */
public record StreamConfig(
        String bootstrap,
        String applicationId,
        Path stateDir,
        String guarantee,
        int threads,
        long commitIntervalMs,
        String tokenizer,
        double validationShare,
        int minChars,
        int maxChars,
        double minLetterShare,
        double maxRepeatedLineShare,
        List<String> blocklist,
        boolean redact,
        int dedupPartitions,
        Duration dedupRetention,
        boolean nearDedup,
        double nearThreshold,
        int shingleWords,
        int bands,
        int rows,
        String metricsHost,
        int metricsPort,
        TopicCatalog topics) {

    public static final String EXACTLY_ONCE = "exactly_once_v2";
    public static final String AT_LEAST_ONCE = "at_least_once";

    public StreamConfig {
        blocklist = List.copyOf(blocklist);
        if (!guarantee.equals(EXACTLY_ONCE) && !guarantee.equals(AT_LEAST_ONCE)) {
            throw new Settings.ConfigException("stream.guarantee must be " + EXACTLY_ONCE + " or " + AT_LEAST_ONCE + ", not '" + guarantee + "'");
        }
        check(threads >= 1, "stream.threads must be at least 1");
        check(commitIntervalMs >= 1, "stream.commit-interval-ms must be positive");
        check(validationShare >= 0 && validationShare <= 1, "stream.validation-share must be within [0, 1]");
        check(minChars >= 1 && maxChars >= minChars, "filter.min-chars must be at least 1 and at most filter.max-chars");
        check(minLetterShare >= 0 && minLetterShare <= 1, "filter.min-letter-share must be within [0, 1]");
        check(maxRepeatedLineShare >= 0 && maxRepeatedLineShare <= 1, "filter.max-repeated-line-share must be within [0, 1]");
        check(dedupPartitions >= 1, "dedup.partitions must be at least 1");
        check(!dedupRetention.isNegative() && !dedupRetention.isZero(), "dedup.retention-ms must be positive");
        check(nearThreshold > 0 && nearThreshold <= 1, "dedup.near.threshold must be within (0, 1]");
        check(shingleWords >= 1 && bands >= 1 && rows >= 1, "dedup.shingle-words, dedup.bands and dedup.rows must be positive");
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new Settings.ConfigException(message);
        }
    }

    public static StreamConfig from(Settings s) {
        List<String> blocklist = new ArrayList<>(split(s.string("filter.blocklist", "")));
        String blocklistFile = s.string("filter.blocklist-file", "");
        if (!blocklistFile.isBlank()) {
            try {
                Files.readAllLines(Path.of(blocklistFile)).stream()
                        .map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).forEach(blocklist::add);
            } catch (IOException e) {
                throw new Settings.ConfigException("filter.blocklist-file: cannot read " + blocklistFile + ": " + e.getMessage());
            }
        }
        return new StreamConfig(
                s.string("kafka.bootstrap", "127.0.0.1:19092"),
                s.string("stream.application-id", "flywheel-tokenizer-stream"),
                Path.of(s.string("stream.state-dir", ".flywheel/streams")),
                s.string("stream.guarantee", EXACTLY_ONCE),
                // One per core: with exactly-once a second thread took the stream from 3.6-3.8 to
                // 4.0-5.0 MB/s on two cores shared with the broker (docs/benchmarks.md).
                s.integer("stream.threads", Runtime.getRuntime().availableProcessors()),
                s.longValue("stream.commit-interval-ms", 100),
                s.string("stream.tokenizer", "cl100k_base"),
                s.decimal("stream.validation-share", 0.01),
                s.integer("filter.min-chars", 16),
                s.integer("filter.max-chars", TopicCatalog.MAX_MESSAGE_BYTES),
                s.decimal("filter.min-letter-share", 0.4),
                s.decimal("filter.max-repeated-line-share", 0.3),
                blocklist,
                s.bool("redact.enabled", true),
                s.integer("dedup.partitions", 1),
                Duration.ofMillis(s.longValue("dedup.retention-ms", Duration.ofDays(7).toMillis())),
                s.bool("dedup.near.enabled", true),
                s.decimal("dedup.near.threshold", 0.8),
                s.integer("dedup.shingle-words", 5),
                s.integer("dedup.bands", 16),
                s.integer("dedup.rows", 5),
                s.string("stream.metrics.host", "127.0.0.1"),
                s.integer("stream.metrics.port", 9410),
                TopicCatalog.from(s));
    }

    private static List<String> split(String csv) {
        return Arrays.stream(csv.split(",")).map(String::strip).filter(t -> !t.isEmpty()).toList();
    }
}
