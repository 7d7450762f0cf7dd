//! The one tantivy schema every shard is built with, its fingerprint, and the query parser
//! configuration shared by the front-end (which parses to validate and to collect terms
//! for global statistics) and the leaves (which parse again to execute).
//!
//! Tokenizer: tantivy's built-in `default` (Unicode-aware word split, tokens over 40 bytes
//! dropped, lowercased, no stemming, no stop words). It is what the public
//! tantivy-vs-Lucene benchmark uses, and being built in it cannot be forgotten when an
//! index is reopened (custom tokenizers are not stored in the index).

use tantivy::query::QueryParser;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
};
use tantivy::tokenizer::TokenizerManager;

/// Bumped whenever the fields, their options or the tokenizer change.
pub const SCHEMA_VERSION: u32 = 1;
/// The tokenizer every text field uses (see the module docs).
pub const TOKENIZER: &str = "default";
/// Title matches weigh more than body matches, as in every web search engine.
pub const TITLE_BOOST: f32 = 2.0;

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
}

/// The schema plus its field handles and fingerprint.
#[derive(Clone)]
pub struct WikiSchema {
    pub schema: Schema,
    pub fields: SchemaFields,
}

impl WikiSchema {
    /// Builds the schema. Field order is part of the format: `Term`s embed field ids.
    pub fn new() -> Self {
        let mut builder = Schema::builder();
        let text = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        let id = builder.add_u64_field("id", INDEXED | STORED | FAST);
        let title = builder.add_text_field("title", text.clone());
        let body = builder.add_text_field("body", text.clone());
        let url = builder.add_text_field("url", STORED);
        let categories = builder.add_text_field("categories", text);
        WikiSchema {
            schema: builder.build(),
            fields: SchemaFields {
                id,
                title,
                body,
                url,
                categories,
            },
        }
    }

    /// The text fields that carry BM25 statistics (what `total_num_tokens` is asked for).
    pub fn scored_fields(&self) -> [Field; 3] {
        [self.fields.title, self.fields.body, self.fields.categories]
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

/// The query parser both the front-end and the leaves use: searches title (boosted),
/// body and categories; terms are OR-ed unless marked `+`, like Lucene's classic parser.
pub fn query_parser(schema: &WikiSchema) -> QueryParser {
    let f = &schema.fields;
    let mut parser = QueryParser::new(
        schema.schema.clone(),
        vec![f.title, f.body, f.categories],
        TokenizerManager::default(),
    );
    parser.set_field_boost(f.title, TITLE_BOOST);
    parser
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_within_a_build() {
        assert_eq!(
            WikiSchema::new().fingerprint(),
            WikiSchema::new().fingerprint()
        );
        assert!(WikiSchema::new().fingerprint().starts_with("v1-"));
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
        ] {
            parser.parse_query(q).unwrap();
        }
        assert!(parser.parse_query("title:(").is_err());
        assert!(parser.parse_query("nosuchfield:x").is_err());
    }
}
