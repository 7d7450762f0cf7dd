//! One tantivy index searched in one process: the engine of both baselines (the
//! single-process HTTP server and the in-process loop).
//!
//! It does the same work per query as the cluster does in total: parse with the shared
//! query parser, count the hits and collect the top `from + size` by BM25 (title boosted),
//! read the stored id, title and url of the page's hits, and cut a highlighted snippet
//! from the body. Statistics are the index's own, which for one index holding every
//! document are exactly the global statistics the cluster sends its shards.

use std::path::{Path, PathBuf};

use searcher::model::{Hit, SearchParams};
use shard_proto::manifest::{ShardManifest, MANIFEST_FILE};
use shard_proto::ranking::{LinkColumns, TopRanked};
use shard_proto::{query_parser, WikiSchema};
use tantivy::collector::Count;
use tantivy::query::QueryParser;
use tantivy::schema::Value;
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument};

use crate::error::{Error, Result};
use searcher::snippets::{generator, snippet_html};

/// Longest snippet, in characters: what the front-end asks its nodes for
/// (`frontend::root::SNIPPET_CHARS`), so both do the same work.
pub const SNIPPET_CHARS: usize = searcher::frontend::root::SNIPPET_CHARS as usize;
/// The node name a baseline's hits carry (the public [`Hit`] names where a hit came from).
pub const BASELINE_NODE: &str = "baseline";

/// A results page: the hit count and the page's hits, in the public API's [`Hit`].
#[derive(Clone, Debug, PartialEq)]
pub struct ResultsPage {
    pub total: u64,
    pub hits: Vec<Hit>,
}

/// Why a search gave no page.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is at fault (400): bad query syntax, bad size or from.
    #[error("{0}")]
    BadRequest(String),
    /// The index is at fault (500).
    #[error("{0}")]
    Internal(String),
}

/// An opened index, its pinned searcher and the shared query parser.
pub struct SingleIndex {
    dir: PathBuf,
    // Kept so the searcher's segments stay open for the life of the index.
    _reader: IndexReader,
    searcher: Searcher,
    /// Opened once, as a serving replica opens them.
    links: LinkColumns,
    parser: QueryParser,
    schema: WikiSchema,
}

impl SingleIndex {
    /// Opens the index in `dir`: a shard directory (tantivy files and manifest), or a
    /// directory `indexer build` published exactly one shard into.
    pub fn open(dir: &Path) -> Result<Self> {
        let dir = locate_index(dir)?;
        let index = Index::open_in_dir(&dir)
            .map_err(|e| Error::Other(format!("{}: cannot open the index: {e}", dir.display())))?;
        // A published shard proves its schema in its manifest (its files are not hashed
        // again here: the baseline is what a user runs on one machine, without a cluster's
        // replica installation); the index's own schema names its analysis either way.
        let schema = match dir.join(MANIFEST_FILE).is_file() {
            true => ShardManifest::read(&dir)?.check_schema(&WikiSchema::new())?,
            false => WikiSchema::of_index(&index).unwrap_or_default(),
        };
        shard_proto::analysis::register(&index);
        if index.schema() != schema.schema {
            return Err(Error::Other(format!(
                "{}: the index was built with another schema than this binary's {}",
                dir.display(),
                schema.fingerprint()
            )));
        }
        // Immutable index: no file watcher, one searcher for the whole run.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        Ok(SingleIndex {
            dir,
            _reader: reader,
            links: LinkColumns::open(&searcher, &schema)?,
            searcher,
            parser: query_parser(&schema),
            schema,
        })
    }

    /// The directory of the tantivy index.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name the hits give as their shard: the index directory's.
    fn shard_name(&self) -> String {
        self.dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Number of documents.
    pub fn num_docs(&self) -> u64 {
        self.searcher.num_docs()
    }

    /// Hits `from..from + size` of `query`, with stored fields and snippets.
    pub fn search(
        &self,
        query: &str,
        from: usize,
        size: usize,
    ) -> std::result::Result<ResultsPage, SearchError> {
        check_page(query, from, size)?;
        let parsed = self
            .parser
            .parse_query(query)
            .map_err(|e| SearchError::BadRequest(format!("cannot parse the query: {e}")))?;
        let parsed = shard_proto::rank(&self.schema, parsed, query);
        let internal = |e: tantivy::TantivyError| SearchError::Internal(e.to_string());
        if size == 0 {
            let total = self.searcher.search(&parsed, &Count).map_err(internal)?;
            return Ok(ResultsPage {
                total: total as u64,
                hits: Vec::new(),
            });
        }
        let collector = TopRanked::new(from + size).with_links(&self.links);
        let (top, total) = collector
            .search(&self.searcher, parsed.as_ref(), None)
            .map_err(internal)?;
        let fields = &self.schema.fields;
        // One index: its own statistics are the global ones.
        let snippets = generator(
            &self.searcher,
            &parsed,
            fields.body,
            &self.searcher,
            SNIPPET_CHARS,
        )
        .map_err(internal)?;
        let mut hits = Vec::with_capacity(size);
        for (score, address) in top.into_iter().skip(from) {
            let doc: TantivyDocument = self.searcher.doc(address).map_err(internal)?;
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let body = text(fields.body);
            hits.push(Hit {
                shard: self.shard_name(),
                node: BASELINE_NODE.to_string(),
                id: doc
                    .get_first(fields.id)
                    .and_then(|v| v.as_u64())
                    .unwrap_or_default(),
                title: text(fields.title),
                url: text(fields.url),
                score,
                snippet: snippet_html(&snippets, &body, SNIPPET_CHARS),
            });
        }
        Ok(ResultsPage {
            total: total as u64,
            hits,
        })
    }
}

/// Refuses what the front-end's API refuses: the same limits, checked by the same code.
pub fn check_page(query: &str, from: usize, size: usize) -> std::result::Result<(), SearchError> {
    let params = SearchParams {
        q: query.to_string(),
        syntax: shard_proto::query::Syntax::Strict,
        from,
        size,
        search_type: None,
        generation: None,
    };
    params.check().map_err(SearchError::BadRequest)
}

/// The index directory: `dir` itself when it holds `meta.json`, else its only
/// sub-directory that does (the layout `indexer build --out DIR --shards 1` publishes).
fn locate_index(dir: &Path) -> Result<PathBuf> {
    if dir.join("meta.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.join("meta.json").is_file() {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Other(format!(
            "{}: no tantivy index here (no meta.json in it or in a sub-directory)",
            dir.display()
        ))),
        n => Err(Error::Other(format!(
            "{}: {n} indexes in it; the baseline serves ONE index (build it with \
             `indexer build --shards 1 --nodes 1`) or name the shard directory",
            dir.display()
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tantivy::doc;

    /// Writes a small index with the shared schema (for tests of the baselines).
    pub(crate) fn write_test_index(dir: &Path) {
        let schema = WikiSchema::new();
        let f = schema.fields;
        let index = Index::create_in_dir(dir, schema.schema.clone()).unwrap();
        let mut writer = index.writer_with_num_threads(1, 20_000_000).unwrap();
        let pages = [
            (
                1u64,
                "Griffith Observatory",
                "An observatory in Los Angeles on Mount Hollywood.",
            ),
            (
                2,
                "Bowel obstruction",
                "A bowel obstruction is a <mechanical> blockage.",
            ),
            (
                3,
                "Los Angeles",
                "The observatory overlooks the city & its basin.",
            ),
        ];
        for (id, title, body) in pages {
            writer
                .add_document(doc!(
                    f.id => id,
                    f.title => title,
                    f.body => body,
                    f.url => format!("https://en.wikipedia.org/wiki/{}", title.replace(' ', "_")),
                    f.categories => "Test"
                ))
                .unwrap();
        }
        writer.commit().unwrap();
    }

    #[test]
    fn searches_like_the_front_end_answers() {
        let tmp = tempfile::tempdir().unwrap();
        write_test_index(tmp.path());
        let index = SingleIndex::open(tmp.path()).unwrap();
        assert_eq!(index.num_docs(), 3);
        let page = index.search("observatory", 0, 10).unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.hits[0].id, 1, "the title match ranks first");
        assert!(
            page.hits[0].snippet.contains("<b>observatory</b>"),
            "{:?}",
            page.hits[0]
        );
        assert!(page.hits[1].snippet.contains("&amp;"), "{:?}", page.hits[1]);
        assert_eq!(index.search("observatory", 1, 10).unwrap().hits.len(), 1);
        assert_eq!(index.search("observatory", 0, 0).unwrap().total, 2);
        let title_only = index.search("title:griffith", 0, 10).unwrap();
        assert!(title_only.hits[0].snippet.starts_with("An observatory"));
    }

    #[test]
    fn bad_requests_are_refused_with_a_message() {
        let tmp = tempfile::tempdir().unwrap();
        write_test_index(tmp.path());
        let index = SingleIndex::open(tmp.path()).unwrap();
        for (q, from, size) in [
            ("title:(", 0, 10),
            ("", 0, 10),
            ("a", 0, 101),
            ("a", 9995, 10),
        ] {
            match index.search(q, from, size) {
                Err(SearchError::BadRequest(message)) => assert!(!message.is_empty()),
                other => panic!("{q:?} {from} {size}: {other:?}"),
            }
        }
    }

    #[test]
    fn finds_the_one_shard_of_a_build_directory() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(SingleIndex::open(tmp.path()).is_err());
        std::fs::create_dir(tmp.path().join("n0of1-s0of1")).unwrap();
        write_test_index(&tmp.path().join("n0of1-s0of1"));
        let index = SingleIndex::open(tmp.path()).unwrap();
        assert!(index.dir().ends_with("n0of1-s0of1"));
        std::fs::create_dir(tmp.path().join("second")).unwrap();
        write_test_index(&tmp.path().join("second"));
        let err = SingleIndex::open(tmp.path()).err().unwrap().to_string();
        assert!(err.contains("ONE index"), "{err}");
    }
}
