package io.flywheel.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flywheel.core.serde.Binary;
import io.flywheel.core.serde.Json;
import io.flywheel.core.serde.RecordFormatException;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where tokenizers come from and go to.
 *
 * <p><b>Flywheel tokenizer file</b> (what {@code flywheel tokenizer train} writes), JSON:
 * <pre>
 * {"format": "flywheel-bpe", "version": 1, "pattern": "cl100k",
 *  "merges": [[left, right], ...],            // token 256+i is the bytes of left then right
 *  "special_tokens": {"&lt;|endoftext|&gt;": 8187, ...}}
 * </pre>
 * Ids 0-255 are the single bytes 0x00-0xFF. The tokenizer id is the sha256 of the file.
 *
 * <p><b>tiktoken rank files</b> ({@code r50k_base}, {@code cl100k_base}, {@code o200k_base}): one
 * line per token, {@code base64(bytes) rank}. The public ones are read from the jtokkit jar, where
 * they ship as resources; {@link #exportTiktoken} writes ours in the same format.
 */
public final class TokenizerFiles {

    public static final String FORMAT = "flywheel-bpe";
    public static final int VERSION = 1;
    public static final List<String> PUBLIC = List.of("r50k_base", "cl100k_base", "o200k_base");

    private TokenizerFiles() {}

    /** A public vocabulary by name, or a Flywheel tokenizer file by path. */
    public static Tokenizer load(String nameOrPath) throws IOException {
        if (PUBLIC.contains(nameOrPath)) {
            return loadPublic(nameOrPath);
        }
        Path path = Path.of(nameOrPath);
        if (!Files.isRegularFile(path)) {
            throw new IOException("no tokenizer '" + nameOrPath + "': not a readable file, nor one of " + String.join(", ", PUBLIC));
        }
        return read(path.getFileName().toString(), Files.readAllBytes(path));
    }

    public static Tokenizer loadPublic(String name) throws IOException {
        Map<String, Integer> specials = new LinkedHashMap<>();
        PreTokenizer pattern;
        switch (name) {
            case "r50k_base" -> {
                pattern = PreTokenizer.GPT2;
                specials.put("<|endoftext|>", 50256);
            }
            case "cl100k_base" -> {
                pattern = PreTokenizer.CL100K;
                specials.put("<|endoftext|>", 100257);
                specials.put("<|fim_prefix|>", 100258);
                specials.put("<|fim_middle|>", 100259);
                specials.put("<|fim_suffix|>", 100260);
                specials.put("<|endofprompt|>", 100276);
            }
            case "o200k_base" -> {
                pattern = PreTokenizer.O200K;
                specials.put("<|endoftext|>", 199999);
                specials.put("<|endofprompt|>", 200018);
            }
            default -> throw new IOException("unknown public tokenizer '" + name + "' (known: " + String.join(", ", PUBLIC) + ")");
        }
        String resource = "/com/knuddels/jtokkit/" + name + ".tiktoken";
        byte[] file;
        try (InputStream in = com.knuddels.jtokkit.Encodings.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("resource " + resource + " is missing: is jtokkit on the classpath?");
            }
            file = in.readAllBytes();
        }
        return new Tokenizer(name, sha256(file), pattern, readTiktokenRanks(file), specials);
    }

    /** Token bytes by rank from a tiktoken rank file. */
    static byte[][] readTiktokenRanks(byte[] file) throws IOException {
        List<byte[]> byRank = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(new ByteArrayInputStream(file), StandardCharsets.US_ASCII))) {
            String line;
            int lineNo = 0;
            while ((line = in.readLine()) != null) {
                lineNo++;
                if (line.isEmpty()) {
                    continue;
                }
                int space = line.indexOf(' ');
                if (space <= 0) {
                    throw new IOException("tiktoken file line " + lineNo + ": expected 'base64 rank'");
                }
                byte[] bytes = Base64.getDecoder().decode(line.substring(0, space));
                int rank = Integer.parseInt(line.substring(space + 1).trim());
                while (byRank.size() <= rank) {
                    byRank.add(null);
                }
                byRank.set(rank, bytes);
            }
        }
        return byRank.toArray(new byte[0][]);
    }

    /** Parses a Flywheel tokenizer file; the id is the sha256 of exactly these bytes. */
    public static Tokenizer read(String name, byte[] file) {
        Json.Fields f = Json.read(file);
        String format = f.string("format");
        if (!FORMAT.equals(format)) {
            throw new RecordFormatException("format", "expected '" + FORMAT + "', found '" + format + "'");
        }
        long version = f.integer("version");
        if (version != VERSION) {
            throw new RecordFormatException("version", "unsupported tokenizer file version " + version);
        }
        PreTokenizer pattern;
        try {
            pattern = PreTokenizer.byId(f.string("pattern"));
        } catch (IllegalArgumentException e) {
            throw new RecordFormatException("pattern", e.getMessage());
        }
        Json.Fields specialFields = f.object("special_tokens");
        Map<String, Integer> specials = new LinkedHashMap<>();
        for (String spelling : specialFields.fieldNames()) {
            specials.put(spelling, (int) specialFields.nonNegativeInteger(spelling));
        }
        specialFields.done();
        List<byte[]> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(new byte[] {(byte) b});
        }
        JsonNode merges = f.raw("merges");
        if (!merges.isArray()) {
            throw new RecordFormatException("merges", "must be an array of [left, right] pairs");
        }
        for (int i = 0; i < merges.size(); i++) {
            JsonNode pair = merges.get(i);
            String field = "merges[" + i + "]";
            if (!pair.isArray() || pair.size() != 2 || !pair.get(0).isInt() || !pair.get(1).isInt()) {
                throw new RecordFormatException(field, "must be a pair of token ids");
            }
            int left = pair.get(0).intValue();
            int right = pair.get(1).intValue();
            if (left < 0 || right < 0 || left >= tokens.size() || right >= tokens.size()) {
                throw new RecordFormatException(field, "refers to a token that is not defined before it");
            }
            byte[] a = tokens.get(left);
            byte[] b = tokens.get(right);
            byte[] joined = new byte[a.length + b.length];
            System.arraycopy(a, 0, joined, 0, a.length);
            System.arraycopy(b, 0, joined, a.length, b.length);
            tokens.add(joined);
        }
        f.done();
        for (Map.Entry<String, Integer> e : specials.entrySet()) {
            if (e.getValue() < tokens.size()) {
                throw new RecordFormatException("special_tokens." + e.getKey(), "id " + e.getValue() + " collides with an ordinary token");
            }
        }
        try {
            return new Tokenizer(name, sha256(file), pattern, tokens.toArray(new byte[0][]), specials);
        } catch (IllegalArgumentException e) {
            throw new RecordFormatException("merges", e.getMessage());
        }
    }

    /** Serialises a trained vocabulary. Same input, same bytes: the id depends on nothing else. */
    public static byte[] write(PreTokenizer pattern, List<int[]> merges, Map<String, Integer> specials) {
        ObjectNode node = Json.object().put("format", FORMAT).put("version", VERSION).put("pattern", pattern.id());
        ArrayNode array = node.putArray("merges");
        for (int[] m : merges) {
            array.addArray().add(m[0]).add(m[1]);
        }
        ObjectNode sp = node.putObject("special_tokens");
        specials.forEach(sp::put);
        return Json.write(node);
    }

    /** The ordinary tokens in tiktoken's rank format ({@code base64 rank} lines); specials are not part of it. */
    public static byte[] exportTiktoken(Tokenizer tokenizer) {
        StringBuilder out = new StringBuilder();
        Base64.Encoder base64 = Base64.getEncoder();
        for (int id = 0; id < tokenizer.ordinaryCount(); id++) {
            out.append(base64.encodeToString(tokenizer.tokenBytes(id))).append(' ').append(id).append('\n');
        }
        return out.toString().getBytes(StandardCharsets.US_ASCII);
    }

    public static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(Binary.sha256(bytes));
    }
}
