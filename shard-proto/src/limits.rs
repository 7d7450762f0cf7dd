//! Query limits: what a search may cost, checked by the front-end and again by every
//! node (a node never trusts its caller), so that no single request can crash a process
//! or pin a cluster's CPUs.
//!
//! Two checks, in order:
//! - [`QueryLimits::check_text`] on the raw query string, *before* tantivy parses it:
//!   the byte length, then the nesting depth by a linear scan (tantivy's grammar is
//!   recursive descent, and 8,000 nested parentheses overflow a 2 MiB thread stack, which
//!   aborts the process: no `catch_unwind` can help), then the shape of the grammar's
//!   syntax tree: clauses, phrase length and slop, range clauses, `exists` on a field that
//!   is not a fast field.
//! - [`QueryLimits::check_query`] on the parsed query: the number of term clauses after
//!   the parser expanded every word over the default fields (what execution costs).
//!
//! [`QueryLimits::check_window`] bounds `from + size` (every shard must produce that many
//! hits). Every refusal is an [`Error::QueryLimit`] (or [`Error::ExistsNeedsFastField`]) naming the limit, its value and what
//! the query had, which both processes answer with a 400. The defaults are sized from
//! the cost cases on a 100k-article cluster (a 1,000-term sloppy phrase, 1,300
//! distinct terms, 1,000 nested groups each cost seconds of CPU per shard); a cluster file
//! overrides them in its `[limits]` table.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tantivy::query::Query;
use tantivy::query_grammar::{self, Delimiter, UserInputAst, UserInputLeaf, UserInputLiteral};
use tantivy::schema::Schema;
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

use crate::error::{Error, Result};
use crate::schema::{WikiSchema, TOKENIZER};

/// The limits of one search, as configured in the cluster file's `[limits]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Longest query string, in bytes.
    pub max_query_bytes: usize,
    /// Deepest nesting of parentheses and `NOT`s.
    pub max_depth: usize,
    /// Most nodes of the query's syntax tree (words, phrases, ranges, groups).
    pub max_clauses: usize,
    /// Most term clauses after each word is expanded over the default fields.
    pub max_terms: usize,
    /// Most words in one phrase.
    pub max_phrase_terms: usize,
    /// Largest phrase slop (`"a b"~N`).
    pub max_slop: u32,
    /// Most range clauses (each one scans a field's terms and ORs their postings).
    pub max_ranges: usize,
    /// Deepest hit that can be asked for: `from + size` at most this.
    pub max_window: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_query_bytes: 4096,
            max_depth: 32,
            max_clauses: 256,
            max_terms: 192,
            max_phrase_terms: 16,
            max_slop: 16,
            max_ranges: 4,
            max_window: 10_000,
        }
    }
}

/// One limit exceeded: `found` is what the query had.
fn exceeded(limit: &'static str, max: u64, found: u64, what: &str) -> Error {
    Error::QueryLimit {
        limit,
        max,
        found,
        what: what.to_string(),
    }
}

impl QueryLimits {
    /// Checks a raw query string; safe to call on any input (linear time, no recursion
    /// deeper than `max_depth` once the depth check passed).
    pub fn check_text(&self, text: &str) -> Result<()> {
        self.check_bytes(text)?;
        self.at_most(
            "max_depth",
            self.max_depth,
            nesting_depth(text),
            "nesting depth",
        )?;
        self.check_shape(text)
    }

    /// The shape checks of [`QueryLimits::check_text`] without its length and depth
    /// checks: for text whose nesting is known to be flat (the lenient reading's strict
    /// rewrite quotes every piece of text) and whose length was checked before a rewrite.
    pub fn check_shape(&self, text: &str) -> Result<()> {
        let (ast, _errors) = query_grammar::parse_query_lenient(text);
        let mut shape = Shape::default();
        shape.visit(&ast);
        self.at_most("max_clauses", self.max_clauses, shape.clauses, "clauses")?;
        self.at_most("max_ranges", self.max_ranges, shape.ranges, "range clauses")?;
        self.at_most(
            "max_terms",
            self.max_terms,
            shape.set_terms,
            "terms in sets",
        )?;
        let phrase = "words in one phrase";
        self.at_most(
            "max_phrase_terms",
            self.max_phrase_terms,
            shape.longest_phrase,
            phrase,
        )?;
        if shape.largest_slop > self.max_slop {
            let found = u64::from(shape.largest_slop);
            return Err(exceeded(
                "max_slop",
                self.max_slop.into(),
                found,
                "phrase slop",
            ));
        }
        match shape.exists_on_slow_field {
            Some(field) => Err(Error::ExistsNeedsFastField(field)),
            None => Ok(()),
        }
    }

    /// Checks the query string's length in bytes.
    pub fn check_bytes(&self, text: &str) -> Result<()> {
        self.at_most(
            "max_query_bytes",
            self.max_query_bytes,
            text.len(),
            "query length in bytes",
        )
    }

    /// Checks a parsed query: its term clauses, counted after the parser expanded each
    /// word over the default fields.
    pub fn check_query(&self, query: &dyn Query) -> Result<()> {
        let mut terms = 0usize;
        query.query_terms(&mut |_, _| terms += 1);
        self.at_most(
            "max_terms",
            self.max_terms,
            terms,
            "term clauses (words × default fields)",
        )
    }

    /// Checks how deep a page asks: `from + size`.
    pub fn check_window(&self, from: usize, size: usize) -> Result<()> {
        let window = from.saturating_add(size);
        self.at_most("max_window", self.max_window, window, "from + size")
    }

    fn at_most(&self, limit: &'static str, max: usize, found: usize, what: &str) -> Result<()> {
        match found <= max {
            true => Ok(()),
            false => Err(exceeded(limit, max as u64, found as u64, what)),
        }
    }

    /// Refuses settings that would make every search fail or no limit hold.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let zero = [
            ("max_query_bytes", self.max_query_bytes),
            ("max_depth", self.max_depth),
            ("max_clauses", self.max_clauses),
            ("max_terms", self.max_terms),
            ("max_phrase_terms", self.max_phrase_terms),
            ("max_window", self.max_window),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, value)| *value == 0) {
            return Err(format!("limits: {name} must be at least 1"));
        }
        // Past this tantivy's grammar may exhaust a 2 MiB thread stack (see the module docs).
        const SAFE_DEPTH: usize = 256;
        if self.max_depth > SAFE_DEPTH {
            return Err(format!("limits: max_depth must be at most {SAFE_DEPTH}"));
        }
        Ok(())
    }
}

/// How deep tantivy's recursive-descent grammar would recurse on `text`, over-estimated
/// where unsure: every `(` opens a level and so does every `NOT` before an operand (the
/// grammar recurses into `NOT`'s operand). Quoted text is skipped, as the grammar reads it
/// as a phrase, but a `)` is only trusted to close a level outside quotes, so a stray quote
/// can make the estimate larger, never smaller than the truth, with one exception the
/// second count covers: parentheses that the scanner thinks are quoted but tantivy does
/// not. The result is the larger of the quote-aware count and a count of all unescaped
/// `(` minus the `)` that close them, ignoring quotes.
pub fn nesting_depth(text: &str) -> usize {
    quote_aware_depth(text).max(quote_blind_depth(text))
}

fn quote_aware_depth(text: &str) -> usize {
    let mut deepest = 0usize;
    let mut open = 0usize;
    let mut nots = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
            word.push('\\');
            continue;
        }
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() || c == '(' || c == ')' || c == '"' || c == '\'' {
            // A finished word: `NOT` opens a level for its operand, any other ends a chain.
            match word.as_str() {
                "NOT" => nots += 1,
                "" => {}
                _ => nots = 0,
            }
            word.clear();
        } else {
            word.push(c);
        }
        match c {
            '(' => {
                open += 1;
                deepest = deepest.max(open + nots);
                nots = 0;
            }
            ')' => open = open.saturating_sub(1),
            '"' | '\'' => {
                quote = Some(c);
                nots = 0;
            }
            _ => {}
        }
        deepest = deepest.max(open + nots);
    }
    deepest
}

fn quote_blind_depth(text: &str) -> usize {
    let mut deepest = 0usize;
    let mut open = 0usize;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '(' => {
                open += 1;
                deepest = deepest.max(open);
            }
            ')' => open = open.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// What [`QueryLimits::check_text`] measures on the grammar's syntax tree.
#[derive(Default)]
struct Shape {
    clauses: usize,
    ranges: usize,
    set_terms: usize,
    longest_phrase: usize,
    largest_slop: u32,
    exists_on_slow_field: Option<String>,
}

impl Shape {
    /// Recursion here is as deep as the tree, bounded by the nesting check that ran
    /// before the tree was built.
    fn visit(&mut self, ast: &UserInputAst) {
        self.clauses += 1;
        match ast {
            UserInputAst::Clause(children) => {
                for (_, child) in children {
                    self.visit(child);
                }
            }
            UserInputAst::Boost(inner, _) => self.visit(inner),
            UserInputAst::Leaf(leaf) => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, leaf: &UserInputLeaf) {
        match leaf {
            UserInputLeaf::Literal(literal) => self.literal(literal),
            UserInputLeaf::Range { .. } => self.ranges += 1,
            UserInputLeaf::Set { elements, .. } => self.set_terms += elements.len(),
            UserInputLeaf::Exists { field } if !is_fast_field(field) => {
                self.exists_on_slow_field
                    .get_or_insert_with(|| field.clone());
            }
            UserInputLeaf::Exists { .. } | UserInputLeaf::All | UserInputLeaf::Regex { .. } => {}
        }
    }

    fn literal(&mut self, literal: &UserInputLiteral) {
        if literal.delimiter == Delimiter::None {
            return;
        }
        self.largest_slop = self.largest_slop.max(literal.slop);
        self.longest_phrase = self.longest_phrase.max(word_count(&literal.phrase));
    }
}

/// Whether `field` names a fast field of the schema (an unknown field is left to the
/// parser, which refuses it with its own message).
fn is_fast_field(field: &str) -> bool {
    let schema: &Schema = &schema().schema;
    match schema.get_field(field) {
        Ok(f) => schema.get_field_entry(f).is_fast(),
        Err(_) => true,
    }
}

fn schema() -> &'static WikiSchema {
    static SCHEMA: OnceLock<WikiSchema> = OnceLock::new();
    SCHEMA.get_or_init(WikiSchema::new)
}

/// The words of a phrase as the schema's tokenizer splits them.
fn word_count(phrase: &str) -> usize {
    static ANALYZER: OnceLock<Option<TextAnalyzer>> = OnceLock::new();
    let analyzer = ANALYZER.get_or_init(|| TokenizerManager::default().get(TOKENIZER));
    match analyzer {
        Some(analyzer) => {
            let mut analyzer = analyzer.clone();
            let mut stream = analyzer.token_stream(phrase);
            let mut words = 0;
            while stream.advance() {
                words += 1;
            }
            words
        }
        // Without the tokenizer (it is built in, so never), whitespace is a fair stand-in.
        None => phrase.split_whitespace().count(),
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
