//! Benchmark query files: JSON lines `{"query": "...", "kind": "..."}` (the format of
//! `../shared/bench/queries-aol.jsonl`) or plain text, one query a line.
//!
//! Plain lines get a kind inferred from their syntax, the way the shared file labels its
//! queries (`"a b"` phrase, `+a +b` intersection, `a b` union, `a` term), so per-kind
//! figures exist whatever the file. A malformed line is an error naming its line number:
//! a benchmark that silently skipped queries would measure something else.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// One benchmark query and the kind it is reported under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchQuery {
    pub text: String,
    pub kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    query: String,
    #[serde(default)]
    kind: Option<String>,
}

/// Reads and parses a query file.
pub fn load(path: &Path) -> Result<Vec<BenchQuery>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text).map_err(|reason| Error::Other(format!("{}: {reason}", path.display())))
}

/// Parses the text of a query file; the error names the first bad line (1-based).
pub fn parse(text: &str) -> std::result::Result<Vec<BenchQuery>, String> {
    let mut queries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let query = parse_line(line).map_err(|reason| format!("line {}: {reason}", index + 1))?;
        queries.push(query);
    }
    if queries.is_empty() {
        return Err("no queries (the file is empty or blank)".to_string());
    }
    Ok(queries)
}

fn parse_line(line: &str) -> std::result::Result<BenchQuery, String> {
    if !line.starts_with('{') {
        return Ok(BenchQuery {
            text: line.to_string(),
            kind: infer_kind(line).to_string(),
        });
    }
    let parsed: JsonLine = serde_json::from_str(line)
        .map_err(|e| format!("not a {{\"query\", \"kind\"}} JSON object: {e}"))?;
    let text = parsed.query.trim();
    if text.is_empty() {
        return Err("empty \"query\"".to_string());
    }
    let kind = match parsed.kind {
        Some(kind) if !kind.trim().is_empty() => kind.trim().to_string(),
        Some(_) => return Err("empty \"kind\"".to_string()),
        None => infer_kind(text).to_string(),
    };
    Ok(BenchQuery {
        text: text.to_string(),
        kind,
    })
}

/// The kind of a query from its syntax, with the names the shared query file uses.
pub fn infer_kind(query: &str) -> &'static str {
    let query = query.trim();
    if query.starts_with('"') && query.ends_with('"') && query.len() > 1 {
        "phrase"
    } else if query.split_whitespace().any(|word| word.starts_with('+')) {
        "intersection"
    } else if query.split_whitespace().nth(1).is_some() {
        "union"
    } else {
        "term"
    }
}

/// What a search box sends for suggestions while each query is typed: every prefix of
/// it, one a keystroke (from its first character to the whole query, blanks trimmed,
/// repeats kept: a popular query is typed more often), reported by length (`1-2 chars`,
/// `3-5 chars`, `6+ chars`: short prefixes match the most titles and cost the most).
pub fn typed_prefixes(queries: &[BenchQuery]) -> Vec<BenchQuery> {
    let mut prefixes = Vec::new();
    for query in queries {
        let text = query.text.trim();
        for (chars, (at, c)) in text.char_indices().enumerate() {
            let prefix = &text[..at + c.len_utf8()];
            if c.is_whitespace() {
                continue; // the same request as the prefix before, plus a blank
            }
            let kind = match chars + 1 {
                1..=2 => "1-2 chars",
                3..=5 => "3-5 chars",
                _ => "6+ chars",
            };
            prefixes.push(BenchQuery {
                text: prefix.to_string(),
                kind: kind.to_string(),
            });
        }
    }
    prefixes
}

/// The distinct kinds of a query list, in order of first appearance, and each query's
/// index into that list (what the recorders are keyed by).
pub fn kind_table(queries: &[BenchQuery]) -> (Vec<String>, Vec<usize>) {
    let mut kinds: Vec<String> = Vec::new();
    let mut ids = Vec::with_capacity(queries.len());
    for query in queries {
        let id = match kinds.iter().position(|k| *k == query.kind) {
            Some(id) => id,
            None => {
                kinds.push(query.kind.clone());
                kinds.len() - 1
            }
        };
        ids.push(id);
    }
    (kinds, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_prefixes_are_one_a_keystroke() {
        let query = |text: &str| BenchQuery {
            text: text.into(),
            kind: "union".into(),
        };
        let typed = typed_prefixes(&[query(" new yé "), query("a")]);
        let texts: Vec<&str> = typed.iter().map(|q| q.text.as_str()).collect();
        assert_eq!(texts, ["n", "ne", "new", "new y", "new yé", "a"]);
        let kinds: Vec<&str> = typed.iter().map(|q| q.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "1-2 chars",
                "1-2 chars",
                "3-5 chars",
                "3-5 chars",
                "6+ chars",
                "1-2 chars"
            ]
        );
    }

    #[test]
    fn parses_json_lines_and_plain_text() {
        let text = "{\"query\": \"the\", \"kind\": \"term\"}\n\n\
                    {\"query\": \"+a +b\"}\n\
                    griffith observatory\n\
                    \"griffith observatory\"\n";
        let queries = parse(text).unwrap();
        let got: Vec<(&str, &str)> = queries
            .iter()
            .map(|q| (q.text.as_str(), q.kind.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("the", "term"),
                ("+a +b", "intersection"),
                ("griffith observatory", "union"),
                ("\"griffith observatory\"", "phrase"),
            ]
        );
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let err = parse("the\n{\"query\": \"a\"}\n{\"query\": 3}\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        let err = parse("a\n\n{\"kind\": \"term\"}\n").unwrap_err();
        assert!(err.starts_with("line 3:") && err.contains("query"), "{err}");
        let err = parse("{\"query\": \"  \"}").unwrap_err();
        assert!(err.starts_with("line 1:") && err.contains("empty"), "{err}");
        let err = parse("{\"query\": \"a\", \"kind\": \"term\", \"x\": 1}").unwrap_err();
        assert!(
            err.starts_with("line 1:") && err.contains("unknown field"),
            "{err}"
        );
        let err = parse("{\"query\": \"a\"").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(parse("").unwrap_err().contains("no queries"));
        assert!(parse("\n  \n").unwrap_err().contains("no queries"));
    }

    #[test]
    fn shared_query_file_parses_with_its_four_kinds() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/bench/queries-aol.jsonl"
        );
        let queries = load(Path::new(path)).unwrap();
        assert_eq!(queries.len(), 898);
        let (kinds, ids) = kind_table(&queries);
        assert_eq!(kinds, ["term", "intersection", "phrase", "union"]);
        assert_eq!(ids.iter().filter(|&&id| id == 1).count(), 299);
        // The shared file's labels agree with what the syntax says.
        for query in &queries {
            assert_eq!(infer_kind(&query.text), query.kind, "{}", query.text);
        }
    }
}
