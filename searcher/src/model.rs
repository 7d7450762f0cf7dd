//! The public API's model: every JSON document the front-end answers (`/search`,
//! `/suggest`, `/cluster`, errors) and the limits its parameters must respect, with `Serialize` and
//! `Deserialize`, so the front-end writes them, and the baselines, the tools and the tests
//! read and write the very same types.

use serde::{Deserialize, Serialize};
use shard_proto::query::Syntax;
use shard_proto::QueryLimits;

/// Largest `size`.
pub const MAX_SIZE: usize = 100;
/// `size` when none is given.
pub const DEFAULT_SIZE: usize = 10;

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
    /// The nodes attach the documents of their best hits to the query phase: one round
    /// trip less in most queries, a few more documents fetched. Used for small first
    /// pages; page hits a node did not attach are fetched in a fetch phase.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchParams {
    pub q: String,
    /// How `q` is read (lenient unless the caller asks for tantivy's strict syntax).
    #[serde(default)]
    pub syntax: Syntax,
    pub from: usize,
    pub size: usize,
    /// `None`: the front-end's configured default.
    pub search_type: Option<SearchType>,
    /// The index generation to search (`None`: the live one): a generation retained after
    /// a switch keeps pagination stable.
    #[serde(default)]
    pub generation: Option<String>,
}

impl SearchParams {
    /// Checks the limits every search path enforces (the front-end and the baselines)
    /// with the default [`QueryLimits`]: see [`SearchParams::check_within`].
    pub fn check(&self) -> Result<(), String> {
        self.check_within(&QueryLimits::default())
    }

    /// A non-blank query of at most `max_query_bytes`, `size` ≤ [`MAX_SIZE`] and
    /// `from + size` ≤ `max_window`. The error says what is wrong (and names the limit),
    /// for a 400. The query's shape is checked where it is parsed.
    pub fn check_within(&self, limits: &QueryLimits) -> Result<(), String> {
        if self.q.trim().is_empty() {
            return Err("missing query: use /search?q=words".into());
        }
        limits.check_bytes(&self.q).map_err(|e| e.to_string())?;
        if self.size > MAX_SIZE {
            return Err(format!(
                "size must be at most {MAX_SIZE}, got {}",
                self.size
            ));
        }
        limits
            .check_window(self.from, self.size)
            .map_err(|e| e.to_string())
    }
}

/// One hit of the public answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: u64,
    pub title: String,
    pub url: String,
    pub score: f32,
    /// HTML: text escaped, matched terms wrapped in `<b>`.
    pub snippet: String,
    pub shard: String,
    pub node: String,
}

/// A shard that could not be searched (or fetched from).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFailure {
    pub shard: String,
    pub reason: String,
}

/// Shard accounting of an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardsSummary {
    pub total: usize,
    pub successful: usize,
    pub failed: usize,
    pub failures: Vec<ShardFailure>,
}

impl ShardsSummary {
    /// Every one of `total` shards answered.
    pub fn complete(total: usize) -> Self {
        ShardsSummary {
            total,
            successful: total,
            failed: 0,
            failures: Vec::new(),
        }
    }
}

/// The public `/search` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchAnswer {
    pub query: String,
    pub took_ms: f64,
    pub total: u64,
    pub hits: Vec<Hit>,
    pub shards: ShardsSummary,
    pub partial: bool,
    /// Share of the corpus's documents that were searched (1.0 when nothing failed).
    pub coverage: f64,
    /// The index generation that answered (every hit comes from it).
    #[serde(default)]
    pub generation: String,
}

/// `size` of `/suggest` when none is given.
pub const DEFAULT_SUGGEST_SIZE: usize = 8;
/// Largest `size` of `/suggest`.
pub const MAX_SUGGEST_SIZE: usize = 20;
/// Longest `/suggest` prefix, in bytes (what one node call may carry: no title key is
/// longer than 300 bytes, so a longer prefix could match nothing anyway).
pub const MAX_SUGGEST_PREFIX_BYTES: usize = shard_proto::wire::MAX_SUGGEST_PREFIX_BYTES;

/// A validated `/suggest` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestParams {
    /// What was typed so far (may be empty: no suggestions).
    pub q: String,
    pub size: usize,
}

impl SuggestParams {
    /// `q` of at most [`MAX_SUGGEST_PREFIX_BYTES`] and `size` ≤ [`MAX_SUGGEST_SIZE`]; the
    /// error names the limit, for a 400.
    pub fn check(&self) -> Result<(), String> {
        if self.q.len() > MAX_SUGGEST_PREFIX_BYTES {
            return Err(format!(
                "the prefix is {} bytes; /suggest takes at most {MAX_SUGGEST_PREFIX_BYTES}",
                self.q.len()
            ));
        }
        if self.size > MAX_SUGGEST_SIZE {
            return Err(format!(
                "size must be at most {MAX_SUGGEST_SIZE}, got {}",
                self.size
            ));
        }
        Ok(())
    }
}

/// One suggestion of the public answer: an article, and the redirect title (alternative
/// name) that matched when its own title did not (shown as "redirect → title").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestedTitle {
    pub id: u64,
    pub title: String,
    pub redirect: Option<String>,
    pub url: String,
    /// Incoming article links: what suggestions are ranked by.
    pub links: u64,
}

/// The public `/suggest` answer: the best titles first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestAnswer {
    /// The prefix as typed.
    pub prefix: String,
    pub took_ms: f64,
    pub suggestions: Vec<SuggestedTitle>,
    pub shards: ShardsSummary,
    /// Some shard could not answer: its titles are missing (a suggestion box shows what
    /// it has; never an error).
    pub partial: bool,
}

/// The body of every error answer (4xx and 5xx).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// A node's health as the front-end sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeHealth {
    Up,
    /// Showing evidence of trouble (failures, timeouts, a sustained latency shift).
    Suspect,
    /// Back from `down`: gets a bounded share of the traffic until it has answered well
    /// for a while.
    Probation,
    /// Ejected after repeated failures: only the prober talks to it.
    Down,
}

impl NodeHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeHealth::Up => "up",
            NodeHealth::Suspect => "suspect",
            NodeHealth::Probation => "probation",
            NodeHealth::Down => "down",
        }
    }
}

/// `GET /cluster`: every node and every shard as the front-end sees them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
    pub shards: Vec<ShardView>,
    pub docs_total: u64,
    /// Every process serving this API besides `searcher frontend` processes: nodes with
    /// an `http` address and coordinator-only nodes. A client that loses the one it uses
    /// retries on another.
    #[serde(default)]
    pub coordinators: Vec<CoordinatorView>,
}

/// One coordinating process in [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorView {
    pub id: String,
    /// Its public address, `host:port` (the API is at `http://{http}/`).
    pub http: String,
}

impl ClusterView {
    pub fn node(&self, id: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

/// One node in [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: String,
    pub addr: String,
    pub state: NodeHealth,
    pub last_error: Option<String>,
    pub latency_ms: f64,
    pub in_flight: u32,
    pub pid: Option<u32>,
    /// Its process's uptime at its last health answer (`None` before the first): smaller
    /// than before means the process was restarted, also in a container where the pid
    /// stays 1.
    #[serde(default)]
    pub uptime_ms: Option<u64>,
    /// Shards it reports serving (the placement's target until its first health answer).
    pub replicas: Vec<String>,
    /// Shards the placement puts on it.
    #[serde(default)]
    pub target: Vec<String>,
}

/// One shard in [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardView {
    pub id: String,
    pub docs: u64,
    /// Every copy: the placement's targets first, then nodes serving it beyond them
    /// (copies made while healing).
    pub replicas: Vec<ReplicaView>,
    /// The node that answered its last query phase.
    pub last_served_by: Option<String>,
    /// The nodes the placement puts it on (what the cluster converges to).
    #[serde(default)]
    pub target: Vec<String>,
    /// The nodes serving it now, as they report (what searches are routed to).
    #[serde(default)]
    pub serving: Vec<String>,
    /// What nodes report doing to restore its copies (self-healing).
    #[serde(default)]
    pub healing: Vec<HealStep>,
    /// Why it has fewer serving copies than its target, when it has (`None`: it does not).
    #[serde(default)]
    pub under_replicated: Option<String>,
}

/// One node's healing work on a shard, as it reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HealStep {
    /// The shard's holders `lost` are unreachable; `node` takes it over if they stay away
    /// `heal_in_ms` longer (the grace period: a node back in time costs no copy).
    Waiting {
        node: String,
        heal_in_ms: u64,
        lost: Vec<String>,
    },
    /// `node` will install it once an install slot is free.
    Queued { node: String },
    /// `node` is installing it from the shard store.
    Copying {
        node: String,
        copied_bytes: u64,
        total_bytes: u64,
    },
    /// `node`'s install failed `attempts` times; next try in `retry_in_ms`.
    Failing {
        node: String,
        error: String,
        attempts: u32,
        retry_in_ms: u64,
    },
    /// `node`'s temporary copy is redundant again; dropped in `drop_in_ms`.
    Surplus { node: String, drop_in_ms: u64 },
}

impl HealStep {
    /// One line for people (the page, logs).
    pub fn describe(&self) -> String {
        let mb = |b: &u64| *b as f64 / 1e6;
        match self {
            HealStep::Waiting {
                node,
                heal_in_ms,
                lost,
            } => format!(
                "waiting for grace: {} unreachable, {node} takes over in {:.0} s",
                lost.join(", "),
                *heal_in_ms as f64 / 1000.0
            ),
            HealStep::Queued { node } => format!("queued on {node}"),
            HealStep::Copying {
                node,
                copied_bytes,
                total_bytes,
            } => format!(
                "copying to {node}: {:.1} of {:.1} MB",
                mb(copied_bytes),
                mb(total_bytes)
            ),
            HealStep::Failing {
                node,
                error,
                attempts,
                retry_in_ms,
            } => format!(
                "failing on {node} ({attempts} attempts, next in {:.0} s): {error}",
                *retry_in_ms as f64 / 1000.0
            ),
            HealStep::Surplus { node, drop_in_ms } => format!(
                "temporary copy on {node} dropped in {:.0} s",
                *drop_in_ms as f64 / 1000.0
            ),
        }
    }
}

/// One copy of a shard in [`ShardView`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaView {
    pub node: String,
    pub state: ReplicaHealth,
    /// Whether the placement puts the shard on this node (false: a temporary copy).
    #[serde(default)]
    pub target: bool,
    /// Why a failed replica failed, as its node reports it (the file a scrub found
    /// corrupt, a refused install).
    #[serde(default)]
    pub reason: Option<String>,
    /// The bytes of a serving copy, as its node reports them.
    #[serde(default)]
    pub bytes: Option<u64>,
}

/// Whether a copy of a shard can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaHealth {
    Serving,
    /// Its node is down.
    Down,
    /// Its node refused it (failed verification, schema mismatch...).
    Failed,
    /// Its node answers but does not hold it (a target whose copy is not installed).
    Missing,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str, from: usize, size: usize) -> SearchParams {
        SearchParams {
            q: q.into(),
            syntax: Syntax::Lenient,
            from,
            size,
            search_type: None,
            generation: None,
        }
    }

    #[test]
    fn limits_are_checked_with_a_reason() {
        params("anarchism", 0, MAX_SIZE).check().unwrap();
        let err = |p: SearchParams| p.check().unwrap_err();
        assert!(err(params("  ", 0, 10)).contains("missing query"));
        assert!(err(params("a", 0, MAX_SIZE + 1)).contains("size must be at most"));
        assert!(err(params("a", 10_000, 1)).contains("max_window = 10000"));
        let long = "a".repeat(4097);
        assert!(err(params(&long, 0, 1)).contains("max_query_bytes = 4096"));
        let tight = QueryLimits {
            max_window: 20,
            ..QueryLimits::default()
        };
        let refused = params("a", 15, 10).check_within(&tight).unwrap_err();
        assert!(refused.contains("max_window = 20"), "{refused}");
    }

    #[test]
    fn suggest_limits_are_checked_with_a_reason() {
        let params = |q: &str, size| SuggestParams { q: q.into(), size };
        params("", 0).check().unwrap();
        params("new y", MAX_SUGGEST_SIZE).check().unwrap();
        let long = "a".repeat(MAX_SUGGEST_PREFIX_BYTES + 1);
        assert!(params(&long, 8)
            .check()
            .unwrap_err()
            .contains("at most 1024"));
        let refused = params("a", MAX_SUGGEST_SIZE + 1).check().unwrap_err();
        assert!(refused.contains("size must be at most 20"), "{refused}");
    }

    #[test]
    fn answers_and_cluster_views_round_trip_through_json() {
        let answer = SearchAnswer {
            query: "q".into(),
            took_ms: 1.5,
            total: 1,
            hits: vec![Hit {
                id: 7,
                title: "T".into(),
                url: "u".into(),
                score: 1.25,
                snippet: "<b>q</b>".into(),
                shard: "n0of1-s0of1".into(),
                node: "n1".into(),
            }],
            shards: ShardsSummary::complete(1),
            partial: false,
            coverage: 1.0,
            generation: "base".into(),
        };
        let text = serde_json::to_string(&answer).unwrap();
        assert_eq!(serde_json::from_str::<SearchAnswer>(&text).unwrap(), answer);
        let view: ClusterView = serde_json::from_str(
            r#"{"nodes":[{"id":"n1","addr":"127.0.0.1:1","state":"suspect","last_error":null,
                "latency_ms":0.5,"in_flight":0,"pid":42,"replicas":["s"]}],
                "shards":[{"id":"s","docs":3,"replicas":[{"node":"n1","state":"down"}],
                "last_served_by":null}],"docs_total":3}"#,
        )
        .unwrap();
        assert_eq!(view.node("n1").unwrap().state, NodeHealth::Suspect);
        let suggested = SuggestAnswer {
            prefix: "new y".into(),
            took_ms: 0.5,
            suggestions: vec![SuggestedTitle {
                id: 3,
                title: "New York City".into(),
                redirect: Some("NYC".into()),
                url: "u".into(),
                links: 9,
            }],
            shards: ShardsSummary::complete(2),
            partial: false,
        };
        let text = serde_json::to_string(&suggested).unwrap();
        assert_eq!(
            serde_json::from_str::<SuggestAnswer>(&text).unwrap(),
            suggested
        );
        assert_eq!(view.shards[0].replicas[0].state, ReplicaHealth::Down);
    }
}
