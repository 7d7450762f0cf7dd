//! The root of a distributed search (Quickwit's `root.rs`): parse, make the statistics
//! global, fan the query out, merge, fetch the final page.
//!
//! 1. The query is parsed with the very parser the leaves use (a parse error is the
//!    caller's fault: 400 with the parser's message) and its terms are collected.
//! 2. Global BM25 statistics come from the cache; only terms never seen cost a statistics
//!    phase (one `StatsRequest` per node), and only figures summed over all shards are kept.
//! 3. Query phase: one `SearchRequest` per node for all the shards planned on it, each
//!    shard returning its top `from + size`; hits are merged by score (ties by page id so
//!    pages are stable) and hit counts summed.
//! 4. Fetch phase: only the final page's hits, one `FetchRequest` per node that produced
//!    them — or none at all with [`SearchType::QueryAndFetch`], where the nodes attached
//!    the documents of their best hits to the query phase's answer. Replicas are byte-identical copies, so a document address is the same on every
//!    replica of its shard: a failed fetch is retried on another replica, and every fetched
//!    document is checked against the page id the query phase returned.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shard_proto::stats::ShardTermStats;
use shard_proto::wire::{
    DocRef, FetchRequest, FetchedDoc, LeafHit, PiggybackFetch, SearchRequest, ShardHits,
    StatsRequest,
};
use shard_proto::{GlobalStats, ShardId, WikiSchema};
use tantivy::query::QueryParser;
use tantivy::schema::Field;
use tantivy::Term;
use tokio::time::Instant;

use crate::frontend::fetch;
use crate::frontend::nodes::{AttemptError, RpcCall, RpcReply};
use crate::frontend::scatter::{Fanout, Outcomes, Phase};
use crate::frontend::stats_cache::{Lookup, StatsCache};
use crate::in_flight::InFlight;

/// Longest snippet asked of the nodes, in characters.
pub const SNIPPET_CHARS: u32 = 240;
/// Largest first page fetched with [`SearchType::QueryAndFetch`]: each node fetches a
/// good share of it, so beyond it a fetch phase is cheaper.
pub const QUERY_AND_FETCH_MAX_SIZE: usize = 20;

/// How the final page's stored fields and snippets are fetched (Elasticsearch's names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchType {
    /// `query_and_fetch` for a search the front-end runs alone (an idle cluster spends
    /// spare CPU to save a round trip: lowest latency), `query_then_fetch` while others
    /// run (a busy one spends nothing on documents it will not show: most throughput).
    #[default]
    Auto,
    /// A fetch phase after the merge, for the final page only, from the nodes that own it.
    QueryThenFetch,
    /// The nodes attach the documents of their best hits to the query phase (each about its
    /// share of the page, see [`and_fetch_quota`]): one round trip less in most queries, a
    /// few more documents fetched. Used for first pages up to [`QUERY_AND_FETCH_MAX_SIZE`];
    /// page hits a node did not attach are fetched in a fetch phase.
    QueryAndFetch,
}

impl SearchType {
    pub fn parse(text: &str) -> Option<SearchType> {
        match text {
            "auto" => Some(SearchType::Auto),
            "query_then_fetch" => Some(SearchType::QueryThenFetch),
            "query_and_fetch" => Some(SearchType::QueryAndFetch),
            _ => None,
        }
    }
}

/// A validated search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchParams {
    pub q: String,
    pub from: usize,
    pub size: usize,
    /// `None`: the front-end's configured default.
    pub search_type: Option<SearchType>,
}

/// One hit of the public answer.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    pub id: u64,
    pub title: String,
    pub url: String,
    pub score: f32,
    pub snippet: String,
    pub shard: String,
    pub node: String,
}

/// A shard that could not be searched (or fetched from).
#[derive(Clone, Debug, Serialize)]
pub struct ShardFailure {
    pub shard: String,
    pub reason: String,
}

/// Shard accounting of an answer.
#[derive(Clone, Debug, Serialize)]
pub struct ShardsSummary {
    pub total: usize,
    pub successful: usize,
    pub failed: usize,
    pub failures: Vec<ShardFailure>,
}

/// The public `/search` answer.
#[derive(Clone, Debug, Serialize)]
pub struct SearchAnswer {
    pub query: String,
    pub took_ms: f64,
    pub total: u64,
    pub hits: Vec<Hit>,
    pub shards: ShardsSummary,
    pub partial: bool,
    pub coverage: f64,
}

/// The root: shard table, caches, fan-out machinery.
pub struct Root {
    pub fanout: Fanout,
    parser: QueryParser,
    scored_fields: Vec<Field>,
    stats_cache: StatsCache,
    /// Every shard of the store and its document count (from the manifests).
    pub shard_docs: BTreeMap<ShardId, u64>,
    shards: Vec<ShardId>,
    /// Node index that last answered each shard's query phase (`usize::MAX`: none yet).
    last_served_by: BTreeMap<ShardId, AtomicUsize>,
    deadline: Duration,
    search_type: SearchType,
    /// Searches running now (what [`SearchType::Auto`] decides on).
    searching: AtomicUsize,
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

    fn split(reply: RpcReply) -> Result<Outcomes<ShardTermStats>, AttemptError> {
        match reply {
            RpcReply::Stats(answer) => Ok(answer.shards),
            other => Err(AttemptError::Decode(format!(
                "expected statistics, got {other:?}"
            ))),
        }
    }
}

struct SearchPhase {
    request: SearchRequest,
    total_shards: usize,
}

impl Phase for SearchPhase {
    type Item = ShardHits;

    fn call(&self, shards: Vec<ShardId>) -> RpcCall {
        RpcCall::Search(Arc::new(SearchRequest {
            query: self.request.query.clone(),
            top_k: self.request.top_k,
            stats: self.request.stats.clone(),
            fetch: self.request.fetch.map(|fetch| PiggybackFetch {
                docs: and_fetch_quota(fetch.docs as usize, shards.len(), self.total_shards) as u32,
                ..fetch
            }),
            shards,
        }))
    }

    fn split(reply: RpcReply) -> Result<Outcomes<ShardHits>, AttemptError> {
        match reply {
            RpcReply::Search(answer) => Ok(answer.shards),
            _ => Err(AttemptError::Decode("expected search hits".into())),
        }
    }
}

/// A merged hit before the fetch phase.
#[derive(Clone, Copy, Debug)]
pub struct MergedHit {
    pub hit: LeafHit,
    pub shard: ShardId,
    pub node: usize,
    /// Position among its shard's hits (where a query-and-fetch document is found).
    pub rank: usize,
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
            parser: shard_proto::query_parser(&schema),
            scored_fields: schema.scored_fields().to_vec(),
            stats_cache: StatsCache::default(),
            last_served_by: shards
                .iter()
                .map(|s| (*s, AtomicUsize::new(usize::MAX)))
                .collect(),
            shard_docs,
            shards,
            deadline,
            search_type,
            searching: AtomicUsize::new(0),
        }
    }

    /// Runs one search.
    pub async fn search(&self, params: &SearchParams) -> Result<SearchAnswer, SearchError> {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let searching = InFlight::enter(&self.searching);
        let query = self
            .parser
            .parse_query(&params.q)
            .map_err(|e| SearchError::BadQuery(e.to_string()))?;
        let terms = GlobalStats::query_terms(query.as_ref());
        drop(query);
        self.fanout.hedge_budget.deposit();
        let stats = self.global_stats(&terms, deadline).await;
        // tantivy refuses a top-0 collector: a size-0 search (counts only) asks for one.
        let top_k = (params.from + params.size).max(1) as u32;
        let search_type = match params.search_type.unwrap_or(self.search_type) {
            SearchType::Auto if searching.others == 0 => SearchType::QueryAndFetch,
            SearchType::Auto => SearchType::QueryThenFetch,
            chosen => chosen,
        };
        let and_fetch = search_type == SearchType::QueryAndFetch
            && params.from == 0
            && (1..=QUERY_AND_FETCH_MAX_SIZE).contains(&params.size);
        let phase = Arc::new(SearchPhase {
            request: SearchRequest {
                query: params.q.clone(),
                shards: Vec::new(),
                top_k,
                stats,
                // The page size; each node's request asks for its share.
                fetch: and_fetch.then_some(PiggybackFetch {
                    docs: params.size as u32,
                    snippet_chars: SNIPPET_CHARS,
                }),
            },
            total_shards: self.shards.len(),
        });
        let gathered = self.fanout.scatter(&phase, &self.shards, deadline).await;
        let mut total = 0;
        let mut merged = Vec::new();
        for (shard, answer) in &gathered.answers {
            total += answer.item.total;
            self.last_served_by[shard].store(answer.node, Ordering::Relaxed);
            merged.extend(
                answer
                    .item
                    .hits
                    .iter()
                    .enumerate()
                    .map(|(rank, hit)| MergedHit {
                        hit: *hit,
                        shard: *shard,
                        node: answer.node,
                        rank,
                    }),
            );
        }
        let page = merge_page(merged, params.from, params.size);
        let prefetched: Vec<Option<FetchedDoc>> = page
            .iter()
            .map(|hit| {
                let docs = &gathered.answers.get(&hit.shard)?.item.docs;
                docs.get(hit.rank).filter(|d| d.id == hit.hit.id).cloned()
            })
            .collect();
        let mut failures: Vec<ShardFailure> = gathered
            .failures
            .iter()
            .map(|(shard, reason)| ShardFailure {
                shard: shard.to_string(),
                reason: reason.clone(),
            })
            .collect();
        let fetch_request = FetchRequest {
            query: params.q.clone(),
            docs: Vec::new(),
            snippet_chars: SNIPPET_CHARS,
            stats: phase.request.stats.clone(),
        };
        let (hits, fetch_failures) =
            fetch::fetch_page(&self.fanout, &fetch_request, &page, prefetched, deadline).await;
        failures.extend(fetch_failures);
        let searched_docs: u64 = gathered
            .answers
            .keys()
            .map(|s| self.shard_docs.get(s).copied().unwrap_or(0))
            .sum();
        let all_docs: u64 = self.shard_docs.values().sum();
        let partial = !failures.is_empty();
        Ok(SearchAnswer {
            query: params.q.clone(),
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
            total,
            hits,
            shards: ShardsSummary {
                total: self.shards.len(),
                successful: gathered.answers.len(),
                failed: gathered.failures.len(),
                failures,
            },
            partial,
            coverage: if all_docs == 0 {
                1.0
            } else {
                searched_docs as f64 / all_docs as f64
            },
        })
    }

    /// Statistics for `terms`: from the cache, or one statistics phase for the missing ones.
    async fn global_stats(&self, terms: &[Term], deadline: Instant) -> GlobalStats {
        let missing = match self.stats_cache.lookup(terms) {
            Lookup::Hit(stats) => return stats,
            Lookup::Miss { missing } => missing,
        };
        self.fanout.metrics.stats_round_trips.inc();
        let phase = Arc::new(StatsPhase {
            request: StatsRequest {
                shards: Vec::new(),
                fields: self.scored_fields.iter().map(|f| f.field_id()).collect(),
                terms: missing.clone(),
            },
        });
        let gathered = self.fanout.scatter(&phase, &self.shards, deadline).await;
        let fresh = GlobalStats::merge(
            &self.scored_fields,
            &missing,
            gathered.answers.values().map(|a| &a.item),
        );
        if gathered.failures.is_empty() {
            self.stats_cache.insert_complete(&fresh);
        }
        self.stats_cache.combine(terms, &fresh)
    }

    /// Node index that last answered a shard's query phase.
    pub fn last_served_by(&self, shard: &ShardId) -> Option<usize> {
        let node = self.last_served_by.get(shard)?.load(Ordering::Relaxed);
        (node != usize::MAX).then_some(node)
    }

    pub fn cached_terms(&self) -> usize {
        self.stats_cache.len()
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

/// Orders hits by score (descending), ties by page id (ascending), and keeps one page.
pub fn merge_page(mut hits: Vec<MergedHit>, from: usize, size: usize) -> Vec<MergedHit> {
    hits.sort_by(|a, b| LeafHit::merge_order(&a.hit, &b.hit));
    hits.into_iter().skip(from).take(size).collect()
}

/// The address of a merged hit, for the fetch phase.
pub fn doc_ref(hit: &MergedHit) -> DocRef {
    DocRef {
        shard: hit.shard,
        segment: hit.hit.segment,
        doc: hit.hit.doc,
    }
}

/// A page hit with its fetched fields.
pub fn to_public_hit(hit: &MergedHit, doc: Option<&FetchedDoc>, node: &str) -> Hit {
    Hit {
        id: hit.hit.id,
        title: doc.map(|d| d.title.clone()).unwrap_or_default(),
        url: doc.map(|d| d.url.clone()).unwrap_or_default(),
        score: hit.hit.score,
        snippet: doc.map(|d| d.snippet_html.clone()).unwrap_or_default(),
        shard: hit.shard.to_string(),
        node: node.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(score: f32, id: u64) -> MergedHit {
        MergedHit {
            hit: LeafHit {
                score,
                id,
                segment: 0,
                doc: id as u32,
            },
            shard: ShardId::new(0, 1, 0, 1).unwrap(),
            node: 0,
            rank: 0,
        }
    }

    #[test]
    fn and_fetch_quota_is_a_share_of_the_page_with_margin() {
        // 6 shards on 2 nodes (4 + 2): 9 + 6 documents for a page of 10.
        assert_eq!(and_fetch_quota(10, 4, 6), 9);
        assert_eq!(and_fetch_quota(10, 2, 6), 6);
        assert_eq!(and_fetch_quota(10, 6, 6), 10);
        assert_eq!(and_fetch_quota(1, 1, 8), 1);
        assert_eq!(and_fetch_quota(20, 1, 2), 14);
    }

    #[test]
    fn merge_orders_by_score_then_id_and_pages() {
        let hits = vec![
            hit(1.0, 5),
            hit(3.0, 9),
            hit(2.0, 1),
            hit(2.0, 0),
            hit(0.5, 7),
        ];
        let ids = |page: Vec<MergedHit>| page.iter().map(|h| h.hit.id).collect::<Vec<_>>();
        assert_eq!(ids(merge_page(hits.clone(), 0, 3)), vec![9, 0, 1]);
        assert_eq!(ids(merge_page(hits.clone(), 3, 3)), vec![5, 7]);
        assert_eq!(ids(merge_page(hits, 10, 3)), Vec::<u64>::new());
    }
}
