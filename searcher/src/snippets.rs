//! Snippets as every search path cuts them: the nodes' fetch phase and both single-index
//! baselines, so the cluster and what it is compared with do the same work and show the
//! same text.

use tantivy::snippet::SnippetGenerator;

/// The best-matching fragment of the body with matches in `<b>`; when the body has no
/// match (a title-only hit), its opening words instead, so every result has a preview.
pub fn snippet_html(generator: &SnippetGenerator, body: &str, chars: usize) -> String {
    let snippet = generator.snippet(body);
    if !snippet.fragment().is_empty() {
        return snippet.to_html();
    }
    let end = body
        .char_indices()
        .nth(chars)
        .map_or(body.len(), |(i, _)| i);
    escape_html(&body[..end])
}

/// Minimal HTML escaping for text placed in element content or a quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}
