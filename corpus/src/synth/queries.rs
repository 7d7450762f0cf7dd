//! Real query terms for the synthetic vocabulary (`indexer synth --query-terms FILE`).
//!
//! The generator's own vocabulary is made-up syllable words past ~100 common English
//! words, so real benchmark queries would mostly match nothing. [`QueryTerms`] reads a
//! query file (JSON lines `{"query": "..."}` like `../shared/bench/queries-aol.jsonl`, or
//! plain text, one query a line), splits every query into the tokens the index will
//! produce, and hands the text model two things: the distinct terms, which take the
//! places of syllable words at Zipf ranks spread log-uniformly over
//! [`FIRST_RANK`]..[`LAST_RANK`] (so term queries hit posting lists of realistic
//! lengths), and the distinct multi-word sequences, which the model writes adjacently
//! into prose now and then (so phrase and intersection queries find documents).
//! Everything is a function of the file's content and the seed, never of its line order.

use std::collections::BTreeSet;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The most frequent rank a query term takes (rank 0 is the most frequent word; the
/// common English words sit below this and keep their places).
pub const FIRST_RANK: usize = 100;
/// The rarest rank a query term takes in the log-uniform spread (~30 occurrences in
/// 20,000 pages).
pub const LAST_RANK: usize = 30_000;
/// More distinct terms than this would push ranks past the vocabulary.
pub const MAX_TERMS: usize = 200_000;
/// Tokens longer than this are dropped by the index's tokenizer (tantivy's default).
const MAX_TOKEN_BYTES: usize = 40;

/// The distinct terms and multi-word sequences of a query file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryTerms {
    /// Distinct tokens, sorted.
    terms: Vec<String>,
    /// Distinct token sequences of two or more tokens, sorted.
    phrases: Vec<Vec<String>>,
}

#[derive(Deserialize)]
struct JsonLine {
    query: String,
}

impl QueryTerms {
    /// Reads a query file: JSON lines with a `"query"` string, or plain text.
    pub fn read(path: &Path) -> Result<QueryTerms> {
        // Not `Error::Io`: its source would be printed twice in an error chain.
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        QueryTerms::parse(&text)
            .map_err(|reason| Error::Other(format!("{}: {reason}", path.display())))
    }

    /// Parses the text of a query file; the error names the first bad line (1-based).
    pub fn parse(text: &str) -> std::result::Result<QueryTerms, String> {
        let mut queries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if !line.starts_with('{') {
                queries.push(line.to_string());
                continue;
            }
            let parsed: JsonLine = serde_json::from_str(line).map_err(|e| {
                format!(
                    "line {}: not a {{\"query\": \"...\"}} JSON object: {e}",
                    index + 1
                )
            })?;
            queries.push(parsed.query);
        }
        let terms = QueryTerms::from_queries(queries.iter().map(String::as_str));
        if terms.terms.is_empty() {
            return Err("no query terms (the file is empty or holds no words)".to_string());
        }
        if terms.terms.len() > MAX_TERMS {
            return Err(format!(
                "{} distinct query terms, at most {MAX_TERMS} fit the vocabulary",
                terms.terms.len()
            ));
        }
        Ok(terms)
    }

    /// The terms and sequences of the given queries (query syntax is dropped with the
    /// punctuation: `+a +b`, `"a b"` and `a b` all give the sequence `a b`).
    pub fn from_queries<'a>(queries: impl IntoIterator<Item = &'a str>) -> QueryTerms {
        let mut terms = BTreeSet::new();
        let mut phrases = BTreeSet::new();
        for query in queries {
            let query_tokens = tokens(query);
            terms.extend(query_tokens.iter().cloned());
            if query_tokens.len() >= 2 {
                phrases.insert(query_tokens);
            }
        }
        QueryTerms {
            terms: terms.into_iter().collect(),
            phrases: phrases.into_iter().collect(),
        }
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    pub fn phrases(&self) -> &[Vec<String>] {
        &self.phrases
    }

    /// Vocabulary ranks of the terms not in `taken` (the common words, which keep their
    /// ranks), sorted by rank. In an order shuffled by `seed`, the i-th of n terms aims at
    /// the (i + ½)/n quantile of the log-uniform spread over
    /// [`FIRST_RANK`]..=[`LAST_RANK`] and takes the first free rank from there.
    pub(super) fn placements(&self, seed: u64, taken: &[&str]) -> Vec<(usize, String)> {
        let mut order: Vec<&String> = self
            .terms
            .iter()
            .filter(|term| !taken.contains(&term.as_str()))
            .collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5157_4552_5953_0001));
        let n = order.len() as f64;
        let spread = (LAST_RANK as f64 / FIRST_RANK as f64).ln();
        let mut used = BTreeSet::new();
        let mut placed = Vec::with_capacity(order.len());
        for (i, term) in order.into_iter().enumerate() {
            let quantile = (i as f64 + 0.5) / n;
            let mut rank = (FIRST_RANK as f64 * (quantile * spread).exp()).round() as usize;
            rank = rank.max(taken.len());
            while !used.insert(rank) {
                rank += 1;
            }
            placed.push((rank, term.clone()));
        }
        placed.sort();
        placed
    }

    /// The multi-word sequences joined by spaces, in an order shuffled by `seed` (the
    /// model draws them by Zipf rank in this order).
    pub(super) fn phrase_texts(&self, seed: u64) -> Vec<String> {
        let mut texts: Vec<String> = self.phrases.iter().map(|p| p.join(" ")).collect();
        texts.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5157_4552_5953_0002));
        texts
    }
}

/// The tokens the index makes of `text` (tantivy's `default` tokenizer: split on
/// anything not alphanumeric, lower-cased, tokens over 40 bytes dropped).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN_BYTES)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_lines_and_plain_text_alike() {
        let json = "{\"query\": \"+Griffith +observatory\", \"kind\": \"intersection\"}\n\n\
                    {\"query\": \"\\\"griffith observatory\\\"\", \"kind\": \"phrase\"}\n\
                    {\"query\": \"the\", \"kind\": \"term\"}\n";
        let plain = "griffith observatory\nthe\n";
        let from_json = QueryTerms::parse(json).unwrap();
        assert_eq!(from_json, QueryTerms::parse(plain).unwrap());
        assert_eq!(from_json.terms(), ["griffith", "observatory", "the"]);
        assert_eq!(
            from_json.phrases(),
            [vec!["griffith".to_string(), "observatory".to_string()]]
        );
    }

    #[test]
    fn bad_files_are_errors_naming_the_line() {
        let err = QueryTerms::parse("the\n{\"kind\": \"term\"}\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = QueryTerms::parse("{not json\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
        assert!(QueryTerms::parse("\n  \n\"\" + -\n").is_err());
        let missing = QueryTerms::read(Path::new("/nonexistent/queries.jsonl")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/queries.jsonl"));
    }

    #[test]
    fn tokens_follow_the_index_tokenizer() {
        assert_eq!(
            tokens("Women's \"Health\" +2008"),
            ["women", "s", "health", "2008"]
        );
        assert!(tokens(&"x".repeat(41)).is_empty());
    }

    #[test]
    fn placements_are_spread_distinct_and_skip_taken_words() {
        let queries: Vec<String> = (0..500).map(|i| format!("w{i} the")).collect();
        let terms = QueryTerms::from_queries(queries.iter().map(String::as_str));
        let taken = ["the", "of"];
        let placed = terms.placements(7, &taken);
        assert_eq!(placed.len(), 500, "\"the\" keeps its rank");
        let ranks: BTreeSet<usize> = placed.iter().map(|(rank, _)| *rank).collect();
        assert_eq!(ranks.len(), 500);
        assert!(*ranks.first().unwrap() >= FIRST_RANK);
        assert!(*ranks.last().unwrap() <= LAST_RANK + 500);
        // Log-uniform: about half of the terms below the geometric middle.
        let middle = ((FIRST_RANK * LAST_RANK) as f64).sqrt() as usize;
        let below = ranks.iter().filter(|&&r| r < middle).count();
        assert!((200..300).contains(&below), "{below}");
        assert_eq!(placed, terms.placements(7, &taken));
        assert_ne!(placed, terms.placements(8, &taken));
    }
}
