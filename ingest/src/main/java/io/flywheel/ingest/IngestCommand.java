package io.flywheel.ingest;

import io.flywheel.core.cli.CommandLines;
import io.flywheel.core.cli.UsageError;
import io.flywheel.core.config.Settings;
import io.flywheel.core.records.DocumentIds;
import io.flywheel.core.records.RawText;
import io.flywheel.core.topics.Topic;
import io.flywheel.core.topics.TopicCatalog;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code flywheel ingest PATH...}: files, folders (recursively) and stdin ({@code -}) into
 * {@code text.raw}. Bad input (an unreadable file, invalid UTF-8, a JSON line without the text
 * field, an empty document) is reported with file and line and counted; the run goes on and
 * exits with 1 if anything failed.
 */
@Command(name = "ingest", mixinStandardHelpOptions = true,
        description = {"Send text to Flywheel (the text.raw topic): files, folders (recursively), or - for stdin.",
                "Prints progress on stderr and a one-line summary on stdout. Exit code 1 if any document failed."})
public final class IngestCommand implements Callable<Integer> {

    @Option(names = "--bootstrap", defaultValue = "127.0.0.1:19092", paramLabel = "HOST:PORT",
            description = "Kafka bootstrap servers (default: ${DEFAULT-VALUE}).")
    String bootstrap;

    @Option(names = "--source", paramLabel = "NAME", description = "Source name of every document (default: the file's path, or 'stdin').")
    String source;

    @Option(names = "--format", defaultValue = "text", paramLabel = "text|jsonl", description = "Input format (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--split", paramLabel = "file|paragraph|line", description = "For text: one document per file (default), paragraph or line.")
    String split;

    @Option(names = "--text-field", defaultValue = "text", paramLabel = "NAME", description = "For jsonl: the field holding the text (default: ${DEFAULT-VALUE}).")
    String textField;

    @Option(names = "--id-field", defaultValue = "id", paramLabel = "NAME",
            description = "For jsonl: the field holding the document id, if any (default: ${DEFAULT-VALUE}); without it the id is a hash of source and text.")
    String idField;

    @Parameters(arity = "1..*", paramLabel = "PATH", description = "Files, folders, or - for stdin.")
    List<String> paths;

    private PrintStream err = System.err;
    private boolean terminal = System.console() != null;

    @Override
    public Integer call() throws Exception {
        DocumentReader reader = reader();
        TopicCatalog topics = TopicCatalog.from(Settings.fromEnvironment());
        List<Input> inputs = new ArrayList<>();
        AtomicLong problems = new AtomicLong();
        for (String p : paths) {
            expand(p, inputs, problems);
        }
        // Stdin has no known size, and then neither has the whole run: no ETA.
        long totalBytes = inputs.stream().anyMatch(i -> i.path() == null) ? -1 : inputs.stream().mapToLong(Input::size).sum();
        checkReachable();

        AtomicLong bytesRead = new AtomicLong();
        long start = System.nanoTime();
        try (RawTextProducer producer = new RawTextProducer(bootstrap, topics.name(Topic.TEXT_RAW), Map.of());
             Progress progress = new Progress(err, terminal, totalBytes, producer::sent, bytesRead::get,
                     () -> problems.get() + producer.failed())) {
            for (Input input : inputs) {
                String docSource = source != null ? source : input.name();
                try (InputStream in = input.open()) {
                    reader.read(in, new DocumentReader.Sink() {
                        @Override
                        public void document(String text, String givenId, int line) {
                            String id = givenId != null ? givenId : DocumentIds.of(docSource, text);
                            Map<String, String> meta = new LinkedHashMap<>();
                            meta.put("path", input.name());
                            if (line > 0) {
                                meta.put("line", Integer.toString(line));
                            }
                            bytesRead.addAndGet(text.length());
                            producer.send(new RawText(id, docSource, text, System.currentTimeMillis(), meta))
                                    .exceptionally(e -> {
                                        IngestCommand.this.problem(input.name(), line, "not sent: " + e.getMessage());
                                        return null;
                                    });
                        }

                        @Override
                        public void problem(int line, String message) {
                            problems.incrementAndGet();
                            IngestCommand.this.problem(input.name(), line, message);
                        }
                    });
                } catch (IOException e) {
                    problems.incrementAndGet();
                    problem(input.name(), 0, "cannot read: " + e.getMessage());
                }
            }
            producer.flush();
            progress.close();
            long failed = problems.get() + producer.failed();
            System.out.printf(Locale.ROOT, "ingest: sent %,d documents (%.1f MB) in %.1f s, %,d failed%n",
                    producer.sent(), producer.sentBytes() / 1e6, (System.nanoTime() - start) / 1e9, failed);
            return failed > 0 ? 1 : 0;
        }
    }

    private DocumentReader reader() {
        DocumentReader.Format f = switch (format.toLowerCase(Locale.ROOT)) {
            case "text" -> DocumentReader.Format.TEXT;
            case "jsonl" -> DocumentReader.Format.JSONL;
            default -> throw new UsageError("--format must be text or jsonl, not '" + format + "'");
        };
        if (f == DocumentReader.Format.JSONL && split != null) {
            throw new UsageError("--split applies to --format text only; a JSON line is one document");
        }
        DocumentReader.Split s = switch (split == null ? "file" : split.toLowerCase(Locale.ROOT)) {
            case "file" -> DocumentReader.Split.FILE;
            case "paragraph" -> DocumentReader.Split.PARAGRAPH;
            case "line" -> DocumentReader.Split.LINE;
            default -> throw new UsageError("--split must be file, paragraph or line, not '" + split + "'");
        };
        // Raw text grows by JSON escaping; leave room for it and the other fields.
        return new DocumentReader(f, s, textField, idField, RawTextProducer.maxValueBytes() / 2);
    }

    private record Input(String name, Path path, long size) {
        InputStream open() throws IOException {
            return path == null ? System.in : Files.newInputStream(path);
        }
    }

    private void expand(String p, List<Input> inputs, AtomicLong problems) {
        if (p.equals("-")) {
            inputs.add(new Input("stdin", null, 0));
            return;
        }
        Path path = Path.of(p);
        if (Files.isDirectory(path)) {
            try (Stream<Path> files = Files.walk(path)) {
                files.filter(Files::isRegularFile).sorted().forEach(f -> inputs.add(new Input(f.toString(), f, size(f))));
            } catch (IOException | java.io.UncheckedIOException e) {
                problems.incrementAndGet();
                problem(p, 0, "cannot list folder: " + e.getMessage());
            }
        } else if (Files.isRegularFile(path)) {
            inputs.add(new Input(p, path, size(path)));
        } else {
            problems.incrementAndGet();
            problem(p, 0, Files.exists(path) ? "not a regular file" : "no such file or folder");
        }
    }

    private static long size(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            return 0;
        }
    }

    private synchronized void problem(String name, int line, String message) {
        err.println((terminal ? "\r\u001b[2K" : "") + "ingest: " + name + (line > 0 ? ":" + line : "") + ": " + message);
    }

    /** Fails fast with one clear line when nothing listens at the bootstrap address. */
    private void checkReachable() {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15_000, AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000))) {
            admin.describeCluster().clusterId().get(15, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("cannot reach Kafka at " + bootstrap + " (is './flywheel up' running?)");
        }
    }

    public static void main(String[] args) {
        System.exit(CommandLines.execute("ingest", new IngestCommand(), args));
    }
}
