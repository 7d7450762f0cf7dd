//! The plain-BM25 baseline: the engine as it scored before issue 15, rebuilt from the same
//! dump so both are measured on the same input in the same run. One tantivy index with
//! `title` (boost 2), `body` and `categories`, tantivy's `default` tokenizer, no redirect
//! aliases, no link prior; queries read leniently as the engine reads them.
//!
//! It is also what that engine cost to build, so that `eval --cost` charges the engine
//! only for its relevance: the fields are stored as they were then (title, body, url and
//! categories: the text the snippets are cut from), and the writer gets the engine
//! build's threads and arena. (Until session 19 it stored nothing and wrote with
//! tantivy's default 100 MB: the doc store, a few percent of a build, was charged to the
//! engine's relevance, and the smaller arenas to the baseline.)
//!
//! Its schema is defined here on purpose, not taken from `shard_proto`: the baseline must
//! stay what it was while the engine's schema changes.

use std::path::Path;

use anyhow::Context as _;
use corpus::{OpenOptions, PageEvent, PageKind};
use indexer::build::WriterConfig;
use shard_proto::query::{lenient_to_strict, text_fields};
use tantivy::collector::{Count, TopDocs};
use tantivy::indexer::{IndexWriterOptions, NoMergePolicy};
use tantivy::query::QueryParser;
use tantivy::schema::{
    IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher};

use super::{PageIds, Ranker};

/// Title weight of the baseline (the engine's `TITLE_BOOST` before issue 15).
const TITLE_BOOST: f32 = 2.0;

/// The baseline index, built in a directory the caller owns.
pub struct PlainBm25 {
    searcher: Searcher,
    ids: PageIds,
    parser: QueryParser,
    schema: Schema,
}

impl PlainBm25 {
    /// Indexes every article of `dump` into `dir` (cleaned as the indexer cleans) with
    /// `writer`'s threads and arena (the engine's build's).
    pub fn build(dump: &Path, dir: &Path, writer: WriterConfig) -> anyhow::Result<PlainBm25> {
        let mut builder = Schema::builder();
        let text = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        let id = builder.add_u64_field("id", INDEXED | STORED | FAST);
        let title = builder.add_text_field("title", text.clone());
        let body = builder.add_text_field("body", text.clone());
        let url = builder.add_text_field("url", STORED);
        let categories = builder.add_text_field("categories", text);
        let schema = builder.build();
        let index = Index::create_in_dir(dir, schema.clone())
            .with_context(|| format!("create the baseline index in {}", dir.display()))?;
        let options = IndexWriterOptions::builder()
            .num_worker_threads(writer.threads)
            .memory_budget_per_thread(writer.bytes_per_thread)
            .build();
        let writer: IndexWriter = index.writer_with_options(options)?;
        // Merged once at the end, as the engine's shards are.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        let reader = corpus::open(dump, &OpenOptions::default())
            .with_context(|| format!("open {}", dump.display()))?;
        let site = reader.siteinfo().clone();
        for event in reader {
            let PageEvent::Page(page) = event? else {
                continue;
            };
            if corpus::classify(&page) != PageKind::Article {
                continue;
            }
            let document = corpus::to_document(&page, &site);
            writer.add_document(doc!(
                id => document.id,
                title => document.title,
                body => document.body,
                url => document.url,
                categories => document.categories.join("\n"),
            ))?;
        }
        // One segment, as the engine's shards are (and were before issue 15): a cost per
        // query that grows with the segment count is not the ranking's.
        shard_proto::commit_as_one_segment(&index, writer)?;
        let mut parser = QueryParser::for_index(&index, vec![title, body, categories]);
        parser.set_field_boost(title, TITLE_BOOST);
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        Ok(PlainBm25 {
            ids: PageIds::open(&searcher)?,
            searcher,
            parser,
            schema,
        })
    }
}

impl Ranker for PlainBm25 {
    fn top_ids(&self, query: &str, k: usize) -> anyhow::Result<(Vec<u64>, u64)> {
        let Some(strict) = lenient_to_strict(query, &text_fields(&self.schema)) else {
            return Ok((Vec::new(), 0));
        };
        let parsed = self.parser.parse_query(&strict)?;
        let (top, total) = self.searcher.search(
            &parsed,
            &(TopDocs::with_limit(k.max(1)).order_by_score(), Count),
        )?;
        Ok((self.ids.of(&top), total as u64))
    }

    fn name(&self) -> String {
        "plain BM25".into()
    }
}
