package io.flywheel.tokenizerstream;

import java.util.Map;

/**
 * A document on its way through the cleaning stages. {@code original} is the raw record value
 * exactly as it arrived: whatever stage rejects the document puts it in the rejected record.
 */
record Document(String id, String source, long ts, Map<String, String> meta, String text, byte[] original) {

    Document withText(String newText) {
        return new Document(id, source, ts, meta, newText, original);
    }
}
