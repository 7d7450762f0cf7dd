//! The node's own metrics (prometheus-client, text exposition at `GET /metrics`): requests
//! refused before any work (unauthenticated, over a limit, queue full, too late), work
//! stopped half-way (deadline, caller gone), calls running on the search pool, the longest
//! any call's work ran past its deadline (the figure behind "no search still runs 100 ms
//! after its deadline") and connections refused over the cap.
//!
//! `/metrics` is the one route that needs no credentials (a scraper cannot sign requests);
//! it shows counts only, no addresses, paths or pids.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::serve::ServerCounters;

type ReasonLabels = [(&'static str, &'static str); 1];

/// Every metric a node exports.
pub struct NodeMetrics {
    registry: Registry,
    refused: Family<ReasonLabels, Counter>,
    stopped: Family<ReasonLabels, Counter>,
    running: Gauge,
    overrun_max_millis: Gauge,
    overrun_max: AtomicU64,
}

/// Counts a call as running on the search pool until dropped.
pub struct Running<'a>(&'a Gauge);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl NodeMetrics {
    pub fn new(server: &ServerCounters) -> Self {
        let mut registry = Registry::with_prefix("node");
        let refused = Family::<ReasonLabels, Counter>::default();
        let stopped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rpc_refused",
            "RPC requests refused before any work, by reason",
            refused.clone(),
        );
        registry.register(
            "rpc_stopped",
            "RPC requests whose work stopped early: deadline passed or caller gone",
            stopped.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at once because max_connections were open",
            server.refused_connections.clone(),
        );
        registry.register(
            "connections_accepted",
            "Connections accepted",
            server.accepted_connections.clone(),
        );
        registry.register(
            "http_requests_in_progress",
            "Requests whose head has arrived and whose answer is not finished",
            server.requests_in_progress.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "rpc_running",
            "Calls being decoded, run or encoded on the search pool now",
            running.clone(),
        );
        let overrun_max_millis = Gauge::default();
        registry.register(
            "rpc_deadline_overrun_max_millis",
            "Longest any call's work went on after its deadline, in milliseconds",
            overrun_max_millis.clone(),
        );
        NodeMetrics {
            registry,
            refused,
            stopped,
            running,
            overrun_max_millis,
            overrun_max: AtomicU64::new(0),
        }
    }

    /// Counts a request refused for `reason` (`unauthenticated_*`, `queue_full`, ...).
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts work stopped for `reason` (`deadline`, `cancelled`).
    pub fn stopped(&self, reason: &'static str) {
        self.stopped.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts a call as running until the guard is dropped.
    pub fn running(&self) -> Running<'_> {
        self.running.inc();
        Running(&self.running)
    }

    /// A call's work ended `overrun` after its deadline (zero if it ended in time).
    pub fn ran_past_deadline(&self, overrun: Duration) {
        let millis = overrun.as_millis() as u64;
        let max = self
            .overrun_max
            .fetch_max(millis, Ordering::Relaxed)
            .max(millis);
        self.overrun_max_millis.set(max as i64);
    }

    /// Refusals counted so far for `reason` (tests and the health of the counters).
    pub fn refused_count(&self, reason: &'static str) -> u64 {
        self.refused.get_or_create(&[("reason", reason)]).get()
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            text = format!("# metrics could not be encoded: {e}\n");
        }
        text
    }
}
