package io.flywheel.ingest;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * One document given as a JSON object: its text and, when the producer gave one, its id. The CLI's
 * JSON Lines input and the HTTP gateway read documents with the same rules, so that a line the CLI
 * accepts is also a body the gateway accepts.
 *
 * @param text    the document, never blank
 * @param givenId the producer's id, or {@code null} (then the id is derived: {@link io.flywheel.core.records.DocumentIds})
 */
public record JsonDocument(String text, String givenId) {

    /** A JSON value that is not a document; the message says which rule it broke. */
    public static final class Invalid extends Exception {
        public Invalid(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * Reads {@code textField} (a non-blank string) and {@code idField} (optional: a non-empty string
     * or an integer) from {@code node}.
     */
    public static JsonDocument from(JsonNode node, String textField, String idField) throws Invalid {
        if (node == null || !node.isObject()) {
            throw new Invalid("not a JSON object");
        }
        JsonNode value = node.get(textField);
        if (value == null || value.isNull()) {
            throw new Invalid("no \"" + textField + "\" field");
        }
        if (!value.isTextual()) {
            throw new Invalid("\"" + textField + "\" is not a string");
        }
        if (value.asText().isBlank()) {
            throw new Invalid("empty document");
        }
        JsonNode id = node.get(idField);
        String givenId = null;
        if (id != null && !id.isNull()) {
            if (!(id.isTextual() || id.isIntegralNumber()) || id.asText().isBlank()) {
                throw new Invalid("\"" + idField + "\" must be a non-empty string or an integer");
            }
            givenId = id.asText();
        }
        return new JsonDocument(value.asText(), givenId);
    }
}
