//! Deterministic tests of the failover core: the fan-out (retries, hedging, the hedge
//! budget, last chances), the replica choice and node health, against scripted fake nodes
//! behind the [`NodeTransport`] seam, under a paused tokio clock: every delay is exact and
//! nothing depends on the machine's speed. Each test fails without the behaviour it pins.
//! The seam also shows what a node is told: the budget each attempt carries, and what a
//! health probe must answer to count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use shard_proto::stats::ShardTermStats;
use shard_proto::wire::{
    FetchRequest, FetchResponse, FetchedDoc, HealthResponse, LeafHit, ReplicaState, ShardOutcome,
    StatsRequest, StatsResponse, SuggestResponse, Suggestion, WIRE_VERSION,
};
use shard_proto::{ShardId, WikiSchema};
use tokio::time::Instant;

use crate::cluster::{NodeConfig, Timeouts};
use crate::frontend::fetch::fetch_page;
use crate::frontend::health::probe_once;
use crate::frontend::membership::Members;
use crate::frontend::merge::{coverage, MergedHit};
use crate::frontend::metrics::Metrics;
use crate::frontend::nodes::{
    AttemptError, NodeHandle, NodeTransport, RpcCall, RpcReply, PROBATION_SUCCESSES, PROBATION_TURN,
};
use crate::frontend::policy::HedgeBudget;
use crate::frontend::replica::ReplicaSet;
use crate::frontend::scatter::{Fanout, Gathered, Outcomes, Phase};
use crate::frontend::suggest::suggest_on;
use crate::model::{NodeHealth, SuggestAnswer, SuggestParams};
use crate::placement::Placement;

pub(super) const FAST: Duration = Duration::from_millis(10);

/// What a scripted node does with one request.
#[derive(Clone, Debug)]
pub(super) enum Act {
    /// Answers every shard asked, after this delay.
    Answer(Duration),
    /// Fails the whole request at once.
    Fail(AttemptError),
}

/// Acts handed out in order to whichever node is asked next; the last one repeats.
#[derive(Default)]
pub(super) struct Script(Mutex<Vec<Act>>);

impl Script {
    pub(super) fn set(&self, acts: Vec<Act>) {
        *self.0.lock() = acts;
    }

    fn next(&self) -> Act {
        let mut acts = self.0.lock();
        match acts.len() {
            0 => Act::Answer(FAST),
            1 => acts[0].clone(),
            _ => acts.remove(0),
        }
    }
}

/// A fake node: follows its own script if it has one, else the cluster's; records every
/// request it gets and the budget it came with; answers probes with `health` if set, else
/// as a healthy node of this cluster.
pub(super) struct Scripted {
    id: String,
    pub(super) own: Script,
    shared: Arc<Script>,
    calls: Mutex<Vec<(Instant, Vec<ShardId>)>>,
    budgets: Mutex<Vec<Duration>>,
    health: Mutex<Option<Result<HealthResponse, AttemptError>>>,
    /// The shards its default health answer reports serving (its placement's).
    held: Vec<ShardId>,
}

impl Scripted {
    /// Its health answer as a healthy node serving its shards.
    fn healthy(&self) -> HealthResponse {
        healthy(&self.id, &self.held)
    }

    pub(super) fn calls(&self) -> Vec<(Instant, Vec<ShardId>)> {
        self.calls.lock().clone()
    }
}

impl NodeTransport for Scripted {
    fn call(
        &self,
        call: RpcCall,
        budget: Duration,
    ) -> BoxFuture<'static, Result<RpcReply, AttemptError>> {
        let shards = match &call {
            RpcCall::Stats(request) => request.shards.clone(),
            RpcCall::Fetch(request) => request.docs.iter().map(|d| d.shard).collect(),
            RpcCall::Suggest(request) => request.shards.clone(),
            RpcCall::Search(_) => {
                return Box::pin(async { Err(AttemptError::Decode("not scripted".into())) })
            }
        };
        self.budgets.lock().push(budget);
        self.calls.lock().push((Instant::now(), shards));
        let scripted_alone = !self.own.0.lock().is_empty();
        let act = match scripted_alone {
            true => self.own.next(),
            false => self.shared.next(),
        };
        let node = self.id.clone();
        Box::pin(async move {
            match act {
                Act::Answer(delay) => {
                    tokio::time::sleep(delay).await;
                    Ok(answer(node, &call))
                }
                Act::Fail(error) => Err(error),
            }
        })
    }

    fn health(&self) -> BoxFuture<'static, Result<HealthResponse, AttemptError>> {
        let answer = self
            .health
            .lock()
            .clone()
            .unwrap_or_else(|| Ok(self.healthy()));
        Box::pin(async move { answer })
    }
}

/// A scripted node's answer: empty statistics for every shard, or every document asked
/// with the page id its address names (`doc`), titled by the node that fetched it.
fn answer(node: String, call: &RpcCall) -> RpcReply {
    match call {
        RpcCall::Fetch(request) => RpcReply::Fetch(FetchResponse {
            docs: request
                .docs
                .iter()
                .map(|d| {
                    ShardOutcome::Ok(FetchedDoc {
                        id: u64::from(d.doc),
                        title: format!("from {node}"),
                        url: String::new(),
                        snippet_html: String::new(),
                    })
                })
                .collect(),
            node,
        }),
        RpcCall::Stats(request) => RpcReply::Stats(StatsResponse {
            shards: request
                .shards
                .iter()
                .map(|s| (*s, ShardOutcome::Ok(ShardTermStats::default())))
                .collect(),
            node,
        }),
        RpcCall::Suggest(request) => RpcReply::Suggest(SuggestResponse {
            shards: request
                .shards
                .iter()
                .map(|s| (*s, ShardOutcome::Ok(vec![suggested(s, &node)])))
                .collect(),
            node,
        }),
        RpcCall::Search(_) => unreachable!("searches are not scripted"),
    }
}

/// A scripted shard's one suggestion: page `shard number`, titled by the node that
/// answered, as linked as its number.
fn suggested(shard: &ShardId, node: &str) -> Suggestion {
    let n = u64::from(shard.shard);
    Suggestion {
        id: n,
        title: format!("from {node}"),
        redirect: None,
        url: String::new(),
        links: n,
        key: format!("page {n}"),
    }
}

fn healthy(node: &str, held: &[ShardId]) -> HealthResponse {
    let serving = ReplicaState::Serving {
        docs: 1,
        bytes: 1,
        generation: None,
    };
    HealthResponse {
        node: node.to_string(),
        pid: 1,
        uptime_millis: 0,
        in_flight: 0,
        replicas: held.iter().map(|s| (*s, serving.clone())).collect(),
        healing: Vec::new(),
        generations: Vec::new(),
        wire_version: WIRE_VERSION,
        schema: WikiSchema::new().fingerprint(),
    }
}

/// The statistics phase, the simplest phase to script.
pub(super) struct StatsProbe;

impl Phase for StatsProbe {
    fn generation(&self) -> Option<&str> {
        None
    }

    type Item = ShardTermStats;

    fn call(&self, shards: Vec<ShardId>) -> RpcCall {
        RpcCall::Stats(Arc::new(StatsRequest {
            generation: None,
            shards,
            fields: Vec::new(),
            terms: Vec::new(),
        }))
    }

    fn split(
        &self,
        _shards: &[ShardId],
        reply: RpcReply,
    ) -> Result<Outcomes<ShardTermStats>, AttemptError> {
        match reply {
            RpcReply::Stats(answer) => Ok(answer.shards),
            _ => Err(AttemptError::Decode("expected statistics".into())),
        }
    }
}

pub(super) fn shard(n: u32) -> ShardId {
    ShardId::new(0, 1, n, 4).expect("valid shard id")
}

/// Scripted nodes `n0`, `n1`... and a fan-out over them; `holders[i]` are the nodes holding
/// shard `i`.
pub(super) struct Cluster {
    pub(super) fanout: Fanout,
    pub(super) nodes: Vec<Arc<Scripted>>,
    pub(super) shared: Arc<Script>,
    shards: Vec<ShardId>,
}

impl Cluster {
    pub(super) fn new(
        nodes: usize,
        holders: &[&[usize]],
        timeouts: Timeouts,
        budget: HedgeBudget,
    ) -> Self {
        Self::with_local(nodes, holders, timeouts, budget, None)
    }

    /// As [`Cluster::new`], node `local` being the coordinating process's own.
    pub(super) fn with_local(
        nodes: usize,
        holders: &[&[usize]],
        timeouts: Timeouts,
        budget: HedgeBudget,
        local: Option<usize>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let shared = Arc::new(Script::default());
        let scripted: Vec<Arc<Scripted>> = (0..nodes)
            .map(|i| {
                Arc::new(Scripted {
                    id: format!("n{i}"),
                    own: Script::default(),
                    shared: Arc::clone(&shared),
                    calls: Mutex::default(),
                    budgets: Mutex::default(),
                    health: Mutex::default(),
                    held: holders
                        .iter()
                        .enumerate()
                        .filter(|(_, nodes)| nodes.contains(&i))
                        .map(|(s, _)| shard(s as u32))
                        .collect(),
                })
            })
            .collect();
        let handles = scripted
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let config = NodeConfig {
                    id: node.id.clone(),
                    rpc: "127.0.0.1:9".parse().expect("address"),
                    listen: None,
                    data_dir: None,
                    http: None,
                    http_listen: None,
                    drain: false,
                };
                let transport: Arc<dyn NodeTransport> = node.clone();
                let handle = NodeHandle::with_transport(i, &config, transport, &timeouts, &metrics);
                Arc::new(match local == Some(i) {
                    true => handle.into_local(),
                    false => handle,
                })
            })
            .collect();
        let shards: Vec<ShardId> = (0..holders.len() as u32).map(shard).collect();
        let placement = Placement {
            replicas: shards
                .iter()
                .zip(holders)
                .map(|(s, nodes)| (*s, nodes.iter().map(|n| format!("n{n}")).collect()))
                .collect(),
        };
        Cluster {
            fanout: Fanout {
                replicas: Arc::new(Members::new(ReplicaSet::new(handles, &placement))),
                metrics,
                hedge_budget: budget,
                attempt_timeout: timeouts.attempt(),
            },
            nodes: scripted,
            shared,
            shards,
        }
    }

    pub(super) async fn scatter(&self) -> Gathered<ShardTermStats> {
        self.fanout.hedge_budget.deposit();
        let deadline = Instant::now() + Duration::from_secs(3);
        self.fanout
            .scatter(&Arc::new(StatsProbe), &self.shards, deadline)
            .await
    }

    /// Enough fast answers for every node to have a trusted p95.
    pub(super) async fn warm_up(&self) {
        self.shared.set(vec![Act::Answer(FAST)]);
        for _ in 0..200 {
            self.scatter().await;
        }
    }

    pub(super) fn handle(&self, node: usize) -> Arc<NodeHandle> {
        Arc::clone(&self.fanout.replicas.current().nodes[node])
    }

    pub(super) fn calls_since(&self, node: usize, since: Instant) -> Vec<Instant> {
        let calls = self.nodes[node].calls();
        calls
            .into_iter()
            .map(|(at, _)| at)
            .filter(|at| *at >= since)
            .collect()
    }
}

pub(super) fn timeouts() -> Timeouts {
    Timeouts {
        attempt_ms: 500,
        deadline_ms: 3_000,
        eject_after_failures: 1_000,
        ..Timeouts::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_hedge_fires_after_the_p95_and_lands_on_another_replica() {
    let cluster = Cluster::new(2, &[&[0, 1]], timeouts(), HedgeBudget::new(1.0, 10.0));
    cluster.warm_up().await;
    let (hedges, won) = (
        cluster.fanout.metrics.hedges.get(),
        cluster.fanout.metrics.hedges_won.get(),
    );
    // Whichever node is asked first hangs; any later request is fast.
    cluster.shared.set(vec![
        Act::Answer(Duration::from_secs(10)),
        Act::Answer(FAST),
    ]);
    let start = Instant::now();
    let gathered = cluster.scatter().await;
    let first = (0..2)
        .find(|&n| cluster.calls_since(n, start).first() == Some(&start))
        .expect("one node asked at once");
    let other = 1 - first;
    let hedged_at = cluster.calls_since(other, start);
    assert_eq!(hedged_at.len(), 1, "one hedge, to the other replica");
    let waited = hedged_at[0] - start;
    let p95 = cluster.handle(first).hedge_after();
    assert!(
        p95 >= FAST && waited >= p95,
        "hedged after {waited:?}, p95 {p95:?}"
    );
    assert!(
        waited < p95 + Duration::from_millis(1),
        "hedged late: {waited:?}"
    );
    assert_eq!(gathered.answers[&shard(0)].node, other);
    assert_eq!(cluster.fanout.metrics.hedges.get() - hedges, 1);
    assert_eq!(cluster.fanout.metrics.hedges_won.get() - won, 1);
    assert!(
        Instant::now() - start < Duration::from_millis(100),
        "no wait for the hung one"
    );
}

/// A page of `n` hits of shard 0, as answered by `node` in the query phase.
fn page_of(n: u32, node: usize) -> Vec<MergedHit> {
    (0..n)
        .map(|doc| MergedHit {
            hit: LeafHit {
                score: 1.0,
                id: u64::from(doc),
                segment: 0,
                doc,
            },
            shard: shard(0),
            node,
            rank: doc as usize,
        })
        .collect()
}

fn fetch_template() -> FetchRequest {
    FetchRequest {
        generation: None,
        query: "q".into(),
        syntax: Default::default(),
        docs: Vec::new(),
        snippet_chars: 100,
        stats: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_fetch_phase_is_hedged_to_another_replica_and_retried_on_failure() {
    let cluster = Cluster::new(2, &[&[0, 1]], timeouts(), HedgeBudget::new(1.0, 10.0));
    cluster.warm_up().await;
    let page = page_of(3, 0);
    let deadline = || Instant::now() + Duration::from_secs(3);
    // The node asked first hangs: the fetch is hedged on the other replica after that
    // node's p95 and the page comes from there, whole and in order.
    cluster.shared.set(vec![
        Act::Answer(Duration::from_secs(10)),
        Act::Answer(FAST),
    ]);
    let hedges = cluster.fanout.metrics.hedges.get();
    let start = Instant::now();
    let (hits, failures) = fetch_page(
        &cluster.fanout,
        fetch_template(),
        &page,
        vec![None; 3],
        deadline(),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(cluster.fanout.metrics.hedges.get() - hedges, 1);
    assert!(Instant::now() - start < Duration::from_millis(100));
    let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    let first = (0..2)
        .find(|&n| cluster.calls_since(n, start).first() == Some(&start))
        .expect("one node asked at once");
    let from_other = format!("from n{}", 1 - first);
    assert!(hits.iter().all(|h| h.title == from_other), "{hits:?}");
    // The node asked first fails: the documents are fetched from the other replica.
    cluster.shared.set(vec![
        Act::Fail(AttemptError::Status(503, "busy".into())),
        Act::Answer(FAST),
    ]);
    let (hits, failures) = fetch_page(
        &cluster.fanout,
        fetch_template(),
        &page,
        vec![None; 3],
        deadline(),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(hits.iter().all(|h| h.title.starts_with("from n")));
    // Both fail: every hit of the shard is a named failure, with its id kept.
    cluster
        .shared
        .set(vec![Act::Fail(AttemptError::Status(503, "busy".into()))]);
    let (hits, failures) = fetch_page(
        &cluster.fanout,
        fetch_template(),
        &page,
        vec![None; 3],
        deadline(),
    )
    .await;
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(
        failures[0].reason.starts_with("fetch of page 0:"),
        "{failures:?}"
    );
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(hits.iter().all(|h| h.title.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn suggestions_are_hedged_retried_and_partial_like_a_search() {
    let cluster = Cluster::new(
        2,
        &[&[0, 1], &[0, 1], &[0, 1]],
        timeouts(),
        HedgeBudget::new(1.0, 10.0),
    );
    cluster.warm_up().await;
    let params = SuggestParams {
        q: "page".into(),
        size: 5,
    };
    let deadline = || Instant::now() + Duration::from_secs(3);
    let suggest = || suggest_on(&cluster.fanout, &cluster.shards, &params, deadline());
    let ids = |answer: &SuggestAnswer| answer.suggestions.iter().map(|s| s.id).collect::<Vec<_>>();
    // The first node asked hangs: its shards are hedged to the other replica after its
    // p95, and every shard answers (merged most linked first: page n has n links).
    cluster.shared.set(vec![
        Act::Answer(Duration::from_secs(10)),
        Act::Answer(FAST),
    ]);
    let hedges = cluster.fanout.metrics.hedges.get();
    let answer = suggest().await;
    assert!(!answer.partial, "{:?}", answer.shards);
    assert_eq!(cluster.fanout.metrics.hedges.get() - hedges, 1);
    assert_eq!(ids(&answer), [2, 1, 0]);
    // The first node asked fails: its shards are retried on the other replica.
    cluster.shared.set(vec![
        Act::Fail(AttemptError::Status(503, "busy".into())),
        Act::Answer(FAST),
    ]);
    let answer = suggest().await;
    assert!(!answer.partial, "{:?}", answer.shards);
    assert_eq!(ids(&answer), [2, 1, 0]);
    // Every replica fails: an answer all the same, partial, naming every shard.
    cluster
        .shared
        .set(vec![Act::Fail(AttemptError::Status(503, "busy".into()))]);
    let answer = suggest().await;
    assert!(answer.partial && answer.suggestions.is_empty());
    assert_eq!(answer.shards.failed, 3, "{:?}", answer.shards);
    // Nothing searchable typed: no node is asked.
    let calls = |c: &Cluster| (0..2).map(|n| c.nodes[n].calls().len()).sum::<usize>();
    let before = calls(&cluster);
    let blank = SuggestParams {
        q: " ?! ".into(),
        size: 5,
    };
    let empty = suggest_on(&cluster.fanout, &cluster.shards, &blank, deadline()).await;
    assert!(empty.suggestions.is_empty() && !empty.partial);
    assert_eq!(calls(&cluster), before);
}

#[tokio::test(start_paused = true)]
async fn the_hedge_budget_caps_hedges_near_its_share() {
    let ratio = 0.1;
    let cluster = Cluster::new(2, &[&[0, 1]], timeouts(), HedgeBudget::new(ratio, 1.0));
    cluster.warm_up().await;
    let hedges_before = cluster.fanout.metrics.hedges.get();
    let searches = 200;
    for _ in 0..searches {
        // The first request of every search hangs until its attempt times out (a failure,
        // not a latency sample: the p95 stays put and every search is worth hedging).
        cluster.shared.set(vec![
            Act::Answer(Duration::from_secs(10)),
            Act::Answer(FAST),
        ]);
        let gathered = cluster.scatter().await;
        assert!(gathered.failures.is_empty(), "{:?}", gathered.failures);
    }
    let hedges = cluster.fanout.metrics.hedges.get() - hedges_before;
    // A token every 1 / ratio searches (floating point may make it one search more).
    let share = (searches as f64 * ratio) as u64;
    assert!(
        (share - 3..=share + 2).contains(&hedges),
        "{hedges} hedges in {searches} searches, budget {ratio}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_untried_replica_gets_the_rest_of_the_deadline() {
    let cluster = Cluster::new(2, &[&[0, 1]], timeouts(), HedgeBudget::new(0.0, 0.0));
    // The first node asked refuses (5xx); the other, the last replica left, answers after
    // twice the attempt timeout, well within the deadline.
    let slow = Duration::from_millis(1_000);
    cluster.shared.set(vec![
        Act::Fail(AttemptError::Status(503, "busy".into())),
        Act::Answer(slow),
    ]);
    let start = Instant::now();
    let gathered = cluster.scatter().await;
    assert!(gathered.failures.is_empty(), "{:?}", gathered.failures);
    let took = Instant::now() - start;
    assert!(
        took >= slow && took < slow + Duration::from_millis(1),
        "{took:?}"
    );
    let answered_by = gathered.answers[&shard(0)].node;
    assert_eq!(cluster.calls_since(answered_by, start).len(), 1);
    // Each node was told how long it is waited for, so it can stop when nobody waits: the
    // first the attempt timeout, the last replica the rest of the deadline.
    let first = cluster.nodes[1 - answered_by].budgets.lock().clone();
    let last = cluster.nodes[answered_by].budgets.lock().clone();
    assert_eq!(first, vec![timeouts().attempt()]);
    assert_eq!(last.len(), 1);
    assert!(
        last[0] > timeouts().attempt() && last[0] <= Duration::from_secs(3),
        "{last:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_400_does_not_eject_but_repeated_other_4xx_and_protocol_errors_do() {
    let timeouts = Timeouts {
        eject_after_failures: 2,
        ..timeouts()
    };
    let cluster = Cluster::new(2, &[&[0, 1]], timeouts.clone(), HedgeBudget::default());
    let call = StatsProbe.call(vec![shard(0)]);
    let budget = Duration::from_secs(1);
    cluster.nodes[0]
        .own
        .set(vec![Act::Fail(AttemptError::Status(
            400,
            "bad request".into(),
        ))]);
    for _ in 0..10 {
        assert!(cluster.handle(0).call(call.clone(), budget).await.is_err());
    }
    assert_eq!(cluster.handle(0).state(), NodeHealth::Up);
    cluster.nodes[1]
        .own
        .set(vec![Act::Fail(AttemptError::Decode(
            "garbage frame".into(),
        ))]);
    assert!(cluster.handle(1).call(call.clone(), budget).await.is_err());
    assert_eq!(cluster.handle(1).state(), NodeHealth::Suspect);
    assert!(cluster.handle(1).call(call.clone(), budget).await.is_err());
    assert_eq!(cluster.handle(1).state(), NodeHealth::Down);
    // A node answering 401 (another cluster's secret) or 404 (a foreign server on the
    // port) to everything is not serving this cluster: ejected like a failing one.
    for status in [401, 404] {
        let cluster = Cluster::new(1, &[&[0]], timeouts.clone(), HedgeBudget::default());
        let refusal = AttemptError::Status(status, "not for you".into());
        cluster.nodes[0].own.set(vec![Act::Fail(refusal)]);
        for _ in 0..2 {
            assert!(cluster.handle(0).call(call.clone(), budget).await.is_err());
        }
        assert_eq!(cluster.handle(0).state(), NodeHealth::Down, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_counts_only_from_the_right_node_wire_version_and_schema() {
    let timeouts = Timeouts {
        eject_after_failures: 2,
        ..timeouts()
    };
    let wrong_node = healthy("n7", &[]);
    let wrong_wire = HealthResponse {
        wire_version: WIRE_VERSION + 1,
        ..healthy("n0", &[])
    };
    let wrong_schema = HealthResponse {
        schema: "another schema".into(),
        ..healthy("n0", &[])
    };
    let answers = [
        Ok(wrong_node),
        Ok(wrong_wire),
        Ok(wrong_schema),
        // A 400 to a health request is no bad request of ours: nothing else answers it.
        Err(AttemptError::Status(400, "unknown path".into())),
    ];
    for answer in answers {
        let cluster = Cluster::new(1, &[&[0]], timeouts.clone(), HedgeBudget::default());
        let described = format!("{answer:?}");
        *cluster.nodes[0].health.lock() = Some(answer);
        for _ in 0..2 {
            probe_once(&cluster.handle(0), Duration::from_secs(1)).await;
        }
        assert_eq!(cluster.handle(0).state(), NodeHealth::Down, "{described}");
        // The real node answering again brings it back.
        *cluster.nodes[0].health.lock() = None;
        probe_once(&cluster.handle(0), Duration::from_secs(1)).await;
        assert_ne!(cluster.handle(0).state(), NodeHealth::Down, "{described}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejoining_node_gets_a_bounded_share_until_it_proves_itself() {
    let timeouts = Timeouts {
        eject_after_failures: 1,
        ..timeouts()
    };
    let cluster = Cluster::new(2, &[&[0, 1]], timeouts, HedgeBudget::new(0.0, 0.0));
    cluster.warm_up().await;
    assert!(cluster.handle(1).record_failure(&AttemptError::Timeout));
    cluster.handle(1).record_health(&cluster.nodes[1].healthy());
    assert_eq!(cluster.handle(1).state(), NodeHealth::Probation);
    let start = Instant::now();
    let searches = PROBATION_TURN * 10;
    for _ in 0..searches {
        cluster.scatter().await;
    }
    // One search in PROBATION_TURN: a bounded share, not the half (or all) it would get
    // as a healthy node with a low latency estimate.
    assert_eq!(
        cluster.calls_since(1, start).len(),
        searches / PROBATION_TURN
    );
    assert_eq!(cluster.handle(1).state(), NodeHealth::Probation);
    for _ in 0..PROBATION_TURN * PROBATION_SUCCESSES as usize {
        cluster.scatter().await;
    }
    assert_eq!(cluster.handle(1).state(), NodeHealth::Up, "proved itself");
}

#[tokio::test(start_paused = true)]
async fn a_shard_with_no_live_replica_is_a_named_failure_with_its_coverage() {
    let timeouts = Timeouts {
        eject_after_failures: 1,
        ..timeouts()
    };
    let cluster = Cluster::new(2, &[&[0], &[1]], timeouts, HedgeBudget::default());
    let refused = AttemptError::Connect("connection refused".into());
    assert!(cluster.handle(1).record_failure(&refused));
    let gathered = cluster.scatter().await;
    assert!(gathered.answers.contains_key(&shard(0)));
    let reason = &gathered.failures[&shard(1)];
    assert!(
        reason.contains("no live replica") && reason.contains("n1") && reason.contains("refused"),
        "{reason}"
    );
    assert!(
        cluster.nodes[1].calls().is_empty(),
        "an unreachable node is not asked"
    );
    let docs: BTreeMap<ShardId, u64> = [(shard(0), 30), (shard(1), 10)].into();
    assert_eq!(coverage(&docs, gathered.answers.keys()), 0.75);
}

#[tokio::test(start_paused = true)]
async fn shards_go_to_the_nodes_that_report_serving_them_not_to_the_placement() {
    // The placement puts shard 0 on n0 only, and shard 1 on n1 only.
    let cluster = Cluster::new(2, &[&[0], &[1]], timeouts(), HedgeBudget::default());
    cluster.shared.set(vec![Act::Answer(FAST)]);
    // n1 reports a copy of shard 0 too (installed while healing); n0 reports none.
    let mut n1 = cluster.nodes[1].healthy();
    n1.replicas.push((shard(0), n1.replicas[0].1.clone()));
    cluster.handle(1).record_health(&n1);
    cluster.handle(0).record_health(&healthy("n0", &[]));
    let start = Instant::now();
    let gathered = cluster.scatter().await;
    assert!(gathered.failures.is_empty(), "{:?}", gathered.failures);
    assert!(
        cluster.calls_since(0, start).is_empty(),
        "n0 serves nothing"
    );
    // n0 now serves its shard again, and n1 failed its copy: each goes to its holder.
    cluster.handle(0).record_health(&cluster.nodes[0].healthy());
    let mut n1 = cluster.nodes[1].healthy();
    n1.replicas
        .push((shard(0), ReplicaState::Failed("corrupt".into())));
    cluster.handle(1).record_health(&n1);
    let start = Instant::now();
    cluster.scatter().await;
    let to_n1: Vec<ShardId> = cluster.nodes[1]
        .calls()
        .into_iter()
        .filter(|(at, _)| *at >= start)
        .flat_map(|(_, shards)| shards)
        .collect();
    assert_eq!(to_n1, [shard(1)]);
    assert_eq!(cluster.calls_since(0, start).len(), 1);
}
