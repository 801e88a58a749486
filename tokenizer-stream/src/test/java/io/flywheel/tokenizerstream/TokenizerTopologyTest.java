package io.flywheel.tokenizerstream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.records.RawText;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import io.flywheel.core.testing.MixedText;
import io.flywheel.core.records.DocumentIds;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.test.TestRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class TokenizerTopologyTest {

    private StreamHarness stream = new StreamHarness();

    @AfterEach
    void close() {
        stream.close();
    }

    private void use(String... settings) {
        stream.close();
        stream = new StreamHarness(settings);
    }

    private static final String PROSE = "The quick brown fox jumps over the lazy dog near the river bank.";

    // --- parse ---------------------------------------------------------------------------------

    @Test
    void cleanDocumentBecomesTokensKeyedByIdWithTheTokenizerId() {
        stream.send("doc-1", PROSE);
        List<KeyValue<String, TokenRecord>> out = stream.tokens();
        assertEquals(1, out.size());
        assertEquals("doc-1", out.get(0).key);
        assertEquals(StreamHarness.TOKENIZER.id(), out.get(0).value.tokenizerId());
        assertArrayEquals(StreamHarness.TOKENIZER.encode(PROSE), out.get(0).value.ids());
        assertTrue(stream.rejected().isEmpty());
    }

    @Test
    void malformedJsonIsRejectedWithTheOriginalBytes() {
        byte[] value = "{\"id\": \"x\", \"text\": ".getBytes(StandardCharsets.UTF_8);
        stream.send("x", value);
        RejectedText r = stream.single();
        assertEquals("malformed", r.reason());
        assertArrayEquals(value, r.original());
    }

    @Test
    void aPlainProducersShapesAreAcceptedWithTheRecordFillingTheGaps() {
        // Five different texts (not near-duplicates of each other).
        String one = PROSE;
        String two = "Rain fell all night on the old stone bridge, and by morning the road was a river.";
        String three = "She counted the boats in the harbour twice before writing the number in her notebook.";
        String four = "Bread rises faster in a warm kitchen, which is why bakers start before the sun is up.";
        String five = "Every winter the geese fly south over the valley in long, noisy lines shaped like arrows.";
        Headers headers = new RecordHeaders().add("source", "crawler-7".getBytes(StandardCharsets.UTF_8));
        // Only text: the id is the key, the source the header, the time the record's.
        stream.sendRecord(new TestRecord<>("k-1", "{\"text\":\"%s\"}".formatted(one).getBytes(StandardCharsets.UTF_8), headers,
                Instant.ofEpochMilli(1_700_000_000_000L)));
        // No ts, no key: the given id; or the content hash of the given source and text.
        stream.sendRecord(new TestRecord<>(null, "{\"id\":\"given\",\"source\":\"s\",\"text\":\"%s\"}".formatted(two)
                .getBytes(StandardCharsets.UTF_8)));
        stream.sendRecord(new TestRecord<>(null, "{\"source\":\"s\",\"text\":\"%s\",\"meta\":{\"n\":3,\"ok\":true}}"
                .formatted(three).getBytes(StandardCharsets.UTF_8)));
        // A plain UTF-8 value is one document's text.
        stream.sendRecord(new TestRecord<>("plain-1", four.getBytes(StandardCharsets.UTF_8)));
        stream.sendRecord(new TestRecord<>(null, five.getBytes(StandardCharsets.UTF_8), headers));
        assertTrue(stream.rejected().isEmpty(), () -> stream.rejected().toString());
        List<String> keys = stream.tokens().stream().map(kv -> kv.key).toList();
        assertEquals(List.of("k-1", "given", DocumentIds.of("s", three), "plain-1", DocumentIds.of("crawler-7", five)), keys);
    }

    @Test
    void whatIsReallyWrongIsStillRejectedNamingIt() {
        for (String value : List.of("{\"text\": 5}", "{\"text\":\"x\",\"ts\":\"yesterday\"}", "{\"text\":\"x\",\"id\":\" \"}",
                "{\"text\":\"x\",\"meta\":{\"a\":[1]}}", "{\"text\":\"x\",\"colour\":\"red\"}", "{\"body\":\"x\"}")) {
            stream.sendRecord(new TestRecord<>("k", value.getBytes(StandardCharsets.UTF_8)));
        }
        List<RejectedText> rejected = stream.rejected().stream().map(kv -> kv.value).toList();
        assertEquals(6, rejected.size());
        List<String> named = List.of("text", "ts", "id", "meta.a", "colour", "text");
        for (int i = 0; i < rejected.size(); i++) {
            assertEquals("malformed", rejected.get(i).reason());
            assertTrue(rejected.get(i).detail().contains(named.get(i)), rejected.get(i).detail());
        }
        assertTrue(stream.tokens().isEmpty());
    }

    @Test
    void missingFieldIsRejectedNamingTheField() {
        byte[] value = "{\"id\":\"x\",\"source\":\"s\",\"ts\":1}".getBytes(StandardCharsets.UTF_8);
        stream.send("x", value);
        RejectedText r = stream.single();
        assertEquals("malformed", r.reason());
        assertTrue(r.detail().contains("text"), r.detail());
        assertArrayEquals(value, r.original());
    }

    @Test
    void invalidUtf8IsRejectedWithTheExactBytes() {
        byte[] good = StreamHarness.json("bad", "caf\u00e9 is a word that we spell with an accent");
        String s = new String(good, StandardCharsets.ISO_8859_1);
        int at = s.indexOf("caf") + 3;
        byte[] bad = good.clone();
        bad[at] = (byte) 0xC3;
        bad[at + 1] = (byte) 0x28; // 0xC3 0x28 is not UTF-8
        stream.send("bad", bad);
        RejectedText r = stream.single();
        assertEquals("malformed", r.reason());
        assertArrayEquals(bad, r.original());
    }

    @Test
    void nullValueIsRejected() {
        stream.send("gone", (byte[]) null);
        assertEquals("malformed", stream.single().reason());
    }

    // --- normalize and HTML --------------------------------------------------------------------

    @Test
    void normalizesUnicodeNewlinesControlsAndWhitespace() {
        String text = "\uFEFF  Cafe\u0301 au lait\r\nsecond\u0000 line \t  with   gaps  \r\n\r\n\r\n\r\n    indented\u200B line\u0007 here  \n\n";
        assertEquals("Caf\u00e9 au lait\nsecond line with gaps\n\n    indented line here", stream.clean(text));
    }

    @Test
    void nulBytesAndControlCharactersNeverReachTheTokens() {
        String cleaned = stream.clean("nul\u0000 bytes\u0000\u0000 inside a sentence \u0001\u001f\u007f\u0085ok");
        assertEquals("nul bytes inside a sentence\nok", cleaned);
    }

    @Test
    void unpairedSurrogatesBecomeReplacementCharacters() {
        assertEquals("broken \uFFFD surrogate in the middle", stream.clean("broken \uD800 surrogate in the middle"));
    }

    @Test
    void htmlIsStrippedWithEntitiesDecodedAndScriptsDropped() {
        String html = "<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style></head><body>"
                + "<h1>Fish &amp; Chips</h1>\n<p>Served   hot,\n   with <b>vinegar</b> &mdash; &lt;always&gt;.</p>"
                + "<script>alert('x')</script><ul><li>one</li><li>two</li></ul></body></html>";
        assertEquals("Fish & Chips\n\nServed hot, with vinegar \u2014 <always>.\n\none\ntwo", stream.clean(html));
    }

    @Test
    void htmlIsRecognisedFromMetadataEvenWithoutATagAtTheStart() {
        byte[] value = RawText.CODEC.encode(new RawText("h", "feed",
                "Plain start then <i>italic</i> words &amp; more words here", 1L, Map.of("content_type", "text/html")));
        stream.send("h", value);
        assertEquals("Plain start then italic words & more words here", StreamHarness.TOKENIZER.decode(stream.tokens().get(0).value.ids()));
    }

    @Test
    void textThatMentionsTagsIsNotTreatedAsHtml() {
        String text = "Use a <b> tag to make text bold in old pages.";
        assertEquals(text, stream.clean(text));
    }

    // --- quality filters -----------------------------------------------------------------------

    @Test
    void emptyAndBlankDocumentsAreRejectedAsEmpty() {
        assertEquals("empty", stream.reject("e1", "").reason());
        assertEquals("empty", stream.reject("e2", " \n\t\u0000 \r\n").reason());
        assertEquals("empty", stream.reject("e3", "<html><body><script>x()</script></body></html>").reason());
    }

    @Test
    void lengthBounds() {
        use("filter.min-chars", "10", "filter.max-chars", "40");
        assertEquals("too_short", stream.reject("s", "tiny one").reason());
        RejectedText tooLong = stream.reject("l", "this sentence is definitely longer than forty characters");
        assertEquals("too_long", tooLong.reason());
        assertTrue(tooLong.detail().contains("maximum 40"), tooLong.detail());
        stream.send("ok", "just right for the bounds");
        assertEquals(1, stream.tokens().size());
    }

    @Test
    void lowLetterShareIsRejected() {
        RejectedText r = stream.reject("n", "12 34 56 78 90 12 34 56 78 90 ## %% 11 22 33 44 55");
        assertEquals("low_letter_share", r.reason());
        use("filter.min-letter-share", "0");
        stream.send("n", "12 34 56 78 90 12 34 56 78 90 ## %% 11 22 33 44 55");
        assertEquals(1, stream.tokens().size());
    }

    @Test
    void boilerplateWithRepeatedLinesIsRejected() {
        String menu = "Home\nAbout us\nHome\nAbout us\nHome\nAbout us\nContact the team today";
        assertEquals("repetitive", stream.reject("m", menu).reason());
        String poem = "Row, row, row your boat\nGently down the stream\nMerrily, merrily, merrily, merrily\nLife is but a dream";
        assertEquals(poem, stream.clean(poem));
    }

    @Test
    void blockedTermsMatchWholeWordsCaseInsensitively() {
        use("filter.blocklist", "forbidden, secret plan");
        RejectedText r = stream.reject("b1", "This text has a FORBIDDEN word inside it.");
        assertEquals("blocked_term", r.reason());
        assertTrue(r.detail().contains("forbidden"), r.detail());
        assertEquals("blocked_term", stream.reject("b2", "They talked about the Secret  Plan for hours.").reason());
        assertEquals("Nothing unforbidden or forbiddenly here at all.", stream.clean("Nothing unforbidden or forbiddenly here at all."));
    }

    // --- PII -----------------------------------------------------------------------------------

    @Test
    void personalDataIsReplacedByTypedPlaceholdersAndCounted() {
        String text = "Mail jane.doe+news@example.co.uk or call +44 20 7946 0958 or (555) 123-4567. "
                + "Card 4111 1111 1111 1111 and 4111-1111-1111-1112 (bad checksum). "
                + "Server 192.168.1.20 and 2001:db8::8a2e:370:7334, not 999.1.1.1. "
                + "Key sk-proj-Abc123Def456Ghi789Jkl012 and AKIAIOSFODNN7EXAMPLE plus token "
                + "Zx9Qw3Er7Ty1Ui5Op8As2Df6Gh4Jk0LmNb. Commit 3f786850e387550fdab836ed7e6dc881de23001b stays.";
        String cleaned = stream.clean(text);
        assertEquals("Mail [EMAIL] or call [PHONE] or [PHONE]. "
                + "Card [CARD] and 4111-1111-1111-1112 (bad checksum). "
                + "Server [IP] and [IP], not 999.1.1.1. "
                + "Key [SECRET] and [SECRET] plus token "
                + "[SECRET]. Commit 3f786850e387550fdab836ed7e6dc881de23001b stays.", cleaned);
        assertEquals(1, stream.counter("flywheel_stream_redactions", "type", "email"));
        assertEquals(2, stream.counter("flywheel_stream_redactions", "type", "phone"));
        assertEquals(1, stream.counter("flywheel_stream_redactions", "type", "card"));
        assertEquals(2, stream.counter("flywheel_stream_redactions", "type", "ip"));
        assertEquals(3, stream.counter("flywheel_stream_redactions", "type", "secret"));
    }

    @Test
    void ordinaryNumbersDatesAndCodeAreLeftAlone() {
        String text = "In 2024-01-15 we sold 1234567 units at 3.50 each; version 1.2.3 of std::vector runs at 12:30:45.";
        assertEquals(text, stream.clean(text));
    }

    @Test
    void privateKeyBlocksAreSecrets() {
        String text = "Here is my key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\nthanks a lot";
        assertEquals("Here is my key:\n[SECRET]\nthanks a lot", stream.clean(text));
    }

    @Test
    void redactionCanBeSwitchedOff() {
        use("redact.enabled", "false");
        String text = "Mail jane@example.com for details please";
        assertEquals(text, stream.clean(text));
    }

    // --- dedup ---------------------------------------------------------------------------------

    @Test
    void exactDuplicatesAreRejectedWhateverTheirId() {
        stream.send("a", PROSE);
        stream.send("b", "  " + PROSE.replace(" ", "   ") + "\r\n"); // same after cleaning
        stream.send("a", PROSE);                                      // a re-sent document
        assertEquals(List.of("a"), stream.tokens().stream().map(kv -> kv.key).toList());
        List<KeyValue<String, RejectedText>> r = stream.rejected();
        assertEquals(2, r.size());
        assertEquals("duplicate", r.get(0).value.reason());
        assertTrue(r.get(0).value.detail().contains("document a"), r.get(0).value.detail());
        assertEquals("b", r.get(0).key);
        assertEquals("duplicate", r.get(1).value.reason());
        assertArrayEquals(StreamHarness.json("a", PROSE), r.get(1).value.original());
    }

    @Test
    void nearDuplicatesWithSmallEditsAreRejectedAndDifferentTextsPass() {
        String article = MixedText.generate(7, 3000).replaceAll("[^\\p{L}\\s]", " ");
        String edited = article.substring(0, 1000) + " inserted words " + article.substring(1000, 2000).replaceFirst("\\p{L}+", "changed") + article.substring(2000);
        String other = MixedText.generate(8, 3000).replaceAll("[^\\p{L}\\s]", " ");
        use("filter.min-letter-share", "0", "filter.max-repeated-line-share", "1");
        stream.send("original", article);
        stream.send("edited", edited);
        stream.send("other", other);
        assertEquals(List.of("original", "other"), stream.tokens().stream().map(kv -> kv.key).toList());
        RejectedText r = stream.single();
        assertEquals("near_duplicate", r.reason());
        assertTrue(r.detail().contains("document original"), r.detail());
    }

    @Test
    void nearDedupCanBeSwitchedOff() {
        use("dedup.near.enabled", "false");
        stream.send("a", PROSE + " Once.");
        stream.send("b", PROSE + " Twice.");
        assertEquals(2, stream.tokens().size());
    }

    // --- tokens and split ----------------------------------------------------------------------

    @Test
    void aTenMegabyteDocumentIsTokenizedWhole() {
        use("filter.max-repeated-line-share", "1", "filter.min-letter-share", "0");
        StringBuilder big = new StringBuilder(10_000_000);
        SplittableRandom random = new SplittableRandom(3);
        while (big.length() < 10_000_000) {
            big.append(MixedText.generate(random.nextLong(), 20_000)).append("\n\n");
        }
        String text = big.substring(0, 10_000_000);
        stream.send("big", text);
        List<KeyValue<String, TokenRecord>> out = stream.tokens();
        assertEquals(1, out.size(), () -> "rejected: " + stream.rejected());
        String cleaned = PiiRedactor.redact(TextNormalizer.normalize(text)).text();
        assertTrue(out.get(0).value.ids().length > 1_000_000);
        assertEquals(cleaned, StreamHarness.TOKENIZER.decode(out.get(0).value.ids()));
    }

    @Test
    void splitIsChosenByHashingTheIdWithTheConfiguredShare() {
        use("stream.validation-share", "0.5", "dedup.near.enabled", "false");
        int validation = 0;
        for (int i = 0; i < 200; i++) {
            String id = "doc-" + i;
            stream.send(id, PROSE + " Number " + i + " of the series.");
            TokenRecord t = stream.tokens().get(0).value;
            assertEquals(Split.of(id, 0.5), t.split());
            validation += t.split() == Split.VALIDATION ? 1 : 0;
        }
        assertTrue(validation > 70 && validation < 130, "validation share far from 0.5: " + validation);
    }

    @Test
    void everyRawRecordBecomesExactlyOneOutputAndTheMetricsAgree() {
        stream.send("1", PROSE);
        stream.send("2", PROSE);
        stream.send("3", "{not json".getBytes(StandardCharsets.UTF_8));
        stream.send("4", "");
        stream.send("5", "Another perfectly ordinary sentence about the weather.");
        assertEquals(2, stream.tokens().size());
        assertEquals(3, stream.rejected().size());
        assertEquals(5, stream.counter("flywheel_stream_records_in", null, null));
        assertEquals(2, stream.counter("flywheel_stream_records_out", null, null));
        assertEquals(1, stream.counter("flywheel_stream_records_rejected", "reason", "duplicate"));
        assertEquals(1, stream.counter("flywheel_stream_records_rejected", "reason", "malformed"));
        assertEquals(1, stream.counter("flywheel_stream_records_rejected", "reason", "empty"));
        assertFalse(stream.counter("flywheel_stream_tokens_out", null, null) == 0);
    }
}
