package io.flywheel.core.serde;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flywheel.core.records.CheckpointEvent;
import io.flywheel.core.records.Feedback;
import io.flywheel.core.records.PreferenceRecord;
import io.flywheel.core.records.RawText;
import io.flywheel.core.records.RejectedText;
import io.flywheel.core.records.ResponseRecord;
import io.flywheel.core.records.Split;
import io.flywheel.core.records.TokenRecord;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.kafka.common.serialization.Serde;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RecordCodecTest {

    static final String SHA = "a".repeat(64);
    static final String SHA2 = "0123456789abcdef".repeat(4);

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Decoding {@code json} fails and names {@code field}. */
    private static void rejects(Codec<?> codec, String json, String field, String problemFragment) {
        RecordFormatException e = assertThrows(RecordFormatException.class, () -> codec.decode(utf8(json)));
        assertEquals(field, e.field(), e.getMessage());
        assertTrue(e.problem().contains(problemFragment), e.getMessage());
    }

    // ------------------------------------------------------------------ RawText

    @Test
    void rawTextRoundTrips() {
        RawText r = new RawText("doc-1", "files", "Hello, wörld 😀\n", 1_700_000_000_000L, Map.of("lang", "de"));
        assertEquals(r, RawText.CODEC.decode(RawText.CODEC.encode(r)));
        RawText empty = new RawText("d", "s", "", 0, Map.of());
        assertEquals(empty, RawText.CODEC.decode(RawText.CODEC.encode(empty)));
    }

    @Test
    void rawTextWithoutMetaHasEmptyMeta() {
        RawText r = RawText.CODEC.decode(utf8("{\"id\":\"x\",\"source\":\"s\",\"text\":\"t\",\"ts\":5}"));
        assertEquals(Map.of(), r.meta());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"source\":\"s\",\"text\":\"t\",\"ts\":1}|id|is missing",
            "{\"id\":null,\"source\":\"s\",\"text\":\"t\",\"ts\":1}|id|is null",
            "{\"id\":\"  \",\"source\":\"s\",\"text\":\"t\",\"ts\":1}|id|must not be blank",
            "{\"id\":7,\"source\":\"s\",\"text\":\"t\",\"ts\":1}|id|must be a string",
            "{\"id\":\"x\",\"source\":\"s\",\"ts\":1}|text|is missing",
            "{\"id\":\"x\",\"source\":\"s\",\"text\":[\"t\"],\"ts\":1}|text|must be a string",
            "{\"id\":\"x\",\"source\":\"s\",\"text\":\"t\"}|ts|is missing",
            "{\"id\":\"x\",\"source\":\"s\",\"text\":\"t\",\"ts\":\"yesterday\"}|ts|must be an integer",
            "{\"id\":\"x\",\"source\":\"s\",\"text\":\"t\",\"ts\":1.5}|ts|must be an integer",
            "{\"id\":\"x\",\"source\":\"s\",\"text\":\"t\",\"ts\":-1}|ts|must be >= 0",
            "{\"id\":\"x\",\"source\":\"s\",\"text\":\"t\",\"ts\":1,\"meta\":{\"k\":1}}|meta.k|must be a string",
            "{\"id\":\"x\",\"source\":\"s\",\"text\":\"t\",\"ts\":1,\"meta\":[]}|meta|must be a JSON object",
            "{\"id\":\"x\",\"source\":\"s\",\"txt\":\"t\",\"text\":\"t\",\"ts\":1}|txt|is not a known field",
            "[1,2]|record|must be a JSON object",
            "{\"id\":\"x\",|record|not valid JSON",
            "{\"id\":\"x\",\"id\":\"y\",\"source\":\"s\",\"text\":\"t\",\"ts\":1}|record|not valid JSON",
    })
    void rawTextRejectsMalformedInput(String json, String field, String problem) {
        rejects(RawText.CODEC, json, field, problem);
    }

    @Test
    void rawTextRejectsInvalidUtf8AndEmptyBytes() {
        byte[] bad = utf8("{\"id\":\"x\",\"source\":\"s\",\"text\":\"AB\",\"ts\":1}");
        bad[bad.length - 11] = (byte) 0xC3; // 'A' becomes a lone lead byte before 'B'
        RecordFormatException e = assertThrows(RecordFormatException.class, () -> RawText.CODEC.decode(bad));
        assertEquals("record", e.field());
        assertEquals("record", assertThrows(RecordFormatException.class, () -> RawText.CODEC.decode(new byte[0])).field());
    }

    // ------------------------------------------------------------------ RejectedText

    @Test
    void rejectedTextKeepsOriginalBytesExactly() {
        RejectedText utf = new RejectedText("malformed", "text: is missing", utf8("{\"id\":\"x\"}"));
        byte[] utfJson = RejectedText.CODEC.encode(utf);
        assertTrue(new String(utfJson, StandardCharsets.UTF_8).contains("\"original\":"));
        assertEquals(utf, RejectedText.CODEC.decode(utfJson));

        byte[] binary = new byte[256];
        for (int i = 0; i < binary.length; i++) {
            binary[i] = (byte) i;
        }
        RejectedText bin = new RejectedText("malformed", "not valid UTF-8", binary);
        byte[] binJson = RejectedText.CODEC.encode(bin);
        assertTrue(new String(binJson, StandardCharsets.UTF_8).contains("\"original_base64\":"));
        assertArrayEquals(binary, RejectedText.CODEC.decode(binJson).original());
    }

    @Test
    void rejectedTextNeedsExactlyOneOriginal() {
        rejects(RejectedText.CODEC, "{\"reason\":\"r\",\"detail\":\"d\"}", "original", "exactly one");
        rejects(RejectedText.CODEC, "{\"reason\":\"r\",\"detail\":\"d\",\"original\":\"a\",\"original_base64\":\"YQ==\"}",
                "original", "exactly one");
        rejects(RejectedText.CODEC, "{\"reason\":\"r\",\"detail\":\"d\",\"original_base64\":\"***\"}", "original_base64", "base64");
        rejects(RejectedText.CODEC, "{\"detail\":\"d\",\"original\":\"a\"}", "reason", "is missing");
    }

    // ------------------------------------------------------------------ TokenRecord

    @Test
    void tokenRecordRoundTripsAllIdSizes() {
        int[] ids = {0, 1, 127, 128, 16383, 16384, 200_000, Integer.MAX_VALUE};
        for (Split split : Split.values()) {
            TokenRecord r = new TokenRecord(SHA2, split, ids);
            assertEquals(r, TokenRecord.CODEC.decode(TokenRecord.CODEC.encode(r)));
        }
        TokenRecord empty = new TokenRecord(SHA, Split.TRAIN, new int[0]);
        assertEquals(empty, TokenRecord.CODEC.decode(TokenRecord.CODEC.encode(empty)));
        // Compact: small ids take one byte each after a 35-byte header.
        assertEquals(1 + 32 + 1 + 1 + 100, TokenRecord.CODEC.encode(new TokenRecord(SHA, Split.TRAIN, new int[100])).length);
    }

    @Test
    void tokenRecordRandomRoundTrips() {
        SplittableRandom r = new SplittableRandom(42);
        for (int i = 0; i < 200; i++) {
            int[] ids = r.ints(r.nextInt(500), 0, 200_000).toArray();
            TokenRecord t = new TokenRecord(SHA2, r.nextBoolean() ? Split.TRAIN : Split.VALIDATION, ids);
            assertEquals(t, TokenRecord.CODEC.decode(TokenRecord.CODEC.encode(t)));
        }
    }

    @Test
    void tokenRecordRejectsCorruptBytes() {
        byte[] good = TokenRecord.CODEC.encode(new TokenRecord(SHA, Split.TRAIN, new int[] {1, 300, 5}));
        byte[] version = good.clone();
        version[0] = 9;
        assertEquals("version", assertThrows(RecordFormatException.class, () -> TokenRecord.CODEC.decode(version)).field());
        byte[] split = good.clone();
        split[33] = 7;
        assertEquals("split", assertThrows(RecordFormatException.class, () -> TokenRecord.CODEC.decode(split)).field());
        byte[] truncated = Arrays.copyOf(good, good.length - 1);
        assertEquals("ids[2]", assertThrows(RecordFormatException.class, () -> TokenRecord.CODEC.decode(truncated)).field());
        byte[] trailing = Arrays.copyOf(good, good.length + 1);
        assertTrue(assertThrows(RecordFormatException.class, () -> TokenRecord.CODEC.decode(trailing)).problem().contains("trailing"));
        byte[] hugeLength = Arrays.copyOf(good, 39);
        hugeLength[34] = (byte) 0xFF;
        hugeLength[35] = (byte) 0xFF;
        hugeLength[36] = (byte) 0xFF;
        hugeLength[37] = (byte) 0xFF;
        hugeLength[38] = (byte) 0x07;
        assertEquals("ids", assertThrows(RecordFormatException.class, () -> TokenRecord.CODEC.decode(hugeLength)).field());
        assertEquals("version", assertThrows(RecordFormatException.class, () -> TokenRecord.CODEC.decode(new byte[0])).field());
        assertThrows(RecordFormatException.class, () -> new TokenRecord("not-a-sha", Split.TRAIN, new int[0]));
    }

    // ------------------------------------------------------------------ PreferenceRecord

    @Test
    void preferenceRecordRoundTripsBothKinds() {
        PreferenceRecord pair = PreferenceRecord.pair(SHA, new int[] {1, 2, 3}, new int[] {4, 5}, new int[] {6});
        assertEquals(pair, PreferenceRecord.CODEC.decode(PreferenceRecord.CODEC.encode(pair)));
        PreferenceRecord sft = PreferenceRecord.supervised(SHA2, new int[] {}, new int[] {70_000});
        assertEquals(sft, PreferenceRecord.CODEC.decode(PreferenceRecord.CODEC.encode(sft)));
    }

    @Test
    void preferenceRecordRejectsInconsistentShapes() {
        assertEquals("rejected", assertThrows(RecordFormatException.class,
                () -> PreferenceRecord.pair(SHA, new int[] {1}, new int[] {2}, new int[0])).field());
        assertEquals("chosen", assertThrows(RecordFormatException.class,
                () -> PreferenceRecord.supervised(SHA, new int[] {1}, new int[0])).field());
        byte[] good = PreferenceRecord.CODEC.encode(PreferenceRecord.pair(SHA, new int[] {1}, new int[] {2}, new int[] {3}));
        byte[] kind = good.clone();
        kind[33] = 5;
        assertEquals("kind", assertThrows(RecordFormatException.class, () -> PreferenceRecord.CODEC.decode(kind)).field());
        byte[] cut = Arrays.copyOf(good, good.length - 2);
        assertTrue(assertThrows(RecordFormatException.class, () -> PreferenceRecord.CODEC.decode(cut)).field().startsWith("rejected"));
    }

    // ------------------------------------------------------------------ ResponseRecord

    @Test
    void responseRecordRoundTripsAndRejects() {
        ResponseRecord r = new ResponseRecord("chatcmpl-1", 3, "<|user|>hi<|end|>", "hello", 1000);
        assertEquals(r, ResponseRecord.CODEC.decode(ResponseRecord.CODEC.encode(r)));
        rejects(ResponseRecord.CODEC, "{\"id\":\"x\",\"prompt\":\"p\",\"completion\":\"c\",\"ts\":1}", "model_version", "is missing");
        rejects(ResponseRecord.CODEC, "{\"id\":\"x\",\"model_version\":-2,\"prompt\":\"p\",\"completion\":\"c\",\"ts\":1}",
                "model_version", ">= 0");
    }

    // ------------------------------------------------------------------ Feedback

    @Test
    void feedbackRoundTripsBothShapes() {
        Feedback rating = new Feedback.Rating("chatcmpl-1", -1, "u1", "too long", 5);
        assertEquals(rating, Feedback.CODEC.decode(Feedback.CODEC.encode(rating)));
        Feedback cmp = new Feedback.Comparison("a", "b", null, null, 6);
        assertEquals(cmp, Feedback.CODEC.decode(Feedback.CODEC.encode(cmp)));
        assertEquals("a", cmp.key());
        assertEquals("chatcmpl-1", rating.key());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"response_id\":\"r\",\"rating\":2,\"ts\":1}|rating|must be 1 or -1",
            "{\"response_id\":\"r\",\"rating\":\"up\",\"ts\":1}|rating|must be an integer",
            "{\"rating\":1,\"ts\":1}|response_id|is missing",
            "{\"chosen_id\":\"a\",\"ts\":1}|rejected_id|is missing",
            "{\"chosen_id\":\"a\",\"rejected_id\":\"a\",\"ts\":1}|rejected_id|must differ",
            "{\"response_id\":\"r\",\"rating\":1,\"chosen_id\":\"a\",\"rejected_id\":\"b\",\"ts\":1}|record|either",
            "{\"ts\":1}|record|either",
            "{\"response_id\":\"r\",\"rating\":1,\"ts\":1,\"stars\":5}|stars|is not a known field",
    })
    void feedbackRejectsMalformedInput(String json, String field, String problem) {
        rejects(Feedback.CODEC, json, field, problem);
    }

    // ------------------------------------------------------------------ CheckpointEvent

    @Test
    void checkpointEventRoundTrips() {
        CheckpointEvent e = new CheckpointEvent(7, "file:///ckpt/7", SHA, 6L, SHA2, Map.of("val_loss", 1.25, "bpb", 0.9),
                Map.of("flywheel.tokens", Map.of(0, 10L, 1, 20L), "flywheel.preferences", Map.of(0, 3L)));
        assertEquals(e, CheckpointEvent.CODEC.decode(CheckpointEvent.CODEC.encode(e)));
        CheckpointEvent first = new CheckpointEvent(1, "file:///ckpt/1", SHA, null, SHA2, Map.of(), Map.of());
        assertEquals(first, CheckpointEvent.CODEC.decode(CheckpointEvent.CODEC.encode(first)));
    }

    @Test
    void checkpointEventRejectsMalformedInput() {
        String base = "\"uri\":\"u\",\"sha256\":\"" + SHA + "\",\"tokenizer\":\"" + SHA + "\",\"metrics\":{},\"offsets\":{}";
        rejects(CheckpointEvent.CODEC, "{\"version\":1," + base + "}", "parent", "is missing");
        rejects(CheckpointEvent.CODEC, "{\"version\":0,\"parent\":null," + base + "}", "version", ">= 1");
        rejects(CheckpointEvent.CODEC, "{\"version\":1,\"parent\":null," + base.replace(SHA + "\",\"tokenizer", "abc\",\"tokenizer") + "}",
                "sha256", "64 hex");
        rejects(CheckpointEvent.CODEC, "{\"version\":1,\"parent\":null," + base.replace("\"offsets\":{}", "\"offsets\":{\"t\":{\"x\":1}}") + "}",
                "offsets.t.x", "partition must be an integer");
        rejects(CheckpointEvent.CODEC, "{\"version\":1,\"parent\":null," + base.replace("\"offsets\":{}", "\"offsets\":{\"t\":{\"0\":-5}}") + "}",
                "offsets.t.0", ">= 0");
        rejects(CheckpointEvent.CODEC, "{\"version\":1,\"parent\":null," + base.replace("\"metrics\":{}", "\"metrics\":{\"loss\":\"low\"}") + "}",
                "metrics.loss", "must be a number");
    }

    // ------------------------------------------------------------------ Kafka serde

    @Test
    void serdeKeepsTombstonesAndWrapsTheCodec() {
        Serde<CheckpointEvent> serde = CheckpointEvent.CODEC.serde();
        assertNull(serde.serializer().serialize("t", null));
        assertNull(serde.deserializer().deserialize("t", null));
        CheckpointEvent e = new CheckpointEvent(1, "u", SHA, null, SHA, Map.of(), Map.of());
        assertEquals(e, serde.deserializer().deserialize("t", serde.serializer().serialize("t", e)));
        assertThrows(org.apache.kafka.common.errors.SerializationException.class,
                () -> serde.deserializer().deserialize("t", utf8("{}")));
    }
}
