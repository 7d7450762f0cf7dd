//! One searcher node as the front-end sees it: how it is reached (a [`NodeTransport`]:
//! the pooled RPC client in production, a scripted fake in the failover tests), how loaded
//! and how fast it is (one latency estimate, [`Latency`]), and how healthy ([`Health`]).
//!
//! Health changes on evidence only, with hysteresis:
//! - `up` → `suspect` after a failed request (connect error, timeout, 5xx, any 4xx but 400,
//!   bad answer; [`AttemptError::is_node_failure`] is the one classification) or a sustained latency
//!   shift ([`SLOW_STREAK`] answers in a row slower than its own p95). A hedge is normal
//!   tail behaviour and changes nothing;
//! - `suspect` → `up` after [`RECOVER_AFTER`] good answers in a row;
//! - any state → `down` (ejected) after `eject_after_failures` failures in a row;
//! - `down` → `probation` when the prober hears from it, never straight to `up`: it is
//!   ranked after every other live node except on one ranking in [`PROBATION_TURN`] (a
//!   bounded share of the traffic), and becomes `up` after [`PROBATION_SUCCESSES`] good
//!   answers in a row; one failure sends it back down. Its latency estimate is the one it
//!   had (nothing decays while it is away), so it does not come back looking idle.
//!
//! *When* to probe lives in `health.rs`, *which* node to ask in `replica.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hdrhistogram::Histogram as Hdr;
use parking_lot::Mutex;
use shard_proto::auth::ClusterKey;
use shard_proto::generation::BASE;
use shard_proto::wire::{
    FetchRequest, FetchResponse, HealState, HealthResponse, ReplicaState, SearchRequest,
    SearchResponse, StatsRequest, StatsResponse, SuggestRequest, SuggestResponse,
};
use shard_proto::ShardId;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::addr::NodeAddr;
use crate::cluster::{NodeConfig, Timeouts};
use crate::frontend::metrics::{Metrics, NodeMetrics};
use crate::model::NodeHealth;
use crate::rpc::{NodeClient, RpcError};

/// Most requests the front-end keeps in flight to one node; beyond, callers queue (and the
/// wait counts against the attempt timeout).
const MAX_IN_FLIGHT_PER_NODE: usize = 256;
/// Weight of a new sample in the latency estimate.
const EWMA_WEIGHT: f64 = 0.2;
/// Hedging never fires earlier than this, whatever the p95: on a noisy 2-core box a
/// sub-millisecond p95 is jitter, and a hedge costs a whole extra node request.
pub const HEDGE_FLOOR: Duration = Duration::from_millis(3);
/// Until a node has this many samples its p95 is not trusted; hedge after this instead.
const HEDGE_UNTRUSTED: Duration = Duration::from_millis(25);
const MIN_SAMPLES: u64 = 20;
/// Latency samples per window; p95 is computed over the current and previous windows.
const WINDOW_SAMPLES: u64 = 512;
/// Answers in a row slower than the node's p95 that make it suspect (one in twenty is
/// expected; five in a row is a shift).
pub const SLOW_STREAK: u32 = 5;
/// Good answers in a row that bring a suspect node back up.
pub const RECOVER_AFTER: u32 = 10;
/// Good answers in a row that end a rejoined node's probation.
pub const PROBATION_SUCCESSES: u32 = 20;
/// A node on probation is ranked with the healthy ones on one ranking in this many.
pub const PROBATION_TURN: usize = 8;

/// One RPC to a node.
#[derive(Clone, Debug)]
pub enum RpcCall {
    Stats(Arc<StatsRequest>),
    Search(Arc<SearchRequest>),
    Fetch(Arc<FetchRequest>),
    Suggest(Arc<SuggestRequest>),
}

/// Its answer.
#[derive(Debug)]
pub enum RpcReply {
    Stats(StatsResponse),
    Search(SearchResponse),
    Fetch(FetchResponse),
    Suggest(SuggestResponse),
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AttemptError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    #[error("status {0}: {1}")]
    Status(u16, String),
    #[error("bad answer: {0}")]
    Decode(String),
}

impl AttemptError {
    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AttemptError::Connect(_) => "connect",
            AttemptError::Timeout => "timeout",
            AttemptError::Status(code, _) if *code < 500 => "rejected",
            AttemptError::Status(..) => "status",
            AttemptError::Decode(_) => "decode",
        }
    }

    /// Whether this says something about the node's health: everything but a 400, which
    /// says our request was bad. Any other 4xx means the process on the port does not
    /// serve this cluster's RPC (a foreign server: 404/405; another cluster's secret or a
    /// skewed clock: 401), so repeated ones eject it like any other failure. The one place
    /// errors are classified.
    pub fn is_node_failure(&self) -> bool {
        !matches!(self, AttemptError::Status(400, _))
    }
}

impl From<RpcError> for AttemptError {
    fn from(error: RpcError) -> Self {
        match error {
            RpcError::Connect { reason, .. } => AttemptError::Connect(reason),
            // Only connecting has its own timeout in the client; the attempt timeout is ours.
            RpcError::Timeout { .. } => AttemptError::Connect("connect timed out".into()),
            RpcError::Status(code, message) => AttemptError::Status(code, message),
            RpcError::Decode(reason) => AttemptError::Decode(reason),
            RpcError::Body(reason) => AttemptError::Connect(format!("broken answer: {reason}")),
        }
    }
}

/// How the front-end reaches a node: the seam under the failover core. Production uses
/// the pooled RPC client ([`NodeClient`]); the failover tests use scripted fake nodes
/// under a paused tokio clock.
pub trait NodeTransport: Send + Sync + 'static {
    /// One RPC; the node stops working on it after `budget` (the caller waits no longer).
    fn call(
        &self,
        call: RpcCall,
        budget: Duration,
    ) -> BoxFuture<'static, Result<RpcReply, AttemptError>>;
    /// The prober's health RPC.
    fn health(&self) -> BoxFuture<'static, Result<HealthResponse, AttemptError>>;
}

impl NodeTransport for NodeClient {
    fn call(
        &self,
        call: RpcCall,
        budget: Duration,
    ) -> BoxFuture<'static, Result<RpcReply, AttemptError>> {
        let client = self.clone();
        Box::pin(async move {
            let reply = match call {
                RpcCall::Stats(r) => RpcReply::Stats(client.stats(&r, budget).await?),
                RpcCall::Search(r) => RpcReply::Search(client.search(&r, budget).await?),
                RpcCall::Fetch(r) => RpcReply::Fetch(client.fetch(&r, budget).await?),
                RpcCall::Suggest(r) => RpcReply::Suggest(client.suggest(&r, budget).await?),
            };
            Ok(reply)
        })
    }

    fn health(&self) -> BoxFuture<'static, Result<HealthResponse, AttemptError>> {
        let client = self.clone();
        Box::pin(async move { Ok(client.health().await?) })
    }
}

/// The node's one latency estimate: an EWMA of its answers (its cost, and what `/cluster`
/// shows) and a window of recent samples whose p95 says when a request is worth hedging.
/// Only answers update it: a node away for a while keeps the estimate it left with.
struct Latency {
    ewma_micros: f64,
    current: Hdr<u64>,
    previous: Hdr<u64>,
    hedge_after_micros: u64,
}

impl Latency {
    fn new() -> Self {
        let hdr = || Hdr::new_with_bounds(1, 120_000_000, 2).expect("valid hdrhistogram bounds");
        Latency {
            ewma_micros: 0.0,
            current: hdr(),
            previous: hdr(),
            hedge_after_micros: HEDGE_UNTRUSTED.as_micros() as u64,
        }
    }

    /// Records an answer's latency; returns whether it was slower than the p95 before it.
    fn record(&mut self, micros: u64) -> bool {
        let slow = micros > self.hedge_after_micros;
        self.ewma_micros = if self.ewma_micros == 0.0 {
            micros as f64
        } else {
            self.ewma_micros * (1.0 - EWMA_WEIGHT) + micros as f64 * EWMA_WEIGHT
        };
        let _ = self.current.record(micros.clamp(1, 120_000_000));
        if self.current.len() >= WINDOW_SAMPLES {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.reset();
        }
        let samples = self.current.len() + self.previous.len();
        if samples >= MIN_SAMPLES && samples.is_multiple_of(16) {
            let mut both = self.previous.clone();
            let _ = both.add(&self.current);
            let floor = HEDGE_FLOOR.as_micros() as u64;
            self.hedge_after_micros = both.value_at_quantile(0.95).max(floor);
        }
        slow
    }
}

/// What answers, failures and health probes told about a node.
#[derive(Debug)]
struct Health {
    state: NodeHealth,
    consecutive_failures: u32,
    /// Good answers (no slower than the p95) in a row.
    good_streak: u32,
    /// Answers slower than the p95 in a row.
    slow_streak: u32,
    last_error: Option<String>,
    pid: Option<u32>,
    /// How long the node's process had been running at its last health answer.
    uptime_ms: Option<u64>,
    /// The replicas the node reported in its last health answer (`None` until it first
    /// answers one: until then the placement's target is all there is to go by).
    reported: Option<HashMap<ShardId, ReplicaState>>,
    /// What the node reported doing to heal, per shard.
    healing: HashMap<ShardId, HealState>,
    /// The shards it reported serving per index generation (the base one included).
    generations: HashMap<String, HashSet<ShardId>>,
    /// The last failure was a refused or broken connection: the process is gone, so the
    /// node is no last resort (see [`NodeHandle::last_resort_for`]).
    unreachable: bool,
    /// It has answered (a request or a probe) at least once: a node that comes up for the
    /// first time has no bad record to make up for, and skips probation.
    ever_answered: bool,
}

impl Health {
    /// See [`NodeHandle::holds`].
    fn holds(&self, shard: &ShardId, targeted: bool) -> bool {
        match &self.reported {
            None => targeted,
            Some(reported) => matches!(reported.get(shard), Some(ReplicaState::Serving { .. })),
        }
    }

    /// Whether it holds a serving replica of `shard` in `generation` (`None`: the base
    /// one): a node healing one generation may hold a shard there and not in another.
    fn holds_in(&self, shard: &ShardId, targeted: bool, generation: Option<&str>) -> bool {
        if !self.holds(shard, targeted) {
            return false;
        }
        if self.generations.is_empty() {
            return true;
        }
        let generation = generation.unwrap_or(BASE);
        (self.generations.get(generation)).is_some_and(|shards| shards.contains(shard))
    }

    fn new() -> Self {
        Health {
            state: NodeHealth::Up,
            consecutive_failures: 0,
            good_streak: 0,
            slow_streak: 0,
            last_error: None,
            pid: None,
            uptime_ms: None,
            reported: None,
            healing: HashMap::new(),
            generations: HashMap::new(),
            unreachable: false,
            ever_answered: false,
        }
    }

    /// An answer arrived; `slow` if it took longer than the node's p95.
    fn answered(&mut self, slow: bool) {
        self.ever_answered = true;
        self.consecutive_failures = 0;
        self.unreachable = false;
        if slow {
            self.slow_streak += 1;
            self.good_streak = 0;
        } else {
            self.slow_streak = 0;
            self.good_streak += 1;
        }
        self.state = match self.state {
            NodeHealth::Up if self.slow_streak >= SLOW_STREAK => NodeHealth::Suspect,
            NodeHealth::Suspect if self.good_streak >= RECOVER_AFTER => NodeHealth::Up,
            NodeHealth::Probation if self.good_streak >= PROBATION_SUCCESSES => NodeHealth::Up,
            // A down node rejoins only through the prober, which checks its replicas too.
            unchanged => unchanged,
        };
    }

    /// A node failure; returns whether it ejected the node just now.
    fn failed(&mut self, error: &AttemptError, eject_after: u32) -> bool {
        self.consecutive_failures += 1;
        self.good_streak = 0;
        self.last_error = Some(error.to_string());
        self.unreachable = matches!(error, AttemptError::Connect(_));
        let previous = self.state;
        self.state =
            if self.consecutive_failures >= eject_after || previous == NodeHealth::Probation {
                NodeHealth::Down
            } else if previous == NodeHealth::Up {
                NodeHealth::Suspect
            } else {
                previous
            };
        self.state == NodeHealth::Down && previous != NodeHealth::Down
    }
}

/// One node: transport, load, health.
pub struct NodeHandle {
    pub id: String,
    pub addr: NodeAddr,
    /// Position in the front-end's node list.
    pub index: usize,
    transport: Arc<dyn NodeTransport>,
    /// Bounds the requests in flight to the node.
    slots: Semaphore,
    latency: Mutex<Latency>,
    health: Mutex<Health>,
    eject_after: u32,
    /// Whether this is the coordinating process's own node (reached in-process by
    /// `local.rs`): replica choice prefers it while it is not overloaded.
    local: bool,
    pub metrics: NodeMetrics,
}

impl NodeHandle {
    /// A node reached over RPC, as the cluster file describes it, with requests signed by
    /// `key`.
    pub fn new(
        index: usize,
        config: &NodeConfig,
        timeouts: &Timeouts,
        metrics: &Metrics,
        key: ClusterKey,
    ) -> Self {
        let client = NodeClient::new(
            config.id.clone(),
            config.rpc.clone(),
            timeouts.connect(),
            key,
        );
        Self::with_transport(index, config, Arc::new(client), timeouts, metrics)
    }

    /// A node reached through `transport`.
    pub fn with_transport(
        index: usize,
        config: &NodeConfig,
        transport: Arc<dyn NodeTransport>,
        timeouts: &Timeouts,
        metrics: &Metrics,
    ) -> Self {
        NodeHandle {
            id: config.id.clone(),
            addr: config.rpc.clone(),
            index,
            transport,
            slots: Semaphore::new(MAX_IN_FLIGHT_PER_NODE),
            latency: Mutex::new(Latency::new()),
            health: Mutex::new(Health::new()),
            eject_after: timeouts.eject_after_failures.max(1),
            local: false,
            metrics: metrics.node(&config.id),
        }
    }

    /// Marks the node as the coordinating process's own (see [`NodeHandle::is_local`]).
    pub fn into_local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Whether the coordinating process reaches this node in-process.
    pub fn is_local(&self) -> bool {
        self.local
    }

    pub fn state(&self) -> NodeHealth {
        self.health.lock().state
    }

    /// What ranking the node costs: its latency estimate × (requests in flight + 1).
    pub fn cost(&self) -> f64 {
        let ewma = self.latency.lock().ewma_micros.max(1.0);
        ewma * f64::from(self.in_flight() + 1)
    }

    /// How long a request to this node may run before it is worth hedging: its recent p95,
    /// never below [`HEDGE_FLOOR`].
    pub fn hedge_after(&self) -> Duration {
        Duration::from_micros(self.latency.lock().hedge_after_micros)
    }

    pub fn in_flight(&self) -> u32 {
        (MAX_IN_FLIGHT_PER_NODE - self.slots.available_permits()) as u32
    }

    /// The latency estimate, in milliseconds.
    pub fn latency_ms(&self) -> f64 {
        self.latency.lock().ewma_micros / 1000.0
    }

    /// Sends one RPC, giving up after `budget` (waiting for a slot included); records
    /// latency and health.
    pub async fn call(&self, call: RpcCall, budget: Duration) -> Result<RpcReply, AttemptError> {
        let histogram = match &call {
            RpcCall::Stats(_) => &self.metrics.stats,
            RpcCall::Search(_) => &self.metrics.search,
            RpcCall::Fetch(_) => &self.metrics.fetch,
            RpcCall::Suggest(_) => &self.metrics.suggest,
        };
        let started = Instant::now();
        let exchange = async {
            let _slot = self.slots.acquire().await;
            // The node gets what is left once a slot is free: it must not outlive our wait.
            let left = budget.saturating_sub(started.elapsed());
            self.transport.call(call, left).await
        };
        let result = tokio::time::timeout(budget, exchange)
            .await
            .unwrap_or(Err(AttemptError::Timeout));
        let elapsed = started.elapsed();
        histogram.observe(elapsed.as_secs_f64());
        match &result {
            Ok(_) => self.record_answer(elapsed),
            Err(error) => {
                self.record_failure(error);
            }
        }
        result
    }

    /// Health RPC for the prober (not counted in the latency estimate).
    pub async fn probe(&self, timeout: Duration) -> Result<HealthResponse, AttemptError> {
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, self.transport.health())
            .await
            .unwrap_or(Err(AttemptError::Timeout));
        self.metrics.health.observe(started.elapsed().as_secs_f64());
        result
    }

    fn record_answer(&self, elapsed: Duration) {
        let slow = self.latency.lock().record(elapsed.as_micros() as u64);
        self.health.lock().answered(slow);
    }

    /// Counts a failed attempt; returns true if this one ejected the node.
    pub fn record_failure(&self, error: &AttemptError) -> bool {
        if !error.is_node_failure() {
            return false;
        }
        self.count_failure(error)
    }

    /// Counts a failed health probe: any error, a 400 included (a health request is never
    /// bad, so a node refusing it speaks another wire version or is not a node).
    pub fn record_probe_failure(&self, error: &AttemptError) -> bool {
        self.count_failure(error)
    }

    fn count_failure(&self, error: &AttemptError) -> bool {
        let ejected = self.health.lock().failed(error, self.eject_after);
        if ejected {
            self.metrics.ejections.inc();
            tracing::warn!(node = %self.id, error = %error, "node ejected");
        }
        ejected
    }

    /// The prober heard from the node, with the replicas it reports. An ejected node
    /// starts its probation (or is up, if it never answered before: a node starting after
    /// the front-end); otherwise the answer counts as a good one, so an idle front-end
    /// still ends a probation, after [`PROBATION_SUCCESSES`] probes.
    pub fn record_health(&self, health: &HealthResponse) {
        let mut info = self.health.lock();
        info.pid = Some(health.pid);
        info.uptime_ms = Some(health.uptime_millis);
        info.reported = Some(health.replicas.iter().cloned().collect());
        info.healing = health.healing.iter().cloned().collect();
        info.generations = (health.generations.iter())
            .map(|g| (g.generation.clone(), g.shards.iter().copied().collect()))
            .collect();
        if info.state != NodeHealth::Down {
            info.answered(false);
        } else if info.ever_answered {
            tracing::info!(node = %self.id, "node rejoined: on probation");
            info.state = NodeHealth::Probation;
            info.consecutive_failures = 0;
            info.good_streak = 0;
        } else {
            tracing::info!(node = %self.id, "node up");
            info.answered(false);
            info.state = NodeHealth::Up;
        }
    }

    /// Whether the node holds a serving replica of `shard`: as it reported, or, before
    /// its first health answer, if the placement `targeted` it there.
    pub fn holds(&self, shard: &ShardId, targeted: bool) -> bool {
        self.health.lock().holds(shard, targeted)
    }

    /// The shards it reports serving (the placement's target before its first report).
    pub fn serving(&self) -> Option<Vec<ShardId>> {
        let info = self.health.lock();
        let reported = info.reported.as_ref()?;
        let mut shards: Vec<ShardId> = reported
            .iter()
            .filter(|(_, state)| matches!(state, ReplicaState::Serving { .. }))
            .map(|(shard, _)| *shard)
            .collect();
        shards.sort_unstable();
        Some(shards)
    }

    /// Whether the node may be asked for this shard: not down, and holding it.
    pub fn serves(&self, shard: &ShardId, targeted: bool, generation: Option<&str>) -> bool {
        let info = self.health.lock();
        info.state != NodeHealth::Down && info.holds_in(shard, targeted, generation)
    }

    /// Whether this ejected node may still be asked for `shard` when no live replica is
    /// left: it was ejected for being slow (timeouts, 5xx), not for refusing connections.
    /// On a loaded cluster the last holder of a shard can time out a few times without
    /// being dead; asking it (within the deadline) beats a partial answer, while a node
    /// whose port is closed costs nothing to skip.
    pub fn last_resort_for(
        &self,
        shard: &ShardId,
        targeted: bool,
        generation: Option<&str>,
    ) -> bool {
        let info = self.health.lock();
        info.state == NodeHealth::Down
            && !info.unreachable
            && info.holds_in(shard, targeted, generation)
    }

    /// Why the node reports its replica of `shard` as failed (a refused install, or a
    /// file its scrub found corrupt), if it does.
    pub fn replica_failure(&self, shard: &ShardId) -> Option<String> {
        match self.health.lock().reported.as_ref()?.get(shard)? {
            ReplicaState::Failed(reason) => Some(reason.clone()),
            ReplicaState::Serving { .. } => None,
        }
    }

    /// The bytes of the node's serving copy of `shard`, as it last reported them.
    pub fn replica_bytes(&self, shard: &ShardId) -> Option<u64> {
        match self.health.lock().reported.as_ref()?.get(shard)? {
            ReplicaState::Serving { bytes, .. } => Some(*bytes),
            ReplicaState::Failed(_) => None,
        }
    }

    /// What the node last reported doing to heal `shard`, if anything.
    pub fn healing(&self, shard: &ShardId) -> Option<HealState> {
        self.health.lock().healing.get(shard).cloned()
    }

    /// Why this node cannot serve a shard, for failure reasons.
    pub fn unavailable_reason(&self, shard: &ShardId) -> String {
        if let Some(reason) = self.replica_failure(shard) {
            return format!("{}: replica refused: {reason}", self.id);
        }
        let info = self.health.lock();
        if info.state != NodeHealth::Down && info.reported.is_some() && !info.holds(shard, false) {
            return format!(
                "{} {}: holds no serving replica",
                self.id,
                info.state.as_str()
            );
        }
        match &info.last_error {
            Some(error) => format!("{} {}: {error}", self.id, info.state.as_str()),
            None => format!("{} {}", self.id, info.state.as_str()),
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.health.lock().last_error.clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.health.lock().pid
    }

    /// The node's process uptime at its last health answer: a smaller one than before
    /// means a new process (a pid alone cannot tell: in a container it is always 1).
    pub fn uptime_ms(&self) -> Option<u64> {
        self.health.lock().uptime_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_reports_p95_after_enough_samples() {
        let mut latency = Latency::new();
        // 0.1 ms .. 10 ms: the p95 is above the hedge floor.
        for i in 1..=100u64 {
            latency.record(i * 100);
        }
        let p95 = latency.hedge_after_micros;
        assert!((9_000..=9_700).contains(&p95), "{p95}");
        assert!(latency.ewma_micros > 5_000.0, "{}", latency.ewma_micros);
    }

    #[test]
    fn a_shard_is_served_only_in_the_generations_that_report_it() {
        let (s0, s1) = (
            ShardId::new(0, 1, 0, 2).unwrap(),
            ShardId::new(0, 1, 1, 2).unwrap(),
        );
        let mut health = Health::new();
        assert!(
            health.holds_in(&s0, true, Some("g2")),
            "the target, before any report"
        );
        let serving = ReplicaState::Serving {
            docs: 1,
            bytes: 1,
            generation: None,
        };
        health.reported = Some([(s0, serving.clone()), (s1, serving)].into());
        // The node healed s1 of g2 and not yet of base (or the other way round).
        health.generations = [
            (BASE.to_string(), HashSet::from([s0])),
            ("g2".to_string(), HashSet::from([s0, s1])),
        ]
        .into();
        assert!(health.holds_in(&s0, false, None));
        assert!(
            !health.holds_in(&s1, false, None),
            "base request to a g2-only copy"
        );
        assert!(health.holds_in(&s1, false, Some("g2")));
        assert!(
            !health.holds_in(&s0, false, Some("g3")),
            "a generation it does not hold"
        );
    }

    #[test]
    fn client_errors_do_not_count_against_the_node() {
        assert!(!AttemptError::Status(400, "bad".into()).is_node_failure());
        assert!(AttemptError::Status(503, "busy".into()).is_node_failure());
        assert!(AttemptError::Status(401, "wrong secret".into()).is_node_failure());
        assert!(AttemptError::Status(404, "a foreign server".into()).is_node_failure());
        assert!(AttemptError::Timeout.is_node_failure());
        assert!(AttemptError::Decode("garbage".into()).is_node_failure());
    }

    #[test]
    fn health_moves_on_evidence_with_hysteresis() {
        let mut health = Health::new();
        // Slow answers now and then (a hedge's worth) change nothing.
        for _ in 0..100 {
            health.answered(true);
            health.answered(false);
        }
        assert_eq!(health.state, NodeHealth::Up);
        // A sustained shift does.
        for _ in 0..SLOW_STREAK {
            health.answered(true);
        }
        assert_eq!(health.state, NodeHealth::Suspect);
        // One good answer is not enough to come back; RECOVER_AFTER in a row are.
        health.answered(false);
        assert_eq!(health.state, NodeHealth::Suspect);
        for _ in 1..RECOVER_AFTER {
            health.answered(false);
        }
        assert_eq!(health.state, NodeHealth::Up);
        // Failures: suspect, then ejected at the threshold.
        assert!(!health.failed(&AttemptError::Timeout, 2));
        assert_eq!(health.state, NodeHealth::Suspect);
        assert!(health.failed(&AttemptError::Timeout, 2));
        assert_eq!(health.state, NodeHealth::Down);
        // Answers never bring a down node back: only the prober does.
        health.answered(false);
        assert_eq!(health.state, NodeHealth::Down);
    }

    #[test]
    fn probes_start_probation_for_a_node_that_answered_before_and_end_it() {
        let metrics = Metrics::new();
        let config = NodeConfig {
            id: "n".into(),
            rpc: "127.0.0.1:9".parse().unwrap(),
            listen: None,
            data_dir: None,
            http: None,
            http_listen: None,
            drain: false,
        };
        let key = ClusterKey::from_secret(b"a test secret, 16+ bytes").unwrap();
        let node = NodeHandle::new(0, &config, &Timeouts::default(), &metrics, key);
        let probe = HealthResponse {
            node: "n".into(),
            pid: 7,
            uptime_millis: 0,
            in_flight: 0,
            replicas: Vec::new(),
            healing: Vec::new(),
            generations: Vec::new(),
            wire_version: shard_proto::wire::WIRE_VERSION,
            schema: String::new(),
        };
        // Never answered: down at start-up, up at its first answer.
        node.record_failure(&AttemptError::Timeout);
        node.record_failure(&AttemptError::Timeout);
        assert_eq!(node.state(), NodeHealth::Down);
        node.record_health(&probe);
        assert_eq!(node.state(), NodeHealth::Up);
        // Ejected after answering: probation, ended by good probes alone.
        node.record_failure(&AttemptError::Timeout);
        node.record_failure(&AttemptError::Timeout);
        node.record_health(&probe);
        assert_eq!(node.state(), NodeHealth::Probation);
        for _ in 0..PROBATION_SUCCESSES {
            node.record_health(&probe);
        }
        assert_eq!(node.state(), NodeHealth::Up);
    }
}
