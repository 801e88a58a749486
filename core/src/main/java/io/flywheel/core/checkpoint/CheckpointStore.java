package io.flywheel.core.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Binary;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Checkpoints on a file system, one folder per version ({@code v000042/}), each with a
 * {@code manifest.json} that lists every file with its size and sha256. The checkpoint's own hash
 * is the sha256 of its manifest: checking it and then every file's hash proves the whole folder.
 *
 * <p>Writing is atomic: files go to a temporary folder beside the others, each is fsynced, the
 * manifest is written last, the folder is fsynced and renamed to its final name, and the parent is
 * fsynced. A crash leaves either a complete checkpoint or a temporary folder that the next
 * {@link #open} removes; readers never see half a checkpoint.
 */
public final class CheckpointStore {

    public static final String MANIFEST = "manifest.json";
    public static final int FORMAT = 1;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TEMPORARY_PREFIX = ".tmp-";

    private final Path root;

    private CheckpointStore(Path root) {
        this.root = root;
    }

    /** Opens (creating) a store and removes temporary folders a crashed writer left behind. */
    public static CheckpointStore open(Path root) throws IOException {
        Files.createDirectories(root);
        try (Stream<Path> entries = Files.list(root)) {
            for (Path p : entries.toList()) {
                if (p.getFileName().toString().startsWith(TEMPORARY_PREFIX)) {
                    deleteRecursively(p);
                }
            }
        }
        return new CheckpointStore(root);
    }

    public Path root() {
        return root;
    }

    /** Writes one file of a checkpoint. */
    public interface FileWriter {
        void write(OutputStream out) throws IOException;
    }

    /** A stored checkpoint: its folder, version, the manifest's sha256 and the manifest's own fields. */
    public record Stored(long version, Path folder, String sha256, JsonNode manifest) {
        public Path file(String name) {
            return folder.resolve(name);
        }
    }

    /**
     * Writes a checkpoint atomically.
     *
     * @param files    file name to writer, in order
     * @param metadata extra manifest fields (config, offsets, metrics, ...); must not use
     *                 {@code format}, {@code version} or {@code files}
     */
    public Stored write(long version, Map<String, FileWriter> files, ObjectNode metadata) throws IOException {
        Path target = folder(version);
        if (Files.exists(target)) {
            throw new FileAlreadyExistsException(target.toString(), null, "checkpoint version " + version + " exists");
        }
        Path temporary = root.resolve(TEMPORARY_PREFIX + version + "-" + UUID.randomUUID());
        Files.createDirectory(temporary);
        try {
            ObjectNode manifest = JSON.createObjectNode();
            manifest.put("format", FORMAT).put("version", version);
            ObjectNode listed = manifest.putObject("files");
            for (Map.Entry<String, FileWriter> f : files.entrySet()) {
                if (f.getKey().equals(MANIFEST) || f.getKey().contains("/")) {
                    throw new IllegalArgumentException("bad checkpoint file name " + f.getKey());
                }
                Path file = temporary.resolve(f.getKey());
                try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW)) {
                    f.getValue().write(out);
                }
                fsync(file);
                listed.putObject(f.getKey()).put("bytes", Files.size(file)).put("sha256", sha256(file));
            }
            metadata.fields().forEachRemaining(e -> {
                if (Set.of("format", "version", "files").contains(e.getKey())) {
                    throw new IllegalArgumentException("reserved manifest field " + e.getKey());
                }
                manifest.set(e.getKey(), e.getValue());
            });
            byte[] bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(manifest);
            Path manifestFile = temporary.resolve(MANIFEST);
            Files.write(manifestFile, bytes, StandardOpenOption.CREATE_NEW);
            fsync(manifestFile);
            fsync(temporary);
            try {
                Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("the checkpoint store needs a file system with atomic renames: " + root, e);
            }
            fsync(root);
            return new Stored(version, target, HexFormat.of().formatHex(Binary.sha256(bytes)), manifest);
        } catch (IOException | RuntimeException e) {
            deleteRecursively(temporary);
            throw e;
        }
    }

    /** Versions present, oldest first. */
    public List<Long> versions() throws IOException {
        List<Long> versions = new ArrayList<>();
        try (Stream<Path> entries = Files.list(root)) {
            for (Path p : entries.toList()) {
                String name = p.getFileName().toString();
                if (name.matches("v\\d{6,}") && Files.isRegularFile(p.resolve(MANIFEST))) {
                    versions.add(Long.parseLong(name.substring(1)));
                }
            }
        }
        versions.sort(null);
        return versions;
    }

    public Optional<Long> latest() throws IOException {
        List<Long> versions = versions();
        return versions.isEmpty() ? Optional.empty() : Optional.of(versions.get(versions.size() - 1));
    }

    /** Reads a checkpoint and verifies the manifest and every file against their hashes. */
    public Stored open(long version) throws IOException {
        return verify(folder(version), null);
    }

    /**
     * Verifies a checkpoint folder (of this store or any other).
     *
     * @param expectedSha256 the manifest hash to insist on (from a {@code checkpoints} event), or {@code null}
     * @throws CorruptCheckpointException when a hash, a size or a file does not match
     */
    public static Stored verify(Path folder, String expectedSha256) throws IOException {
        Path manifestFile = folder.resolve(MANIFEST);
        if (!Files.isRegularFile(manifestFile)) {
            throw new CorruptCheckpointException(folder + ": no " + MANIFEST);
        }
        byte[] bytes = Files.readAllBytes(manifestFile);
        String sha = HexFormat.of().formatHex(Binary.sha256(bytes));
        if (expectedSha256 != null && !expectedSha256.equalsIgnoreCase(sha)) {
            throw new CorruptCheckpointException(folder + ": manifest sha256 is " + sha + ", expected " + expectedSha256);
        }
        JsonNode manifest = JSON.readTree(bytes);
        if (manifest.path("format").asInt() != FORMAT) {
            throw new CorruptCheckpointException(folder + ": unknown checkpoint format " + manifest.path("format"));
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = manifest.path("files").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            Path file = folder.resolve(f.getKey());
            if (!Files.isRegularFile(file)) {
                throw new CorruptCheckpointException(folder + ": " + f.getKey() + " is missing");
            }
            if (Files.size(file) != f.getValue().path("bytes").asLong()) {
                throw new CorruptCheckpointException(folder + ": " + f.getKey() + " has " + Files.size(file)
                        + " bytes, the manifest says " + f.getValue().path("bytes").asLong());
            }
            String actual = sha256(file);
            if (!actual.equals(f.getValue().path("sha256").asText())) {
                throw new CorruptCheckpointException(folder + ": " + f.getKey() + " sha256 is " + actual
                        + ", the manifest says " + f.getValue().path("sha256").asText());
            }
        }
        return new Stored(manifest.path("version").asLong(), folder, sha, manifest);
    }

    /** Deletes every version except the newest {@code keepLast} and those in {@code keep}. */
    public List<Long> prune(int keepLast, Set<Long> keep) throws IOException {
        List<Long> versions = versions();
        List<Long> deleted = new ArrayList<>();
        for (int i = 0; i < versions.size() - keepLast; i++) {
            long v = versions.get(i);
            if (!keep.contains(v)) {
                // Renamed first, so that a crash mid-delete leaves a temporary folder, not a broken version.
                Path doomed = root.resolve(TEMPORARY_PREFIX + "deleted-" + v);
                Files.move(folder(v), doomed, StandardCopyOption.ATOMIC_MOVE);
                deleteRecursively(doomed);
                deleted.add(v);
            }
        }
        return deleted;
    }

    public Path folder(long version) {
        return folder(root, version);
    }

    /** Where version {@code version} lives in the store at {@code root}. */
    public static Path folder(Path root, long version) {
        return root.resolve(String.format("v%06d", version));
    }

    // --- promotions ------------------------------------------------------------------------------

    /** The log of promoted versions, one {@code VERSION SHA256} line each, oldest first. */
    public static final String PROMOTIONS = "promotions.log";

    /** A version the trainer promoted, with its manifest hash. */
    public record Promotion(long version, String sha256) {}

    /**
     * Appends a promotion to {@value #PROMOTIONS} (and syncs it): when the promoted checkpoint is
     * damaged later, the trainer and serving fall back to the newest promoted version that still
     * verifies.
     */
    public void recordPromotion(long version, String sha256) throws IOException {
        Path log = root.resolve(PROMOTIONS);
        Files.writeString(log, version + " " + sha256 + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND, StandardOpenOption.WRITE);
        fsync(log);
    }

    /** The promotions recorded in the store at {@code root}, newest first; none when it has no log. */
    public static List<Promotion> promotions(Path root) throws IOException {
        Path log = root.resolve(PROMOTIONS);
        if (!Files.exists(log)) {
            return List.of();
        }
        List<Promotion> out = new ArrayList<>();
        for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
            String[] parts = line.strip().split(" ");
            if (parts.length == 2 && parts[0].matches("\\d+") && parts[1].matches("[0-9a-f]{64}")) {
                out.add(new Promotion(Long.parseLong(parts[0]), parts[1]));
            }   // a torn last line (a crash mid-append) is skipped
        }
        Collections.reverse(out);
        return out;
    }

    /** Whether a version is present and verifies against its manifest (and {@code sha256}, when given). */
    public static boolean verifies(Path root, long version, String sha256) {
        try {
            verify(folder(root, version), sha256);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** A checkpoint whose contents do not match its manifest. */
    public static final class CorruptCheckpointException extends IOException {
        public CorruptCheckpointException(String message) {
            super(message);
        }
    }

    private static String sha256(Path file) throws IOException {
        MessageDigest digest = Binary.sha256Digest();
        try (var in = Files.newInputStream(file)) {
            byte[] buffer = new byte[1 << 16];
            int n;
            while ((n = in.read(buffer)) > 0) {
                digest.update(buffer, 0, n);
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static void fsync(Path path) throws IOException {
        boolean directory = Files.isDirectory(path);
        try (FileChannel channel = FileChannel.open(path, directory ? StandardOpenOption.READ : StandardOpenOption.WRITE)) {
            channel.force(true);
        } catch (IOException e) {
            if (!directory) {
                throw e;   // some file systems refuse to open directories for fsync; files must sync
            }
        }
    }

    private static void deleteRecursively(Path path) throws IOException {
        if (!Files.exists(path)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(path)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
