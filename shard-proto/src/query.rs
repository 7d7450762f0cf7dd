//! Reading what a person typed: a lenient reading by default, tantivy's strict syntax on
//! request. The front-end and every node parse with [`parse`] (a node never trusts the
//! query its caller validated).
//!
//! The lenient reading is Elasticsearch's `simple_query_string` idea: nothing a person
//! types is an error. It keeps the operators people mean — `+word` (required), `-word`
//! (excluded), `"a phrase"`, `field:word` for a real text field, and the upper-case
//! `AND`, `OR`, `NOT` between words — and reads everything else as text: an apostrophe
//! (`O'Brien`), a colon after a word that is not a field (`what is: anarchism?`), an
//! unbalanced quote (`"natural science`), an operator with nothing to apply to (`a OR`,
//! `+`, `-`), brackets, wildcards, URLs, emoji. It is implemented as a rewrite into the
//! strict syntax where every piece of text is a quoted literal, then parsed by the one
//! [`QueryParser`]: both readings share the parser's fields, boosts and tokenizers, and a
//! lenient query scores exactly as its strict equivalent would.
//!
//! A word the tokenizer splits (`O'Brien` → `o`, `brien`) becomes a phrase, which is
//! what tantivy's own parser does for such a word. A query of only exclusions (`-spam`)
//! matches every other document, as in Elasticsearch; a query with no searchable text at
//! all (`!!!`, an emoji) matches nothing.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::QueryLimits;
use tantivy::query::{EmptyQuery, Query, QueryParser};
use tantivy::schema::{FieldType, Schema};

/// How a query's text is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Syntax {
    /// What a person typed: never an error (see the module docs).
    #[default]
    Lenient,
    /// tantivy's query language as is: a syntax error is the caller's error.
    Strict,
}

impl Syntax {
    /// Reads the `syntax` parameter of the public API.
    pub fn from_param(text: &str) -> Option<Syntax> {
        match text {
            "lenient" => Some(Syntax::Lenient),
            "strict" => Some(Syntax::Strict),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Syntax::Lenient => "lenient",
            Syntax::Strict => "strict",
        }
    }
}

/// Parses `text` with `parser` in the given syntax. Only [`Syntax::Strict`] can fail to
/// parse ([`Error::BadQuery`]).
pub fn parse(
    parser: &QueryParser,
    schema: &Schema,
    text: &str,
    syntax: Syntax,
) -> Result<Box<dyn Query>> {
    match strict_text(schema, text, syntax) {
        Some(strict) => parse_strict(parser, &strict),
        None => Ok(Box::new(EmptyQuery)),
    }
}

/// Parses `text` as [`parse`] does, within `limits` ([`Error::QueryLimit`] or
/// [`Error::ExistsNeedsFastField`] otherwise): what the front-end and every node call on
/// a query from outside. The length is checked on the text as typed, everything else on
/// the strict text tantivy parses, before it parses it (its grammar recurses as deep as
/// the query nests), then the term clauses of the parsed query.
pub fn parse_within(
    parser: &QueryParser,
    schema: &Schema,
    text: &str,
    syntax: Syntax,
    limits: &QueryLimits,
) -> Result<Box<dyn Query>> {
    limits.check_bytes(text)?;
    let parsed = match syntax {
        Syntax::Strict => {
            limits.check_text(text)?;
            parse_strict(parser, text)?
        }
        // The rewrite quotes every piece of text and writes no parentheses: flat.
        Syntax::Lenient => match strict_text(schema, text, syntax) {
            Some(strict) => {
                limits.check_shape(&strict)?;
                parse_strict(parser, &strict)?
            }
            None => return Ok(Box::new(EmptyQuery)),
        },
    };
    limits.check_query(parsed.as_ref())?;
    Ok(parsed)
}

/// The strict query string tantivy parses for `text`, `None` when nothing can match.
fn strict_text(schema: &Schema, text: &str, syntax: Syntax) -> Option<String> {
    match syntax {
        Syntax::Strict => Some(text.to_string()),
        Syntax::Lenient => lenient_to_strict(text, &text_fields(schema)),
    }
}

fn parse_strict(parser: &QueryParser, strict: &str) -> Result<Box<dyn Query>> {
    parser
        .parse_query(strict)
        .map_err(|e| Error::BadQuery(format!("query does not parse: {e}")))
}

/// Names of the schema's indexed text fields: what `name:` may address leniently.
pub fn text_fields(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .filter(|(_, entry)| {
            matches!(entry.field_type(), FieldType::Str(options) if options.get_indexing_options().is_some())
        })
        .map(|(_, entry)| entry.name().to_string())
        .collect()
}

/// Whether a clause must, may or must not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Occur {
    Should,
    Must,
    MustNot,
}

/// One piece of the lenient reading: text (a word or a phrase) with its operator and
/// optional field.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Clause {
    occur: Occur,
    field: Option<String>,
    text: String,
}

/// A lexed piece: a clause, or an upper-case boolean word still to be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Clause(Clause),
    And,
    Or,
    Not,
}

/// The lenient reading of `text` as a strict query string in which every piece of text is
/// a quoted literal, or `None` when nothing in it can match (no letter or digit).
pub fn lenient_to_strict(text: &str, fields: &[String]) -> Option<String> {
    if text.trim() == "*" {
        // A lone star asks for every document, as Elasticsearch and Quickwit read it.
        return Some("*".into());
    }
    let clauses = apply_boolean_words(lex(text, fields));
    let clauses: Vec<Clause> = clauses
        .into_iter()
        .filter(|c| c.text.chars().any(char::is_alphanumeric))
        .collect();
    if clauses.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 8 * clauses.len());
    if clauses.iter().all(|c| c.occur == Occur::MustNot) {
        // Only exclusions: everything but them, as Elasticsearch reads `-word`.
        out.push('*');
    }
    for clause in &clauses {
        if !out.is_empty() {
            out.push(' ');
        }
        match clause.occur {
            Occur::Should => {}
            Occur::Must => out.push('+'),
            Occur::MustNot => out.push('-'),
        }
        if let Some(field) = &clause.field {
            let _ = write!(out, "{field}:");
        }
        out.push('"');
        out.push_str(&quoted_content(&clause.text));
        out.push('"');
    }
    Some(out)
}

/// Text safe inside a strict double-quoted literal: `"` and `\` are the only characters
/// the grammar reads there, and neither is part of a token, so they become spaces.
fn quoted_content(text: &str) -> String {
    text.chars()
        .map(|c| if c == '"' || c == '\\' { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits the text into pieces: operators only at the start of a piece, a quote opens a
/// phrase only at the start of a piece and only if it is closed later.
fn lex(text: &str, fields: &[String]) -> Vec<Piece> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        if chars[pos].is_whitespace() {
            pos += 1;
            continue;
        }
        let mut occur = Occur::Should;
        while pos < chars.len() && (chars[pos] == '+' || chars[pos] == '-') {
            // `+-a` or `--a`: the first sign counts.
            if occur == Occur::Should {
                occur = if chars[pos] == '+' {
                    Occur::Must
                } else {
                    Occur::MustNot
                };
            }
            pos += 1;
        }
        let (piece, next) = read_piece(&chars, pos, occur, fields);
        pos = next;
        pieces.extend(piece);
    }
    pieces
}

/// Reads one piece at `pos` (just after its operator): a phrase, `field:` text, or a word.
fn read_piece(
    chars: &[char],
    pos: usize,
    occur: Occur,
    fields: &[String],
) -> (Option<Piece>, usize) {
    if pos >= chars.len() || chars[pos].is_whitespace() {
        // An operator alone.
        return (None, pos);
    }
    if chars[pos] == '"' {
        if let Some(len) = chars[pos + 1..].iter().position(|&c| c == '"') {
            let text: String = chars[pos + 1..pos + 1 + len].iter().collect();
            let clause = Clause {
                occur,
                field: None,
                text,
            };
            return (Some(Piece::Clause(clause)), pos + len + 2);
        }
        // An unbalanced quote is text: read what follows it as words.
        return read_piece(chars, pos + 1, occur, fields);
    }
    let end = chars[pos..]
        .iter()
        .position(|c| c.is_whitespace())
        .map_or(chars.len(), |len| pos + len);
    let word: String = chars[pos..end].iter().collect();
    if occur == Occur::Should {
        match word.as_str() {
            "AND" | "&&" => return (Some(Piece::And), end),
            "OR" | "||" => return (Some(Piece::Or), end),
            "NOT" => return (Some(Piece::Not), end),
            _ => {}
        }
    }
    if let Some((name, rest)) = word.split_once(':') {
        if fields.iter().any(|f| f == name) {
            return read_field_value(chars, pos + name.chars().count() + 1, occur, name, rest);
        }
    }
    let clause = Clause {
        occur,
        field: None,
        text: word,
    };
    (Some(Piece::Clause(clause)), end)
}

/// After `field:`: a closed phrase or a word in that field; nothing (`title:` alone) is
/// the field's name read as a word.
fn read_field_value(
    chars: &[char],
    pos: usize,
    occur: Occur,
    field: &str,
    rest_of_word: &str,
) -> (Option<Piece>, usize) {
    let in_field = |text: String| Clause {
        occur,
        field: Some(field.to_string()),
        text,
    };
    if rest_of_word.starts_with('"') {
        if let Some(len) = chars[pos + 1..].iter().position(|&c| c == '"') {
            let text: String = chars[pos + 1..pos + 1 + len].iter().collect();
            return (Some(Piece::Clause(in_field(text))), pos + len + 2);
        }
    }
    let end = pos + rest_of_word.chars().count();
    let clause = match rest_of_word.chars().any(char::is_alphanumeric) {
        true => in_field(rest_of_word.to_string()),
        false => Clause {
            occur,
            field: None,
            text: format!("{field} {rest_of_word}"),
        },
    };
    (Some(Piece::Clause(clause)), end)
}

/// Applies `AND` (both neighbours required), `NOT` (the next excluded) and `OR` (the
/// default); one with nothing to apply to is dropped.
fn apply_boolean_words(pieces: Vec<Piece>) -> Vec<Clause> {
    let mut clauses: Vec<Clause> = Vec::new();
    let mut pending_and = false;
    let mut pending_not = false;
    for piece in pieces {
        match piece {
            Piece::Or => pending_and = false,
            Piece::Not => pending_not = true,
            Piece::And => {
                if let Some(last) = clauses.last_mut() {
                    if last.occur == Occur::Should {
                        last.occur = Occur::Must;
                    }
                    pending_and = true;
                }
            }
            Piece::Clause(mut clause) => {
                if pending_not {
                    clause.occur = Occur::MustNot;
                } else if pending_and && clause.occur == Occur::Should {
                    clause.occur = Occur::Must;
                }
                pending_and = false;
                pending_not = false;
                clauses.push(clause);
            }
        }
    }
    clauses
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{query_parser, WikiSchema};

    fn rewrite(text: &str) -> Option<String> {
        let schema = WikiSchema::new();
        lenient_to_strict(text, &text_fields(&schema.schema))
    }

    #[test]
    fn operators_people_mean_keep_their_meaning() {
        let cases = [
            ("anarchism", r#""anarchism""#),
            ("+a +b", r#"+"a" +"b""#),
            ("a -b", r#""a" -"b""#),
            (r#""natural science" x"#, r#""natural science" "x""#),
            (r#"+"natural science""#, r#"+"natural science""#),
            ("title:albedo", r#"title:"albedo""#),
            (r#"title:"red dwarf""#, r#"title:"red dwarf""#),
            ("a AND b", r#"+"a" +"b""#),
            ("a OR b", r#""a" "b""#),
            ("a NOT b", r#""a" -"b""#),
            ("-spam", r#"* -"spam""#),
            (" * ", "*"),
        ];
        for (typed, expected) in cases {
            assert_eq!(rewrite(typed).as_deref(), Some(expected), "{typed}");
        }
    }

    #[test]
    fn everything_else_is_text() {
        let cases = [
            ("O'Brien", r#""O'Brien""#),
            ("what is: anarchism?", r#""what" "is:" "anarchism?""#),
            (r#""natural science"#, r#""natural" "science""#),
            ("a OR", r#""a""#),
            ("AND a", r#""a""#),
            ("nosuchfield:x", r#""nosuchfield:x""#),
            ("title:", r#""title""#),
            (r#"12" pizza"#, r#""12" "pizza""#),
            (r#"back\slash"#, r#""back slash""#),
            ("(a", r#""(a""#),
            ("a~2 b^3 c*", r#""a~2" "b^3" "c*""#),
        ];
        for (typed, expected) in cases {
            assert_eq!(rewrite(typed).as_deref(), Some(expected), "{typed}");
        }
    }

    #[test]
    fn nothing_searchable_is_no_query() {
        for typed in ["", "   ", "+", "-", "\"", "OR", "!!!", "🦀", "+ - \" ()"] {
            assert_eq!(rewrite(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn every_awkward_query_parses_leniently_and_strict_errors_stay_errors() {
        let schema = WikiSchema::new();
        let parser = query_parser(&schema);
        let awkward = awkward_queries();
        assert!(awkward.len() >= 100);
        for typed in &awkward {
            let parsed = parse(&parser, &schema.schema, typed, Syntax::Lenient);
            assert!(parsed.is_ok(), "{typed:?}: {parsed:?}");
        }
        for typed in ["title:(", "nosuchfield:x", "\"natural science", "a OR"] {
            assert!(parse(&parser, &schema.schema, typed, Syntax::Strict).is_err());
        }
    }

    #[test]
    fn every_awkward_query_is_within_the_default_limits_and_hostile_ones_are_not() {
        let schema = WikiSchema::new();
        let parser = query_parser(&schema);
        let limits = QueryLimits::default();
        let within =
            |typed: &str, syntax| parse_within(&parser, &schema.schema, typed, syntax, &limits);
        for typed in &awkward_queries() {
            let parsed = within(typed, Syntax::Lenient);
            assert!(parsed.is_ok(), "{typed:?}: {parsed:?}");
        }
        let deep = format!("{}a{}", "(".repeat(2000), ")".repeat(2000));
        let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
        let words = words.join(" ");
        let hostile = [
            (deep.as_str(), Syntax::Strict, "max_depth"),
            (r#""a b"~100000"#, Syntax::Strict, "max_slop"),
            (words.as_str(), Syntax::Lenient, "max_clauses"),
            (words.as_str(), Syntax::Strict, "max_clauses"),
        ];
        for (typed, syntax, limit) in hostile {
            let refused = match within(typed, syntax) {
                Ok(_) => panic!("{syntax:?} {typed:.40} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(refused.contains(limit), "{refused}");
        }
        // Parentheses a person typed are text in the lenient reading, never nesting.
        assert!(within(&deep, Syntax::Lenient).is_ok());
    }

    /// What people type into search boxes (and what breaks strict parsers); the
    /// integration and browser tests send the same list through the real front-end.
    fn awkward_queries() -> Vec<String> {
        serde_json::from_str(include_str!("../../tests/data/awkward-queries.json")).unwrap()
    }
}
