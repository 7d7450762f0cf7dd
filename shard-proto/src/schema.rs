//! The one tantivy schema every shard is built with, its fingerprint, and the query parser
//! configuration shared by the front-end (which parses to validate and to collect terms
//! for global statistics) and the leaves (which parse again to execute).
//!
//! Fields (issue 15): what a page says about itself (`title`, `body`, `categories`) and what the rest of the wiki says about it, gathered by the indexer's
//! link pass: `redirects` (the titles of the redirects to it), `anchors` (the most frequent
//! texts of piped links to it) and `links_in` (how many article links point to it, a fast
//! field for the ranking prior). Each scored text field has its own weight
//! ([`crate::ranking::FIELD_WEIGHTS`]).
//!
//! Title lookup by prefix (the `/suggest` endpoint) and the exact-title boost use two
//! keyword fields, `title_key` and `redirect_keys`: the title (each redirect title) as one
//! term, normalized by [`title_key`] (lower case, words of letters and digits joined by
//! one space), so `O'Brien (film)` is the term `o brien film` and the prefix `o bri`
//! finds it with a term-dictionary range. They use tantivy's built-in `raw` tokenizer
//! (the text is normalized before indexing), so they are not scored by BM25.
//!
//! Tokenizers of the scored fields: Unicode-aware word split, tokens over 40 bytes
//! dropped, lowercased, no stop words; the *name* fields (`title`, `redirects`,
//! `anchors`) are then stemmed by the index's [`Analysis`], while the *text* fields
//! (`body`, `categories`) never are. Measured with `wikisearch eval` (README,
//! "Relevance"): names are where one thing goes by inflected forms (a Greek place name in
//! the genitive, a plural), so stemming them lifted held-out redirects on the Greek sample
//! (MRR 0.624 → 0.668) at no cost; stemming the body as well conflated unrelated words
//! (`universals` with `universe` and `university`) and cost both samples' anchor class
//! (English 0.914 → 0.772). The schema, and so its fingerprint, differs per analysis;
//! [`WikiSchema::from_fingerprint`] finds the one a shard was built with.
//!
//! There is no separate lead-section field (schema version 2 had one, a copy of the
//! body's first section): measured with `wikisearch eval`, dropping it cost nothing on the
//! anchor class (Greek 0.858 → 0.913 MRR) and 0.03 MRR of held-out redirects, and saved a
//! quarter of the CPU per query (README, "Relevance").

use tantivy::query::QueryParser;
use tantivy::schema::Document;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
};
use tantivy::{Index, IndexWriter};

use crate::analysis::{self, Analysis};
use crate::ranking::FIELD_WEIGHTS;

/// Bumped whenever the fields, their options or the tokenizer change.
pub const SCHEMA_VERSION: u32 = 3;
/// The tokenizer of the text fields, and of every field under the plain analysis (how
/// the query limits count a phrase's words).
pub const TOKENIZER: &str = "default";
/// The tokenizer of the keyword fields: one term per value, normalized beforehand.
pub const KEY_TOKENIZER: &str = "raw";
/// Longest key kept, in bytes (titles are at most 255 bytes; longer values are cut at a
/// char boundary so a term never exceeds tantivy's limit).
pub const MAX_KEY_BYTES: usize = 300;

/// Handles to the schema's fields.
#[derive(Clone, Copy, Debug)]
pub struct SchemaFields {
    /// Page id from the dump (u64, indexed, stored, fast).
    pub id: Field,
    /// Article title (text with positions, stored).
    pub title: Field,
    /// Clean article text (text with positions for phrases and snippets, stored).
    pub body: Field,
    /// Article URL (stored only).
    pub url: Field,
    /// Category names (text, stored).
    pub categories: Field,
    /// Titles of the redirects to the article (text with positions, stored, one value
    /// each).
    pub redirects: Field,
    /// The most frequent anchor texts of links to the article (text with positions).
    pub anchors: Field,
    /// [`title_key`] of the title (keyword).
    pub title_key: Field,
    /// [`title_key`] of each redirect title (keyword, one value each).
    pub redirect_keys: Field,
    /// Incoming article links (u64, fast, stored).
    pub links_in: Field,
}

/// The schema plus its field handles and fingerprint.
#[derive(Clone)]
pub struct WikiSchema {
    pub schema: Schema,
    pub fields: SchemaFields,
    /// How the scored text fields are cut into terms.
    pub analysis: Analysis,
}

impl WikiSchema {
    /// The schema with the plain analysis.
    pub fn new() -> Self {
        Self::with_analysis(Analysis::Plain)
    }

    /// Builds the schema. Field order is part of the format: `Term`s embed field ids, and
    /// every analysis has the same fields.
    pub fn with_analysis(analysis: Analysis) -> Self {
        let mut builder = Schema::builder();
        let scored = |tokenizer: &str| {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
        };
        let (name, text) = (scored(analysis.tokenizer()), scored(TOKENIZER));
        let key = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(KEY_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic),
        );
        let id = builder.add_u64_field("id", INDEXED | STORED | FAST);
        let title = builder.add_text_field("title", name.clone().set_stored());
        let body = builder.add_text_field("body", text.clone().set_stored());
        let url = builder.add_text_field("url", STORED);
        let categories = builder.add_text_field("categories", text.set_stored());
        let redirects = builder.add_text_field("redirects", name.clone().set_stored());
        let anchors = builder.add_text_field("anchors", name);
        let title_key = builder.add_text_field("title_key", key.clone());
        let redirect_keys = builder.add_text_field("redirect_keys", key);
        let links_in = builder.add_u64_field("links_in", STORED | FAST);
        WikiSchema {
            schema: builder.build(),
            fields: SchemaFields {
                id,
                title,
                body,
                url,
                categories,
                redirects,
                anchors,
                title_key,
                redirect_keys,
                links_in,
            },
            analysis,
        }
    }

    /// The schema `index` was built with, if it is this one under some analysis.
    pub fn of_index(index: &tantivy::Index) -> Option<Self> {
        let built = index.schema();
        Analysis::ALL
            .into_iter()
            .map(Self::with_analysis)
            .find(|schema| schema.schema == built)
    }

    /// The schema whose [`WikiSchema::fingerprint`] is `fingerprint`, if any analysis has it.
    pub fn from_fingerprint(fingerprint: &str) -> Option<Self> {
        Analysis::ALL
            .into_iter()
            .map(Self::with_analysis)
            .find(|schema| schema.fingerprint() == fingerprint)
    }

    /// The text fields that carry BM25 statistics (what `total_num_tokens` is asked for),
    /// in the order of [`FIELD_WEIGHTS`].
    pub fn scored_fields(&self) -> [Field; 5] {
        let f = &self.fields;
        [f.title, f.redirects, f.anchors, f.body, f.categories]
    }

    /// `v<version>-<first 16 hex of blake3(schema json)>`: a shard whose manifest carries
    /// another fingerprint is refused.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(&self.schema).expect("a schema always serializes");
        let hash = blake3::hash(&json).to_hex();
        format!("v{SCHEMA_VERSION}-{}", &hash.as_str()[..16])
    }
}

impl Default for WikiSchema {
    fn default() -> Self {
        Self::new()
    }
}

/// Commits `writer` and merges everything it wrote into one segment, waiting for the
/// merge: the layout of every shard (and of any index measured against one, so a cost
/// per segment is never charged to one side only).
pub fn commit_as_one_segment<D: Document>(
    index: &Index,
    mut writer: IndexWriter<D>,
) -> tantivy::Result<()> {
    writer.commit()?;
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    writer.wait_merging_threads()
}

/// The query parser both the front-end and the leaves use: searches every scored field
/// with its weight; terms are OR-ed unless marked `+`, like Lucene's classic parser.
pub fn query_parser(schema: &WikiSchema) -> QueryParser {
    weighted_query_parser(schema, &FIELD_WEIGHTS)
}

/// [`query_parser`] with other field weights (in the order of
/// [`WikiSchema::scored_fields`]), for tuning: a field weighted 0 or less is not searched
/// at all, so what dropping it saves can be measured.
pub fn weighted_query_parser(schema: &WikiSchema, weights: &[f32; 5]) -> QueryParser {
    let weighted: Vec<(Field, f32)> = schema
        .scored_fields()
        .into_iter()
        .zip(*weights)
        .filter(|(_, weight)| *weight > 0.0)
        .collect();
    let fields = weighted.iter().map(|(field, _)| *field).collect();
    let mut parser = QueryParser::new(schema.schema.clone(), fields, analysis::tokenizers());
    for (field, weight) in weighted {
        parser.set_field_boost(field, weight);
    }
    parser
}

/// The schema and the [`query_parser`] of every [`Analysis`]: a query is parsed as the
/// shards it runs on were analyzed (front-ends and nodes alike).
pub struct ParsersByAnalysis([(WikiSchema, QueryParser); Analysis::ALL.len()]);

impl Default for ParsersByAnalysis {
    fn default() -> Self {
        ParsersByAnalysis(Analysis::ALL.map(|analysis| {
            let schema = WikiSchema::with_analysis(analysis);
            let parser = query_parser(&schema);
            (schema, parser)
        }))
    }
}

impl ParsersByAnalysis {
    /// The schema and parser of `analysis`.
    pub fn get(&self, analysis: Analysis) -> (&WikiSchema, &QueryParser) {
        let (schema, parser) = &self.0[analysis.index()];
        (schema, parser)
    }
}

/// The keyword form of a title, a redirect title or what a person typed: lower case,
/// the words (runs of letters and digits, as the `default` tokenizer cuts them) joined by
/// one space, at most [`MAX_KEY_BYTES`]. `"O'Brien  (film)"` -> `"o brien film"`.
pub fn title_key(text: &str) -> String {
    let mut key = String::with_capacity(text.len().min(MAX_KEY_BYTES));
    let mut gap = false;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            gap = !key.is_empty();
            continue;
        }
        let before = key.len();
        if gap {
            key.push(' ');
            gap = false;
        }
        key.extend(c.to_lowercase());
        if key.len() > MAX_KEY_BYTES {
            key.truncate(before);
            break;
        }
    }
    key
}

/// The key a typed prefix is looked up with among the `title_key` / `redirect_keys`
/// terms: its [`title_key`], plus one space when the text ends between words (`"new "`,
/// `"o'"`), because the person has finished that word: `"new "` suggests `New York` but
/// not `Newark`. Empty when nothing searchable was typed.
pub fn prefix_key(typed: &str) -> String {
    let mut key = title_key(typed);
    let ends_between_words = typed
        .chars()
        .next_back()
        .is_some_and(|c| !c.is_alphanumeric());
    if !key.is_empty() && ends_between_words && key.len() < MAX_KEY_BYTES {
        key.push(' ');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_keys_keep_a_finished_word_finished() {
        assert_eq!(prefix_key("New"), "new");
        assert_eq!(prefix_key("New "), "new ");
        assert_eq!(prefix_key("O'"), "o ");
        assert_eq!(prefix_key("O'Bri"), "o bri");
        assert_eq!(prefix_key("  "), "");
        assert_eq!(prefix_key("?!"), "");
        let long = "word ".repeat(200);
        assert!(prefix_key(&long).len() <= MAX_KEY_BYTES);
    }

    #[test]
    fn fingerprint_is_stable_within_a_build() {
        assert_eq!(
            WikiSchema::new().fingerprint(),
            WikiSchema::new().fingerprint()
        );
        assert!(WikiSchema::new().fingerprint().starts_with("v3-"));
    }

    #[test]
    fn each_analysis_has_its_own_fingerprint_and_is_found_by_it() {
        let fingerprints: Vec<String> = Analysis::ALL
            .into_iter()
            .map(|analysis| WikiSchema::with_analysis(analysis).fingerprint())
            .collect();
        for (analysis, fingerprint) in Analysis::ALL.into_iter().zip(&fingerprints) {
            let found = WikiSchema::from_fingerprint(fingerprint).expect("known");
            assert_eq!(found.analysis, analysis);
            assert_eq!(fingerprints.iter().filter(|f| *f == fingerprint).count(), 1);
        }
        assert!(WikiSchema::from_fingerprint("v2-0000000000000000").is_none());
        // The plain analysis is the schema shards were built with before analyses: they
        // keep their fingerprint and stay servable.
        assert_eq!(fingerprints[0], WikiSchema::new().fingerprint());
    }

    #[test]
    fn a_query_is_parsed_with_the_analysis_of_its_schema() {
        let english = WikiSchema::with_analysis(Analysis::English);
        let parsed = query_parser(&english).parse_query("running").unwrap();
        let mut terms = std::collections::BTreeMap::new();
        parsed.query_terms(&mut |term, _| {
            terms.insert(term.field(), term.value().as_str().map(String::from));
        });
        let f = &english.fields;
        for (field, stemmed) in [(f.title, true), (f.anchors, true), (f.body, false)] {
            let expected = if stemmed { "run" } else { "running" };
            assert_eq!(terms[&field].as_deref(), Some(expected), "{terms:?}");
        }
    }

    #[test]
    fn title_keys_are_lowercase_words() {
        assert_eq!(title_key("O'Brien  (film)"), "o brien film");
        assert_eq!(title_key("  Ελλάδα!"), "ελλάδα");
        assert_eq!(title_key("AC/DC"), "ac dc");
        assert_eq!(title_key("?!"), "");
        let long = "word ".repeat(200);
        assert!(title_key(&long).len() <= MAX_KEY_BYTES);
        assert!(!title_key(&long).ends_with(' '));
    }

    #[test]
    fn parser_accepts_benchmark_syntax_and_rejects_garbage() {
        let schema = WikiSchema::new();
        let parser = query_parser(&schema);
        for q in [
            "the",
            "+griffith +observatory",
            "\"griffith observatory\"",
            "a b",
            "redirects:usa",
        ] {
            parser.parse_query(q).unwrap();
        }
        assert!(parser.parse_query("title:(").is_err());
        assert!(parser.parse_query("nosuchfield:x").is_err());
    }
}
