//! The root of a distributed search (Quickwit's `root.rs`): parse, make the statistics
//! global, fan the query out, merge, fetch the final page.
//!
//! 1. The query is parsed as the leaves parse it ([`shard_proto::query::parse`]: leniently
//!    unless the caller asks for the strict syntax, where a parse error is the caller's
//!    fault: 400 with the parser's message) and its terms are collected.
//! 2. Global BM25 statistics come from the cache; only terms never seen cost a statistics
//!    phase (one `StatsRequest` per node), and only figures summed over all shards are kept.
//! 3. Query phase: one `SearchRequest` per node for all the shards planned on it, each
//!    shard returning its top `from + size`; hits are merged by score (ties by page id so
//!    pages are stable) and hit counts summed.
//! 4. Fetch phase: only the final page's hits, one `FetchRequest` per node that produced
//!    them — or none at all with [`SearchType::QueryAndFetch`], where the nodes attached
//!    the documents of their best hits to the query phase's answer. Replicas are
//!    byte-identical copies, so a document address is the same on every replica of its
//!    shard: a failed fetch is retried on another replica, and every fetched document is
//!    checked against the page id the query phase returned.
//!
//! The public model lives in [`crate::model`], the merge in [`crate::frontend::merge`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shard_proto::query::{self, Syntax};
use shard_proto::stats::ShardTermStats;
use shard_proto::wire::{
    FetchRequest, FetchedDoc, PiggybackFetch, SearchRequest, ShardHits, StatsRequest,
};
use shard_proto::{Analysis, GlobalStats, ParsersByAnalysis, QueryLimits, ShardId, WikiSchema};
use tantivy::schema::Field;
use tantivy::Term;
use tokio::time::Instant;

use crate::frontend::fetch;
use crate::frontend::generation::{Generations, Table};
use crate::frontend::merge::{self, merge_page, MergedHit};
use crate::frontend::nodes::{AttemptError, RpcCall, RpcReply};
use crate::frontend::scatter::{Fanout, Gathered, Outcomes, Phase};
use crate::frontend::stats_cache::Lookup;
use crate::in_flight::InFlight;
use crate::model::{Hit, SearchAnswer, SearchParams, SearchType, ShardFailure, ShardsSummary};
use shard_proto::generation::BASE;

/// Longest snippet asked of the nodes, in characters.
pub const SNIPPET_CHARS: u32 = 240;
/// Largest first page fetched with [`SearchType::QueryAndFetch`]: each node fetches a
/// good share of it, so beyond it a fetch phase is cheaper.
pub const QUERY_AND_FETCH_MAX_SIZE: usize = 20;

/// The root: shard table, caches, fan-out machinery.
pub struct Root {
    pub fanout: Fanout,
    /// A schema and parser per text analysis: a query is parsed as its generation's
    /// shards were analyzed.
    parsers: ParsersByAnalysis,
    scored_fields: Vec<Field>,
    /// The generation searches are pinned to, each with its statistics cache.
    pub generations: Arc<Generations>,
    /// Every shard of the generation live at start and its document count (from the
    /// manifests).
    pub shard_docs: BTreeMap<ShardId, u64>,
    shards: Vec<ShardId>,
    /// Node index that last answered each shard's query phase (`usize::MAX`: none yet).
    last_served_by: BTreeMap<ShardId, AtomicUsize>,
    deadline: Duration,
    search_type: SearchType,
    /// Searches running now (what [`SearchType::Auto`] decides on).
    searching: AtomicUsize,
    /// What one search may cost (the API checks the length and the window,
    /// [`Root::search`] the query's shape and terms).
    limits: QueryLimits,
}

/// Errors that are the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    BadQuery(String),
}

struct StatsPhase {
    request: StatsRequest,
}

impl Phase for StatsPhase {
    type Item = ShardTermStats;

    fn call(&self, shards: Vec<ShardId>) -> RpcCall {
        RpcCall::Stats(Arc::new(StatsRequest {
            shards,
            ..self.request.clone()
        }))
    }

    fn split(
        &self,
        _shards: &[ShardId],
        reply: RpcReply,
    ) -> Result<Outcomes<ShardTermStats>, AttemptError> {
        match reply {
            RpcReply::Stats(answer) => Ok(answer.shards),
            other => Err(AttemptError::Decode(format!(
                "expected statistics, got {other:?}"
            ))),
        }
    }

    fn generation(&self) -> Option<&str> {
        self.request.generation.as_deref()
    }
}

struct SearchPhase {
    request: SearchRequest,
    total_shards: usize,
}

impl Phase for SearchPhase {
    type Item = ShardHits;

    fn generation(&self) -> Option<&str> {
        self.request.generation.as_deref()
    }

    fn call(&self, shards: Vec<ShardId>) -> RpcCall {
        RpcCall::Search(Arc::new(SearchRequest {
            query: self.request.query.clone(),
            syntax: self.request.syntax,
            top_k: self.request.top_k,
            stats: self.request.stats.clone(),
            fetch: self.request.fetch.map(|fetch| PiggybackFetch {
                docs: and_fetch_quota(fetch.docs as usize, shards.len(), self.total_shards) as u32,
                ..fetch
            }),
            shards,
            generation: self.request.generation.clone(),
        }))
    }

    fn split(
        &self,
        _shards: &[ShardId],
        reply: RpcReply,
    ) -> Result<Outcomes<ShardHits>, AttemptError> {
        match reply {
            RpcReply::Search(answer) => Ok(answer.shards),
            _ => Err(AttemptError::Decode("expected search hits".into())),
        }
    }
}

impl Root {
    pub fn new(
        fanout: Fanout,
        shard_docs: BTreeMap<ShardId, u64>,
        deadline: Duration,
        search_type: SearchType,
    ) -> Self {
        let schema = WikiSchema::new();
        let shards: Vec<ShardId> = shard_docs.keys().copied().collect();
        Root {
            fanout,
            parsers: ParsersByAnalysis::default(),
            scored_fields: schema.scored_fields().to_vec(),
            generations: Arc::new(Generations::new(
                Table::new(BASE, shard_docs.clone(), Analysis::Plain),
                None,
            )),
            last_served_by: shards
                .iter()
                .map(|s| (*s, AtomicUsize::new(usize::MAX)))
                .collect(),
            shard_docs,
            shards,
            deadline,
            search_type,
            searching: AtomicUsize::new(0),
            limits: QueryLimits::default(),
        }
    }

    /// Follows `generations` (the front-end's watch) instead of one fixed generation.
    pub fn with_generations(mut self, generations: Arc<Generations>) -> Self {
        self.generations = generations;
        self
    }

    /// The cluster file's query limits instead of the defaults.
    pub fn with_limits(mut self, limits: QueryLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The query limits this root enforces.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Runs one search: statistics → query → merge → fetch → answer.
    pub async fn search(&self, params: &SearchParams) -> Result<SearchAnswer, SearchError> {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let searching = InFlight::enter(&self.searching);
        // One generation from the statistics round to the fetch round.
        let table = (self.generations.pinned(params.generation.as_deref()).await)
            .map_err(SearchError::BadQuery)?;
        let terms = self.query_terms(&params.q, params.syntax, table.analysis)?;
        self.fanout.hedge_budget.deposit();
        let stats = self.global_stats(&table, &terms, deadline).await;
        let search_type = self.search_type_for(params, searching.others);
        let gathered = (self.query(&table, params, &stats, search_type, deadline)).await;
        let (total, merged) = merge::gather(
            gathered
                .answers
                .iter()
                .map(|(shard, answer)| (*shard, answer.node, &answer.item)),
        );
        let page = merge_page(merged, params.from, params.size);
        let (hits, fetch_failures) =
            (self.fetch(&table, params, stats, &page, &gathered, deadline)).await;
        let mut answer = self.answer(&table, params, total, hits, &gathered, fetch_failures);
        answer.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(answer)
    }

    /// The query's terms, parsed as the leaves parse it (an error, a limit exceeded or a
    /// strict query that does not parse, is the caller's fault).
    fn query_terms(
        &self,
        q: &str,
        syntax: Syntax,
        analysis: Analysis,
    ) -> Result<Vec<Term>, SearchError> {
        let (schema, parser) = self.parsers.get(analysis);
        // Checked against the limits before tantivy parses it, as every node checks it again.
        let parsed = query::parse_within(parser, &schema.schema, q, syntax, &self.limits)
            .map_err(|e| SearchError::BadQuery(e.to_string()))?;
        // The leaves rank the same text the same way: the terms asked for are theirs.
        let query = shard_proto::rank(schema, parsed, q);
        Ok(GlobalStats::query_terms(query.as_ref()))
    }

    /// The search type to run: the request's or the configured one, `auto` resolved by
    /// whether `others` searches run now.
    fn search_type_for(&self, params: &SearchParams, others: usize) -> SearchType {
        match params.search_type.unwrap_or(self.search_type) {
            SearchType::Auto if others == 0 => SearchType::QueryAndFetch,
            SearchType::Auto => SearchType::QueryThenFetch,
            chosen => chosen,
        }
    }

    /// Query phase: every shard's top `from + size` (and, with query-and-fetch on a small
    /// first page, the documents of each node's best hits).
    async fn query(
        &self,
        table: &Table,
        params: &SearchParams,
        stats: &GlobalStats,
        search_type: SearchType,
        deadline: Instant,
    ) -> Gathered<ShardHits> {
        let and_fetch = search_type == SearchType::QueryAndFetch
            && params.from == 0
            && (1..=QUERY_AND_FETCH_MAX_SIZE).contains(&params.size);
        let phase = Arc::new(SearchPhase {
            request: SearchRequest {
                query: params.q.clone(),
                syntax: params.syntax,
                shards: Vec::new(),
                // tantivy refuses a top-0 collector: a size-0 search (counts only) asks
                // for one.
                top_k: (params.from + params.size).max(1) as u32,
                stats: stats.clone(),
                // The page size; each node's request asks for its share.
                fetch: and_fetch.then_some(PiggybackFetch {
                    docs: params.size as u32,
                    snippet_chars: SNIPPET_CHARS,
                }),
                generation: table.wire_id(),
            },
            total_shards: table.shards.len(),
        });
        let gathered = self.fanout.scatter(&phase, &table.shards, deadline).await;
        for (shard, answer) in &gathered.answers {
            if let Some(last) = self.last_served_by.get(shard) {
                last.store(answer.node, Ordering::Relaxed);
            }
        }
        gathered
    }

    /// Fetch phase: the page's fields and snippets, from the query phase's attached
    /// documents where it has them, else from the nodes that own the hits.
    async fn fetch(
        &self,
        table: &Table,
        params: &SearchParams,
        stats: GlobalStats,
        page: &[MergedHit],
        gathered: &Gathered<ShardHits>,
        deadline: Instant,
    ) -> (Vec<Hit>, Vec<ShardFailure>) {
        let prefetched: Vec<Option<FetchedDoc>> = page
            .iter()
            .map(|hit| {
                let docs = &gathered.answers.get(&hit.shard)?.item.docs;
                docs.get(hit.rank).filter(|d| d.id == hit.hit.id).cloned()
            })
            .collect();
        let request = FetchRequest {
            query: params.q.clone(),
            syntax: params.syntax,
            docs: Vec::new(),
            snippet_chars: SNIPPET_CHARS,
            stats,
            generation: table.wire_id(),
        };
        fetch::fetch_page(&self.fanout, request, page, prefetched, deadline).await
    }

    /// The public answer: hits, shard accounting and the share of documents searched.
    fn answer(
        &self,
        table: &Table,
        params: &SearchParams,
        total: u64,
        hits: Vec<Hit>,
        gathered: &Gathered<ShardHits>,
        fetch_failures: Vec<ShardFailure>,
    ) -> SearchAnswer {
        let mut failures: Vec<ShardFailure> = gathered
            .failures
            .iter()
            .map(|(shard, reason)| ShardFailure {
                shard: shard.to_string(),
                reason: reason.clone(),
            })
            .collect();
        failures.extend(fetch_failures);
        let partial = !failures.is_empty();
        SearchAnswer {
            query: params.q.clone(),
            took_ms: 0.0,
            total,
            hits,
            shards: ShardsSummary {
                total: table.shards.len(),
                successful: gathered.answers.len(),
                failed: gathered.failures.len(),
                failures,
            },
            partial,
            coverage: merge::coverage(&table.shard_docs, gathered.answers.keys()),
            generation: table.id.clone(),
        }
    }

    /// Statistics for `terms`: from the cache, or one statistics phase for the missing ones.
    async fn global_stats(&self, table: &Table, terms: &[Term], deadline: Instant) -> GlobalStats {
        let missing = match table.stats.lookup(terms) {
            Lookup::Hit(stats) => return stats,
            Lookup::Miss { missing } => missing,
        };
        self.fanout.metrics.stats_round_trips.inc();
        let phase = Arc::new(StatsPhase {
            request: StatsRequest {
                shards: Vec::new(),
                fields: self.scored_fields.iter().map(|f| f.field_id()).collect(),
                terms: missing.clone(),
                generation: table.wire_id(),
            },
        });
        let gathered = self.fanout.scatter(&phase, &table.shards, deadline).await;
        let fresh = GlobalStats::merge(
            &self.scored_fields,
            &missing,
            gathered.answers.values().map(|a| &a.item),
        );
        if gathered.failures.is_empty() {
            table.stats.insert_complete(&fresh);
        }
        table.stats.combine(terms, &fresh)
    }

    /// Node index that last answered a shard's query phase.
    pub fn last_served_by(&self, shard: &ShardId) -> Option<usize> {
        let node = self.last_served_by.get(shard)?.load(Ordering::Relaxed);
        (node != usize::MAX).then_some(node)
    }

    /// Every shard of the store.
    pub fn shards(&self) -> &[ShardId] {
        &self.shards
    }

    /// How long a whole request may take.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    pub fn cached_terms(&self) -> usize {
        self.generations.live().stats.len()
    }
}

/// Documents a node searching `shards` of the `total` fetches for a first page of `size`
/// with query-and-fetch: its expected share of the page plus 1.5 standard deviations.
/// Shards are random slices of the corpus, so the page's hits fall on a node's shards like
/// a binomial draw, and the page is complete without a fetch phase in about 19 queries of
/// 20 while fetching about 1.5× the page instead of (nodes)× it.
pub fn and_fetch_quota(size: usize, shards: usize, total: usize) -> usize {
    if shards >= total {
        return size;
    }
    let share = shards as f64 / total as f64;
    let n = size as f64;
    let quota = n * share + 1.5 * (n * share * (1.0 - share)).sqrt();
    (quota.ceil() as usize).clamp(1, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_fetch_quota_is_a_share_of_the_page_with_margin() {
        // 6 shards on 2 nodes (4 + 2): 9 + 6 documents for a page of 10.
        assert_eq!(and_fetch_quota(10, 4, 6), 9);
        assert_eq!(and_fetch_quota(10, 2, 6), 6);
        assert_eq!(and_fetch_quota(10, 6, 6), 10);
        assert_eq!(and_fetch_quota(1, 1, 8), 1);
        assert_eq!(and_fetch_quota(20, 1, 2), 14);
    }
}
