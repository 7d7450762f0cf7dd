//! The cluster's search work without the cluster: every shard of a store opened in this
//! process behind one [`Leaf`], driven through the front-end's phases by direct calls —
//! global statistics (cached per query, as the front-end caches them per term), the query
//! phase over all shards, the merge, and the fetch of the page. No process boundary, no
//! HTTP, no serialization: what the shards themselves cost, to tell apart from what
//! distributing them costs (`wikisearch baseline compare` runs it next to the single index).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shard_proto::query::Syntax;
use shard_proto::wire::{FetchRequest, SearchRequest, ShardHits, ShardOutcome, StatsRequest};
use shard_proto::{query_parser, GlobalStats, ShardId, WikiSchema};
use tantivy::query::QueryParser;
use tantivy::schema::Field;

use super::single_index::{check_page, ResultsPage, SearchError, BASELINE_NODE, SNIPPET_CHARS};
use crate::error::{Error, Result};
use searcher::cluster::store_manifests;
use searcher::frontend::merge::{self, merge_page, to_public_hit, MergedHit};
use searcher::node::leaf::Leaf;
use searcher::node::replicas;
use searcher::node::stop::Stop;

/// Every shard of a shard store, searched in this process.
pub struct ShardedIndex {
    store: PathBuf,
    leaf: Leaf,
    shards: Vec<ShardId>,
    parser: QueryParser,
    schema: WikiSchema,
    scored_fields: Vec<Field>,
    /// Query string and syntax → its global statistics (the queries of a benchmark repeat).
    stats: Mutex<HashMap<(String, Syntax), GlobalStats>>,
}

impl ShardedIndex {
    /// How the shards' text was analyzed.
    pub fn analysis(&self) -> shard_proto::Analysis {
        self.schema.analysis
    }

    /// Opens every shard of `store` (as a node opens its replicas, without copying them).
    pub fn open(store: &Path) -> Result<Self> {
        let mut schema = WikiSchema::new();
        let mut opened = BTreeMap::new();
        let dirs: BTreeMap<_, _> = shard_proto::store::live_shard_dirs(store)?
            .into_iter()
            .collect();
        for manifest in store_manifests(store)? {
            let manifest = manifest.map_err(|bad| Error::Other(bad.to_string()))?;
            // Every shard of a store is analyzed alike: queries are parsed the shards' way.
            schema = manifest.check_schema(&schema)?;
            let dir = dirs.get(&manifest.shard).ok_or_else(|| {
                Error::Other(format!(
                    "shard {}: the store changed meanwhile",
                    manifest.shard
                ))
            })?;
            let replica = replicas::open(dir, &manifest, &schema)
                .map_err(|reason| Error::Other(format!("shard {}: {reason}", manifest.shard)))?;
            opened.insert(manifest.shard, Arc::new(replica));
        }
        if opened.is_empty() {
            return Err(Error::Other(format!("no shard in {}", store.display())));
        }
        Ok(ShardedIndex {
            store: store.to_path_buf(),
            shards: opened.keys().copied().collect(),
            parser: query_parser(&schema),
            scored_fields: schema.scored_fields().to_vec(),
            schema: schema.clone(),
            leaf: Leaf::new("in-process".into(), schema, opened),
            stats: Mutex::new(HashMap::new()),
        })
    }

    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The first page of `size` hits, as the front-end would answer it.
    pub fn search(
        &self,
        query: &str,
        size: usize,
    ) -> std::result::Result<ResultsPage, SearchError> {
        check_page(query, 0, size)?;
        let (total, page) = self.query_phase(query, Syntax::Strict, size)?;
        let stats = self.global_stats(query, Syntax::Strict)?;
        Ok(ResultsPage {
            total,
            hits: self.fetch(query, stats, &page)?,
        })
    }

    /// The page ids of the best `k` hits of `query` read in `syntax`, and the number of
    /// hits: the query phase alone, as the front-end ranks (what `eval` measures).
    pub fn top_ids(
        &self,
        query: &str,
        syntax: Syntax,
        k: usize,
    ) -> std::result::Result<(Vec<u64>, u64), SearchError> {
        let (total, page) = self.query_phase(query, syntax, k)?;
        Ok((page.iter().map(|hit| hit.hit.id).collect(), total))
    }

    /// Statistics, the query phase over every shard and the front-end's merge.
    fn query_phase(
        &self,
        query: &str,
        syntax: Syntax,
        size: usize,
    ) -> std::result::Result<(u64, Vec<MergedHit>), SearchError> {
        let stats = self.global_stats(query, syntax)?;
        let answer = self
            .leaf
            .search(
                &SearchRequest {
                    generation: None,
                    query: query.to_string(),
                    syntax,
                    shards: self.shards.clone(),
                    top_k: size.max(1) as u32,
                    stats,
                    fetch: None,
                },
                &Stop::never(),
            )
            .map_err(|bad| SearchError::BadRequest(bad.0))?;
        let answers = answer
            .shards
            .into_iter()
            .map(|(shard, outcome)| Ok((shard, succeeded(shard, outcome)?)))
            .collect::<std::result::Result<Vec<(ShardId, ShardHits)>, SearchError>>()?;
        // The front-end's own merge, so both rank exactly alike.
        let (total, merged) = merge::gather(answers.iter().map(|(shard, hits)| (*shard, 0, hits)));
        Ok((total, merge_page(merged, 0, size)))
    }

    fn fetch(
        &self,
        query: &str,
        stats: GlobalStats,
        page: &[MergedHit],
    ) -> std::result::Result<Vec<searcher::model::Hit>, SearchError> {
        let request = FetchRequest {
            generation: None,
            query: query.to_string(),
            syntax: Syntax::Strict,
            docs: page.iter().map(MergedHit::doc_ref).collect(),
            snippet_chars: SNIPPET_CHARS as u32,
            stats,
        };
        let fetched = self
            .leaf
            .fetch(&request, &Stop::never())
            .map_err(|bad| SearchError::BadRequest(bad.0))?;
        page.iter()
            .zip(fetched.docs)
            .map(|(hit, outcome)| {
                let doc = succeeded(hit.shard, outcome)?;
                Ok(to_public_hit(hit, Some(&doc), BASELINE_NODE))
            })
            .collect()
    }

    fn global_stats(
        &self,
        query: &str,
        syntax: Syntax,
    ) -> std::result::Result<GlobalStats, SearchError> {
        let key = (query.to_string(), syntax);
        if let Some(stats) = self.cached_stats().get(&key) {
            return Ok(stats.clone());
        }
        let parsed = shard_proto::query::parse(&self.parser, &self.schema.schema, query, syntax)
            .map_err(|e| SearchError::BadRequest(format!("cannot parse the query: {e}")))?;
        let parsed = shard_proto::rank(&self.schema, parsed, query);
        let terms = GlobalStats::query_terms(parsed.as_ref());
        let answer = self
            .leaf
            .stats(
                &StatsRequest {
                    generation: None,
                    shards: self.shards.clone(),
                    fields: self.scored_fields.iter().map(|f| f.field_id()).collect(),
                    terms: terms.clone(),
                },
                &Stop::never(),
            )
            .map_err(|bad| SearchError::BadRequest(bad.0))?;
        let per_shard = answer
            .shards
            .into_iter()
            .map(|(shard, outcome)| succeeded(shard, outcome))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let stats = GlobalStats::merge(&self.scored_fields, &terms, per_shard.iter());
        self.cached_stats().insert(key, stats.clone());
        Ok(stats)
    }

    /// The cache holds no invariant a panic could break: a poisoned lock is still usable.
    fn cached_stats(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Syntax), GlobalStats>> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A shard's answer, or the internal error its failure is (every shard is local here).
fn succeeded<T>(shard: ShardId, outcome: ShardOutcome<T>) -> std::result::Result<T, SearchError> {
    match outcome {
        ShardOutcome::Ok(value) => Ok(value),
        ShardOutcome::Failed(reason) => {
            Err(SearchError::Internal(format!("shard {shard}: {reason}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::single_index::SingleIndex;
    use crate::test_support::build_store;

    #[test]
    fn three_shards_in_one_process_answer_like_one_index() {
        let dir = tempfile::tempdir().unwrap();
        build_store(&dir.path().join("one"), 1);
        build_store(&dir.path().join("three"), 3);
        let single = SingleIndex::open(&dir.path().join("one")).unwrap();
        let sharded = ShardedIndex::open(&dir.path().join("three")).unwrap();
        for query in [
            "anarchism",
            "+political +philosophy",
            "\"united states\"",
            "autism OR apollo",
        ] {
            let expected = single.search(query, 0, 10).unwrap();
            let page = sharded.search(query, 10).unwrap();
            assert!(!page.hits.is_empty(), "{query}");
            assert_eq!(page.total, expected.total, "{query}");
            // Snippets weigh terms by global frequencies: the same fragment as one index.
            for (got, want) in page.hits.iter().zip(&expected.hits) {
                assert_eq!((got.id, &got.title), (want.id, &want.title), "{query}");
                assert_eq!(got.snippet, want.snippet, "{query}");
                assert!(
                    (got.score - want.score).abs() < 1e-4,
                    "{query}: {got:?} vs {want:?}"
                );
                assert!(got.snippet.contains("<b>"), "{query}: {got:?}");
            }
            assert_eq!(page.hits.len(), expected.hits.len(), "{query}");
        }
        assert!(matches!(
            sharded.search("title:(", 10),
            Err(SearchError::BadRequest(_))
        ));
        assert!(ShardedIndex::open(&dir.path().join("missing")).is_err());
    }
}
