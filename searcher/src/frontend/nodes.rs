//! One searcher node as the front-end sees it: its pooled RPC client behind a small tower
//! stack (`timeout` at the search deadline, `concurrency_limit`, and `load::PeakEwma`
//! measuring its cost; each call brings its own budget, see `Fanout::attempt_budget`), its
//! health state (up / suspect / down, consecutive failures, last error, pid and replica
//! states from its health answers) and its recent latency distribution (an
//! hdrhistogram window whose p95 decides when a request to it is worth hedging).
//!
//! State transitions live here; *when* to probe lives in `health.rs`, *which* node to ask in
//! `replica.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram as Hdr;
use shard_proto::wire::{
    FetchRequest, FetchResponse, HealthResponse, ReplicaState, SearchRequest, SearchResponse,
    StatsRequest, StatsResponse,
};
use shard_proto::ShardId;
use tower::load::{CompleteOnResponse, Load, PeakEwma};
use tower::util::BoxService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use crate::cluster::{NodeConfig, Timeouts};
use crate::frontend::metrics::{Metrics, NodeMetrics};
use crate::rpc::{NodeClient, RpcError};

/// Most requests the front-end keeps in flight to one node; beyond, callers queue (and the
/// wait counts against the attempt timeout).
const MAX_IN_FLIGHT_PER_NODE: usize = 256;
/// PeakEwma's assumed latency of a node never measured, and its decay.
const DEFAULT_RTT: Duration = Duration::from_millis(1);
const EWMA_DECAY: Duration = Duration::from_secs(5);
/// Hedging never fires earlier than this, whatever the p95: on a noisy 2-core box a
/// sub-millisecond p95 is jitter, and a hedge costs a whole extra node request.
pub const HEDGE_FLOOR: Duration = Duration::from_millis(3);
/// Until a node has this many samples its p95 is not trusted; hedge after this instead.
const HEDGE_UNTRUSTED: Duration = Duration::from_millis(25);
const MIN_SAMPLES: u64 = 20;
/// Latency samples per window; p95 is computed over the current and previous windows.
const WINDOW_SAMPLES: u64 = 512;

/// One RPC to a node.
#[derive(Clone, Debug)]
pub enum RpcCall {
    Stats(Arc<StatsRequest>),
    Search(Arc<SearchRequest>),
    Fetch(Arc<FetchRequest>),
}

/// Its answer.
#[derive(Debug)]
pub enum RpcReply {
    Stats(StatsResponse),
    Search(SearchResponse),
    Fetch(FetchResponse),
}

/// Why an attempt failed.
#[derive(Clone, Debug, thiserror::Error)]
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

    /// Whether this says something about the node's health (a 4xx says our request was
    /// bad, not the node).
    pub fn is_node_failure(&self) -> bool {
        !matches!(self, AttemptError::Status(code, _) if *code < 500)
    }

    fn from_box(error: BoxError) -> Self {
        if error.is::<tower::timeout::error::Elapsed>() {
            return AttemptError::Timeout;
        }
        match error.downcast::<AttemptError>() {
            Ok(own) => *own,
            Err(other) => AttemptError::Connect(other.to_string()),
        }
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

/// Health state shown in `/cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum NodeState {
    Up = 0,
    /// One recent failure, or answering slower than its p95.
    Suspect = 1,
    /// Ejected after repeated failures: only the prober talks to it.
    Down = 2,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Suspect => "suspect",
            NodeState::Down => "down",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => NodeState::Up,
            1 => NodeState::Suspect,
            _ => NodeState::Down,
        }
    }
}

/// What the last health answers and failures told about a node.
#[derive(Debug, Default)]
struct HealthInfo {
    consecutive_failures: u32,
    last_error: Option<String>,
    pid: Option<u32>,
    /// Replicas the node reported as refused (failed verification...), with the reason.
    failed_replicas: HashMap<ShardId, String>,
    /// The last failure was a refused or broken connection: the process is gone, so the
    /// node is no last resort (see [`NodeHandle::last_resort_for`]).
    unreachable: bool,
}

/// Recent latencies, in microseconds: two rotating hdrhistogram windows.
struct LatencyWindow {
    current: Hdr<u64>,
    previous: Hdr<u64>,
}

impl LatencyWindow {
    fn new() -> Self {
        let hdr = || Hdr::new_with_bounds(1, 120_000_000, 2).expect("valid hdrhistogram bounds");
        LatencyWindow {
            current: hdr(),
            previous: hdr(),
        }
    }

    /// Records a sample; returns the p95 over both windows every 16 samples.
    fn record(&mut self, micros: u64) -> Option<u64> {
        let _ = self.current.record(micros.clamp(1, 120_000_000));
        if self.current.len() >= WINDOW_SAMPLES {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.reset();
        }
        let samples = self.current.len() + self.previous.len();
        if samples < MIN_SAMPLES || !samples.is_multiple_of(16) {
            return None;
        }
        let mut both = self.previous.clone();
        let _ = both.add(&self.current);
        Some(both.value_at_quantile(0.95))
    }
}

type EwmaService = PeakEwma<BoxService<RpcCall, RpcReply, AttemptError>, CompleteOnResponse>;

/// One node: client stack, load, health.
pub struct NodeHandle {
    pub id: String,
    pub addr: SocketAddr,
    /// Position in the front-end's node list.
    pub index: usize,
    client: NodeClient,
    ewma: Mutex<EwmaService>,
    state: AtomicU8,
    in_flight: AtomicU32,
    latency_ewma_micros: AtomicU64,
    hedge_after_micros: AtomicU64,
    window: Mutex<LatencyWindow>,
    info: Mutex<HealthInfo>,
    eject_after: u32,
    pub metrics: NodeMetrics,
}

impl NodeHandle {
    pub fn new(index: usize, config: &NodeConfig, timeouts: &Timeouts, metrics: &Metrics) -> Self {
        let client = NodeClient::new(config.id.clone(), config.rpc, timeouts.connect());
        let stack = ServiceBuilder::new()
            .map_err(AttemptError::from_box)
            // No attempt outlives a search; the caller's budget is usually shorter.
            .timeout(timeouts.deadline())
            .concurrency_limit(MAX_IN_FLIGHT_PER_NODE)
            .service(ClientService(client.clone()));
        // service_fn is always ready, so the PeakEwma wrapper can be driven under a lock.
        let ready = tower::service_fn(move |call: RpcCall| stack.clone().oneshot(call));
        let ewma = PeakEwma::new(
            BoxService::new(ready),
            DEFAULT_RTT,
            EWMA_DECAY.as_nanos() as f64,
            CompleteOnResponse::default(),
        );
        NodeHandle {
            id: config.id.clone(),
            addr: config.rpc,
            index,
            client,
            ewma: Mutex::new(ewma),
            state: AtomicU8::new(NodeState::Up as u8),
            in_flight: AtomicU32::new(0),
            latency_ewma_micros: AtomicU64::new(0),
            hedge_after_micros: AtomicU64::new(HEDGE_UNTRUSTED.as_micros() as u64),
            window: Mutex::new(LatencyWindow::new()),
            info: Mutex::new(HealthInfo::default()),
            eject_after: timeouts.eject_after_failures.max(1),
            metrics: metrics.node(&config.id),
        }
    }

    pub fn state(&self) -> NodeState {
        NodeState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn set_state(&self, state: NodeState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// PeakEwma cost: decayed peak latency × (requests in flight + 1).
    pub fn cost(&self) -> tower::load::peak_ewma::Cost {
        self.ewma.lock().expect("ewma lock").load()
    }

    /// How long a request to this node may run before it is worth hedging: its recent p95,
    /// never below [`HEDGE_FLOOR`].
    pub fn hedge_after(&self) -> Duration {
        Duration::from_micros(self.hedge_after_micros.load(Ordering::Relaxed))
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn latency_ewma_ms(&self) -> f64 {
        self.latency_ewma_micros.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Sends one RPC through the stack, giving up after `budget`; records latency and
    /// health.
    pub async fn call(&self, call: RpcCall, budget: Duration) -> Result<RpcReply, AttemptError> {
        let histogram = match &call {
            RpcCall::Stats(_) => &self.metrics.stats,
            RpcCall::Search(_) => &self.metrics.search,
            RpcCall::Fetch(_) => &self.metrics.fetch,
        };
        let future = {
            let mut ewma = self.ewma.lock().expect("ewma lock");
            let waker = futures::task::noop_waker_ref();
            match ewma.poll_ready(&mut Context::from_waker(waker)) {
                Poll::Ready(Ok(())) => ewma.call(call),
                _ => unreachable!("a service_fn is always ready"),
            }
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = tokio::time::timeout(budget, future)
            .await
            .unwrap_or(Err(AttemptError::Timeout));
        let elapsed = started.elapsed();
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        histogram.observe(elapsed.as_secs_f64());
        match &result {
            Ok(_) => self.record_success(elapsed),
            Err(error) => {
                self.record_failure(error);
            }
        }
        result
    }

    /// Health RPC for the prober (not counted in the load estimate).
    pub async fn probe(&self, timeout: Duration) -> Result<HealthResponse, AttemptError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, self.client.health()).await {
            Ok(result) => result.map_err(AttemptError::from),
            Err(_) => Err(AttemptError::Timeout),
        };
        self.metrics.health.observe(started.elapsed().as_secs_f64());
        result
    }

    fn record_success(&self, elapsed: Duration) {
        let micros = elapsed.as_micros() as u64;
        let old = self.latency_ewma_micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            micros
        } else {
            (old * 4 + micros) / 5
        };
        self.latency_ewma_micros.store(new, Ordering::Relaxed);
        if let Some(p95) = self.window.lock().expect("latency window").record(micros) {
            let floor = HEDGE_FLOOR.as_micros() as u64;
            self.hedge_after_micros
                .store(p95.max(floor), Ordering::Relaxed);
        }
        {
            let mut info = self.info.lock().expect("node info");
            info.consecutive_failures = 0;
            info.unreachable = false;
        }
        // A down node rejoins only through the prober, which checks its replicas too.
        if self.state() == NodeState::Suspect && elapsed <= self.hedge_after() {
            self.set_state(NodeState::Up);
        }
    }

    /// Counts a failed attempt; returns true if this one ejected the node.
    pub fn record_failure(&self, error: &AttemptError) -> bool {
        if !error.is_node_failure() {
            return false;
        }
        let mut info = self.info.lock().expect("node info");
        info.consecutive_failures += 1;
        info.last_error = Some(error.to_string());
        info.unreachable = matches!(error, AttemptError::Connect(_));
        if info.consecutive_failures >= self.eject_after {
            let ejected = self.state() != NodeState::Down;
            self.set_state(NodeState::Down);
            if ejected {
                self.metrics.ejections.inc();
                tracing::warn!(node = %self.id, error = %error, "node ejected");
            }
            ejected
        } else {
            if self.state() == NodeState::Up {
                self.set_state(NodeState::Suspect);
            }
            false
        }
    }

    /// A request to this node ran past its p95 and was hedged.
    pub fn mark_slow(&self) {
        if self.state() == NodeState::Up {
            self.set_state(NodeState::Suspect);
        }
    }

    /// The prober heard from the node: it serves again (with the replicas it reports).
    pub fn record_health(&self, health: &HealthResponse) {
        let mut info = self.info.lock().expect("node info");
        info.consecutive_failures = 0;
        info.pid = Some(health.pid);
        info.failed_replicas = health
            .replicas
            .iter()
            .filter_map(|(shard, state)| match state {
                ReplicaState::Failed(reason) => Some((*shard, reason.clone())),
                ReplicaState::Serving { .. } => None,
            })
            .collect();
        if self.state() == NodeState::Down {
            tracing::info!(node = %self.id, "node rejoined");
        }
        self.set_state(NodeState::Up);
    }

    /// Whether the node may be asked for this shard (not down, replica not refused).
    pub fn serves(&self, shard: &ShardId) -> bool {
        self.state() != NodeState::Down && !self.replica_failed(shard)
    }

    /// Whether this ejected node may still be asked for `shard` when no live replica is
    /// left: it was ejected for being slow (timeouts, 5xx), not for refusing connections.
    /// On a loaded cluster the last holder of a shard can time out a few times without
    /// being dead; asking it (within the deadline) beats a partial answer, while a node
    /// whose port is closed costs nothing to skip.
    pub fn last_resort_for(&self, shard: &ShardId) -> bool {
        let info = self.info.lock().expect("node info");
        self.state() == NodeState::Down
            && !info.unreachable
            && !info.failed_replicas.contains_key(shard)
    }

    pub fn replica_failed(&self, shard: &ShardId) -> bool {
        let info = self.info.lock().expect("node info");
        !info.failed_replicas.is_empty() && info.failed_replicas.contains_key(shard)
    }

    /// Why this node cannot serve a shard, for failure reasons.
    pub fn unavailable_reason(&self, shard: &ShardId) -> String {
        let info = self.info.lock().expect("node info");
        if let Some(reason) = info.failed_replicas.get(shard) {
            return format!("{}: replica refused: {reason}", self.id);
        }
        match &info.last_error {
            Some(error) => format!("{} {}: {error}", self.id, self.state().as_str()),
            None => format!("{} {}", self.id, self.state().as_str()),
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.info.lock().expect("node info").last_error.clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.info.lock().expect("node info").pid
    }
}

/// The node's RPC client as a tower service.
#[derive(Clone)]
struct ClientService(NodeClient);

impl Service<RpcCall> for ClientService {
    type Response = RpcReply;
    type Error = AttemptError;
    type Future = futures::future::BoxFuture<'static, Result<RpcReply, AttemptError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: RpcCall) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move {
            let reply = match call {
                RpcCall::Stats(request) => RpcReply::Stats(client.stats(&request).await?),
                RpcCall::Search(request) => RpcReply::Search(client.search(&request).await?),
                RpcCall::Fetch(request) => RpcReply::Fetch(client.fetch(&request).await?),
            };
            Ok(reply)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_window_reports_p95_after_enough_samples() {
        let mut window = LatencyWindow::new();
        let mut last = None;
        for i in 1..=100u64 {
            if let Some(p95) = window.record(i * 10) {
                last = Some(p95);
            }
        }
        let p95 = last.expect("p95 after 100 samples");
        assert!((900..=970).contains(&p95), "{p95}");
    }

    #[test]
    fn client_errors_do_not_count_against_the_node() {
        assert!(!AttemptError::Status(400, "bad".into()).is_node_failure());
        assert!(AttemptError::Status(503, "busy".into()).is_node_failure());
        assert!(AttemptError::Timeout.is_node_failure());
    }
}
