//! The front-end's Prometheus metrics (prometheus-client, text exposition at `/metrics`):
//! public `/search` and `/suggest` requests by outcome with their latency, per-node RPC
//! latency and errors, and the failover machinery's work (retries, hedges, partial
//! answers, ejections).
//!
//! Handles of per-node series are created once at start-up ([`NodeMetrics`]) so that the
//! query path records figures without building label sets or allocating.

use parking_lot::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a public request: its outcome (`ok`, `partial`, `bad_request`, `unavailable`).
type OutcomeLabels = [(&'static str, &'static str); 1];
/// Labels of an RPC series: node id and phase (`stats`, `search`, `fetch`, `suggest`,
/// `health`).
type RpcLabels = [(&'static str, String); 2];
/// Labels of an RPC error: node id and error kind.
type RpcErrorLabels = [(&'static str, String); 2];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~26 s: loopback RPCs take a fraction of a millisecond, timeouts seconds.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// Every metric the front-end exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<OutcomeLabels, Counter>,
    request_seconds: HistogramFamily<OutcomeLabels>,
    suggest_requests: Family<OutcomeLabels, Counter>,
    suggest_request_seconds: HistogramFamily<OutcomeLabels>,
    rpc_seconds: HistogramFamily<RpcLabels>,
    rpc_errors: Family<RpcErrorLabels, Counter>,
    pub retries: Counter,
    pub hedges: Counter,
    pub hedges_won: Counter,
    pub partial_answers: Counter,
    pub ejections: Counter,
    pub stats_round_trips: Counter,
    pub fetch_round_trips: Counter,
}

/// Pre-built handles of one node's RPC latency series.
#[derive(Clone)]
pub struct NodeMetrics {
    pub stats: Histogram,
    pub search: Histogram,
    pub fetch: Histogram,
    pub suggest: Histogram,
    pub health: Histogram,
    /// The global ejection counter.
    pub ejections: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("frontend")),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            suggest_requests: Family::default(),
            suggest_request_seconds: Family::new_with_constructor(latency_histogram),
            rpc_seconds: Family::new_with_constructor(latency_histogram),
            rpc_errors: Family::default(),
            retries: Counter::default(),
            hedges: Counter::default(),
            hedges_won: Counter::default(),
            partial_answers: Counter::default(),
            ejections: Counter::default(),
            stats_round_trips: Counter::default(),
            fetch_round_trips: Counter::default(),
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let mut r = self.registry.lock();
        r.register(
            "requests",
            "Public /search requests by outcome",
            self.requests.clone(),
        );
        r.register(
            "request_seconds",
            "Latency of public /search requests by outcome",
            self.request_seconds.clone(),
        );
        r.register(
            "suggest_requests",
            "Public /suggest requests by outcome",
            self.suggest_requests.clone(),
        );
        r.register(
            "suggest_request_seconds",
            "Latency of public /suggest requests by outcome",
            self.suggest_request_seconds.clone(),
        );
        r.register(
            "rpc_seconds",
            "Latency of node RPCs by node and phase",
            self.rpc_seconds.clone(),
        );
        r.register(
            "rpc_errors",
            "Failed node RPCs by node and kind",
            self.rpc_errors.clone(),
        );
        r.register(
            "retries",
            "Shards re-sent to another replica after a failure",
            self.retries.clone(),
        );
        r.register(
            "hedges",
            "Hedged node requests (slow replica, same shards elsewhere)",
            self.hedges.clone(),
        );
        r.register(
            "hedges_won",
            "Shards first answered by a hedged request",
            self.hedges_won.clone(),
        );
        r.register(
            "partial_answers",
            "Answers missing at least one shard",
            self.partial_answers.clone(),
        );
        r.register(
            "ejections",
            "Nodes ejected after repeated failures",
            self.ejections.clone(),
        );
        r.register(
            "stats_round_trips",
            "Statistics phases run (term cache misses)",
            self.stats_round_trips.clone(),
        );
        r.register(
            "fetch_round_trips",
            "Fetch phases run (pages not fully fetched by query-and-fetch)",
            self.fetch_round_trips.clone(),
        );
    }

    /// Registers the connection counters of the front-end's HTTP server.
    pub fn register_server(&self, counters: &crate::serve::ServerCounters) {
        let mut r = self.registry.lock();
        r.register(
            "connections_refused",
            "Connections closed at once because max_connections were open",
            counters.refused_connections.clone(),
        );
        r.register(
            "connections_accepted",
            "Connections accepted",
            counters.accepted_connections.clone(),
        );
        r.register(
            "http_requests_in_progress",
            "Requests whose head has arrived and whose answer is not finished",
            counters.requests_in_progress.clone(),
        );
    }

    /// Latency series of one node, created once.
    pub fn node(&self, node: &str) -> NodeMetrics {
        let series = |phase: &str| {
            self.rpc_seconds
                .get_or_create_owned(&[("node", node.to_string()), ("phase", phase.to_string())])
        };
        NodeMetrics {
            stats: series("stats"),
            search: series("search"),
            fetch: series("fetch"),
            suggest: series("suggest"),
            health: series("health"),
            ejections: self.ejections.clone(),
        }
    }

    /// Counts one public request and its latency.
    pub fn observe_request(&self, outcome: &'static str, seconds: f64) {
        let labels = [("outcome", outcome)];
        self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&labels).observe(seconds);
    }

    /// Counts one public `/suggest` request and its latency.
    pub fn observe_suggest(&self, outcome: &'static str, seconds: f64) {
        let labels = [("outcome", outcome)];
        self.suggest_requests.get_or_create(&labels).inc();
        self.suggest_request_seconds
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Counts one failed RPC.
    pub fn rpc_error(&self, node: &str, kind: &str) {
        self.rpc_errors
            .get_or_create(&[("node", node.to_string()), ("kind", kind.to_string())])
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_rpcs_and_failover_counters() {
        let metrics = Metrics::new();
        metrics.observe_request("ok", 0.002);
        metrics.node("n1").search.observe(0.0005);
        metrics.rpc_error("n1", "timeout");
        metrics.hedges.inc();
        let text = metrics.render();
        assert!(
            text.contains("frontend_requests_total{outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("frontend_rpc_seconds_count{node=\"n1\",phase=\"search\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("frontend_rpc_errors_total{node=\"n1\",kind=\"timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("frontend_hedges_total 1"), "{text}");
    }
}
