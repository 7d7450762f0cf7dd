//! Snippets as every search path cuts them: the nodes' fetch phase and both single-index
//! baselines, so the cluster and what it is compared with do the same work and show the
//! same text.
//!
//! tantivy's `SnippetGenerator::create` weighs each query term by its document frequency
//! in the searcher it is given, which on a shard is the shard's own: a union query could
//! then highlight another fragment depending on how the corpus was sharded. [`generator`]
//! takes the frequencies from a statistics provider instead, so with global statistics a
//! page looks the same over any number of shards, as one index would show it.

use std::collections::{BTreeMap, BTreeSet};

use tantivy::query::{Bm25StatisticsProvider, Query};
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::{Score, Searcher, Term};

/// `SnippetGenerator::create` for `query` over `field` cutting up to `chars` characters,
/// with term weights `1 / (1 + document frequency)` read from `stats`.
pub fn generator(
    searcher: &Searcher,
    query: &dyn Query,
    field: Field,
    stats: &dyn Bm25StatisticsProvider,
    chars: usize,
) -> tantivy::Result<SnippetGenerator> {
    let mut terms: BTreeSet<Term> = BTreeSet::new();
    query.query_terms(&mut |term, _| {
        if term.field() == field {
            terms.insert(term.clone());
        }
    });
    let mut weights: BTreeMap<String, Score> = BTreeMap::new();
    for term in terms {
        let value = term.value();
        let Some(text) = value.as_str() else {
            continue;
        };
        let doc_freq = stats.doc_freq(&term)?;
        if doc_freq > 0 {
            weights.insert(text.to_string(), 1.0 / (1.0 + doc_freq as Score));
        }
    }
    let tokenizer = searcher.index().tokenizer_for_field(field)?;
    Ok(SnippetGenerator::new(weights, tokenizer, field, chars))
}

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
