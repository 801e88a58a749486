package io.flywheel.tokenizerstream;

import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.jsoup.Jsoup;
import org.jsoup.nodes.Element;
import org.jsoup.nodes.Node;
import org.jsoup.nodes.TextNode;
import org.jsoup.select.NodeTraversor;
import org.jsoup.select.NodeVisitor;

/**
 * The readable text of an HTML document: markup stripped, entities decoded, scripts and styles
 * dropped, block elements on lines of their own (paragraphs and headings separated by a blank
 * line), whitespace inside {@code <pre>} kept. Parsing is jsoup's, which follows the HTML5 spec.
 */
final class HtmlText {

    private static final Set<String> PARAGRAPHS = Set.of("p", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
            "blockquote", "table", "ul", "ol", "dl", "section", "article", "header", "footer", "figure", "hr");
    private static final Set<String> LINES = Set.of("br", "div", "li", "tr", "dt", "dd", "nav", "aside",
            "main", "form", "fieldset", "address", "caption", "figcaption", "summary", "details", "option");
    private static final Set<String> HIDDEN = Set.of("script", "style", "noscript", "template", "head", "svg", "math");
    private static final Set<String> MARKERS = Set.of("<!doctype html", "<html", "<head", "<body", "<p>", "<p ",
            "<div", "<br", "<span", "<table", "<ul", "<h1", "<h2", "<a href", "<article", "<meta", "<title");

    private HtmlText() {}

    /**
     * Whether to treat the document as HTML: its metadata says so ({@code content_type} or
     * {@code format}), its source is an {@code .html} file, or it starts with an HTML tag.
     */
    static boolean isHtml(String text, String source, Map<String, String> meta) {
        String declared = meta.getOrDefault("content_type", meta.getOrDefault("format", ""));
        if (!declared.isEmpty()) {
            return declared.toLowerCase(Locale.ROOT).contains("html");
        }
        String src = source.toLowerCase(Locale.ROOT);
        if (src.endsWith(".html") || src.endsWith(".htm") || src.endsWith(".xhtml")) {
            return true;
        }
        int i = 0;
        while (i < text.length() && Character.isWhitespace(text.charAt(i))) {
            i++;
        }
        String head = text.substring(i, Math.min(text.length(), i + 16)).toLowerCase(Locale.ROOT);
        for (String marker : MARKERS) {
            if (head.startsWith(marker)) {
                return true;
            }
        }
        return false;
    }

    static String toText(String html) {
        StringBuilder out = new StringBuilder(html.length() / 2);
        NodeTraversor.traverse(new NodeVisitor() {
            int hidden;
            int pre;

            @Override
            public void head(Node node, int depth) {
                if (node instanceof TextNode text) {
                    if (hidden == 0 && pre > 0) {
                        out.append(text.getWholeText());
                    } else if (hidden == 0) {
                        String collapsed = collapse(text.getWholeText());
                        boolean lineStart = out.isEmpty() || out.charAt(out.length() - 1) == '\n';
                        out.append(lineStart ? collapsed.stripLeading() : collapsed);
                    }
                } else if (node instanceof Element element) {
                    String tag = element.normalName();
                    if (HIDDEN.contains(tag)) {
                        hidden++;
                    }
                    if (tag.equals("pre")) {
                        pre++;
                    }
                    breakFor(tag);
                    if (tag.equals("td") || tag.equals("th")) {
                        out.append(' ');
                    }
                }
            }

            @Override
            public void tail(Node node, int depth) {
                if (node instanceof Element element) {
                    String tag = element.normalName();
                    if (HIDDEN.contains(tag)) {
                        hidden--;
                    }
                    if (tag.equals("pre")) {
                        pre--;
                    }
                    breakFor(tag);
                }
            }

            /** Block elements start and end on a line of their own; paragraphs with a blank line. */
            private void breakFor(String tag) {
                int wanted = PARAGRAPHS.contains(tag) ? 2 : LINES.contains(tag) ? 1 : 0;
                int have = 0;
                for (int i = out.length() - 1; i >= 0 && have < wanted; i--) {
                    char c = out.charAt(i);
                    if (c == '\n') {
                        have++;
                    } else if (c != ' ') {
                        break;
                    }
                }
                out.append("\n".repeat(Math.max(0, wanted - have)));
            }
        }, Jsoup.parse(html));
        return out.toString();
    }

    /** HTML source whitespace (line breaks in the markup included) is one space when rendered. */
    private static String collapse(String text) {
        StringBuilder out = new StringBuilder(text.length());
        boolean space = false;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
                if (!space) {
                    out.append(' ');
                }
                space = true;
            } else {
                out.append(c);
                space = false;
            }
        }
        return out.toString();
    }
}
