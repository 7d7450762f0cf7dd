//! The load generator as a library: drives `GET <url>/search?q=...` (or `/suggest`) with
//! benchmark queries and measures what clients see. Used by `wikisearch bench`, by the
//! comparison (`wikisearch baseline compare`) and by the fault drill, which reads the per-second rows
//! through [`LoadSpec::on_row`] while it breaks nodes.
//!
//! Two ways to apply load:
//! - **closed loop** (`concurrency` workers, each sending its next request when the last
//!   one answered): measures the throughput a fixed number of clients get;
//! - **open loop** (`rate` requests per second on a fixed schedule, whatever the answers):
//!   latency is measured from the *intended* send time, so a stalled server is charged
//!   for the requests it held back instead of hiding them (coordinated omission, as in
//!   wrk2). The tokio timer ticks in milliseconds, so up to [`TIMER_SLACK`] of lateness
//!   is the generator's own and is not charged.
//!
//! Load may be spread over several coordinators of one cluster ([`LoadSpec::also`]):
//! requests go to each in turn, and one whose coordinator cannot be reached (no
//! connection, or the connection dropped before any answer: the process died with the
//! request) is sent again to the next. A `GET /search` is idempotent, so that is safe;
//! such requests are counted as `rerouted` in the report, not as failures. A timeout or
//! an error status is an answer and is never retried.
//!
//! Requests go through one pooled hyper-util client (HTTP/1.1 keep-alive, idle
//! connections evicted by the `TokioTimer`), one connection per concurrent request, and
//! every run is bounded in time and optionally in count.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;

use super::queries::{kind_table, BenchQuery};
use super::report::{KindStats, LoadReport, Outcome, Recorder, RunSetup};
use super::timeline::{FailoverCounters, TimelineRow};
use crate::error::{Error, Result};

/// Timer granularity not charged to the server in open-loop latencies.
pub const TIMER_SLACK: Duration = Duration::from_millis(1);

/// The pooled HTTP client every request and scrape goes through.
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Called with each timeline row as soon as its second ends.
pub type RowSink = Box<dyn FnMut(&TimelineRow) + Send>;

/// How load is applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadMode {
    /// `concurrency` workers, each with one request in flight.
    Closed { concurrency: usize },
    /// `rate` requests per second on a fixed schedule.
    Open { rate: f64 },
}

/// What to run.
pub struct LoadSpec {
    /// The service (`http://host:port`, `/<endpoint>` is appended) or that endpoint.
    pub url: String,
    /// Further coordinators of the same cluster (same form as `url`): requests are spread
    /// over `url` and these in turn, and retried on the next when one is unreachable.
    pub also: Vec<String>,
    /// The route loaded: `search` (the default) or `suggest` (each query is a prefix).
    pub endpoint: String,
    pub queries: Vec<BenchQuery>,
    pub mode: LoadMode,
    /// No request is sent after this (in-flight ones finish).
    pub duration: Duration,
    /// Stop after this many requests, if set.
    pub max_requests: Option<u64>,
    /// The `size` parameter of every search.
    pub size: u32,
    /// Further query parameters of every search (e.g. `allow_partial=false`).
    pub params: Vec<(String, String)>,
    /// A request not answered within this is a transport error.
    pub request_timeout: Duration,
    /// Open loop: most requests in flight at once (later ones wait, and are charged).
    pub max_in_flight: usize,
    /// Record a per-second timeline (and scrape `/metrics` for hedges and retries).
    pub timeline: bool,
    /// Receives each timeline row live.
    pub on_row: Option<RowSink>,
    /// Set to stop the run early (checked before every request).
    pub stop: Option<Arc<AtomicBool>>,
}

impl LoadSpec {
    /// A spec with defaults: top 10, 10 s request timeout, no timeline.
    pub fn new(url: &str, queries: Vec<BenchQuery>, mode: LoadMode, duration: Duration) -> Self {
        LoadSpec {
            url: url.to_string(),
            also: Vec::new(),
            endpoint: "search".to_string(),
            queries,
            mode,
            duration,
            max_requests: None,
            size: 10,
            params: Vec::new(),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            timeline: false,
            on_row: None,
            stop: None,
        }
    }
}

/// Runs the load on a single-threaded runtime of its own (the generator shares the
/// machine with the servers it measures: one thread keeps its footprint small).
pub fn run_blocking(spec: LoadSpec) -> Result<LoadReport> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the load generator runtime: {e}")))?;
    runtime.block_on(run(spec))
}

/// Runs the load and returns what it measured.
pub async fn run(mut spec: LoadSpec) -> Result<LoadReport> {
    let target = Target::parse(&spec.url, &spec.endpoint)?;
    let others = spec
        .also
        .iter()
        .map(|url| Target::parse(url, &spec.endpoint))
        .collect::<Result<Vec<_>>>()?;
    validate(&spec)?;
    let (kind_names, kind_ids) = kind_table(&spec.queries);
    let uris = std::iter::once(&target)
        .chain(&others)
        .map(|target| {
            spec.queries
                .iter()
                .map(|q| target.search_uri(&q.text, spec.size, &spec.params))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let pool = match spec.mode {
        LoadMode::Closed { concurrency } => concurrency,
        LoadMode::Open { .. } => spec.max_in_flight,
    };
    let client = http_client(pool);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        client: client.clone(),
        uris,
        kind_ids,
        next: AtomicUsize::new(0),
        turn: AtomicUsize::new(0),
        rerouted: AtomicU64::new(0),
        issued: AtomicU64::new(0),
        max_requests: spec.max_requests,
        deadline: start + spec.duration,
        stop: spec.stop.take(),
        request_timeout: spec.request_timeout,
        stats: Mutex::new(Stats {
            total: Recorder::new(kind_names.len()),
            window: spec.timeline.then(KindStats::default),
            window_start: start,
        }),
    });

    let (done_tx, done_rx) = oneshot::channel();
    let timeline = spec.timeline.then(|| {
        let scraper = MetricsScraper::new(client, target.metrics_uri());
        let sink = spec.on_row.take();
        tokio::spawn(timeline_task(shared.clone(), scraper, sink, start, done_rx))
    });
    match spec.mode {
        LoadMode::Closed { concurrency } => closed_loop(&shared, concurrency).await,
        LoadMode::Open { rate } => open_loop(&shared, rate, spec.max_in_flight, start).await,
    }
    let elapsed = start.elapsed();
    let _ = done_tx.send(());
    let rows = match timeline {
        Some(task) => task
            .await
            .map_err(|e| Error::Other(format!("timeline task failed: {e}")))?,
        None => Vec::new(),
    };

    let setup = RunSetup {
        target: match others.len() {
            0 => target.search.clone(),
            n => format!("{} (+{n} more)", target.search),
        },
        mode: match spec.mode {
            LoadMode::Closed { .. } => "closed".into(),
            LoadMode::Open { .. } => "open".into(),
        },
        concurrency: match spec.mode {
            LoadMode::Closed { concurrency } => Some(concurrency),
            LoadMode::Open { .. } => None,
        },
        rate: match spec.mode {
            LoadMode::Open { rate } => Some(rate),
            LoadMode::Closed { .. } => None,
        },
        duration_s: spec.duration.as_secs_f64(),
        size: spec.size,
    };
    let stats = shared.stats.lock().expect("stats lock");
    let mut report = stats.total.report(setup, &kind_names, elapsed);
    report.timeline = rows;
    report.rerouted = shared.rerouted.load(Ordering::Relaxed);
    Ok(report)
}

fn validate(spec: &LoadSpec) -> Result<()> {
    let bad = |reason: &str| Err(Error::Other(reason.to_string()));
    if spec.queries.is_empty() {
        return bad("no queries to send");
    }
    if spec.duration.is_zero() {
        return bad("the duration must be positive");
    }
    if spec.size > 10_000 {
        return bad("size must be at most 10000");
    }
    match spec.mode {
        LoadMode::Closed { concurrency: 0 } => bad("concurrency must be at least 1"),
        LoadMode::Closed { concurrency } if concurrency > 10_000 => {
            bad("concurrency must be at most 10000")
        }
        LoadMode::Open { rate } if !(rate.is_finite() && rate > 0.0 && rate <= 1e6) => {
            bad("rate must be a number of requests per second in (0, 1000000]")
        }
        LoadMode::Open { .. } if spec.max_in_flight == 0 => bad("max_in_flight must be >= 1"),
        _ => Ok(()),
    }
}

/// The loaded and metrics endpoints of the target.
struct Target {
    /// `scheme://authority/.../<endpoint>`.
    search: String,
    /// Everything before `/<endpoint>`.
    base: String,
}

impl Target {
    /// The target of `url`, a service address or its `/<endpoint>` route.
    fn parse(url: &str, endpoint: &str) -> Result<Self> {
        let url = url.trim().trim_end_matches('/');
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::Other(format!("bad URL {url:?}: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(Error::Other(format!(
                "bad URL {url:?}: only http:// is supported"
            )));
        }
        if uri.query().is_some() {
            return Err(Error::Other(format!(
                "bad URL {url:?}: give the service address, queries are added by the bench"
            )));
        }
        let route = format!("/{endpoint}");
        Ok(match url.strip_suffix(route.as_str()) {
            Some(base) => Target {
                search: url.clone(),
                base: base.to_string(),
            },
            None => Target {
                search: format!("{url}{route}"),
                base: url,
            },
        })
    }

    fn search_uri(&self, query: &str, size: u32, params: &[(String, String)]) -> Result<Uri> {
        let mut uri = format!("{}?q={}&size={size}", self.search, percent_encode(query));
        for (name, value) in params {
            uri.push_str(&format!(
                "&{}={}",
                percent_encode(name),
                percent_encode(value)
            ));
        }
        uri.parse()
            .map_err(|e| Error::Other(format!("cannot build a URL for query {query:?}: {e}")))
    }

    fn metrics_uri(&self) -> Option<Uri> {
        format!("{}/metrics", self.base).parse().ok()
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986 unreserved characters).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The pooled keep-alive client.
pub fn http_client(max_idle_per_host: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    // Small request/response exchanges: Nagle's algorithm would add delayed-ACK stalls.
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(max_idle_per_host.max(1))
        .build(connector)
}

/// Sends one GET and classifies how it ended.
pub async fn send(client: &HttpClient, uri: &Uri, timeout: Duration) -> Outcome {
    exchange(client, uri, timeout)
        .await
        .unwrap_or_else(|Unreachable(reason)| Outcome::Transport(reason))
}

/// No answer began: the connection could not be made, or dropped before a response head
/// (the server died or closed it with the request). Another server may be asked.
struct Unreachable(String);

/// Sends one GET: how it ended, or that the server could not be reached.
async fn exchange(
    client: &HttpClient,
    uri: &Uri,
    timeout: Duration,
) -> std::result::Result<Outcome, Unreachable> {
    let exchange = async {
        let response = match client.get(uri.clone()).await {
            Ok(response) => response,
            Err(e) => return Err(Err(Unreachable(error_chain(&e)))),
        };
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Ok(format!("reading the body: {}", error_chain(&e))))?
            .to_bytes();
        Ok(if status.is_success() {
            Outcome::Answered {
                partial: says_partial(&body).then(|| missing_shards(&body)),
                empty: says_no_hits(&body),
            }
        } else {
            Outcome::Status(status.as_u16())
        })
    };
    // Err(Ok(reason)): a transport error after the answer began; Err(Err(_)): none began.
    let ended: std::result::Result<Outcome, std::result::Result<String, Unreachable>> =
        match tokio::time::timeout(timeout, exchange).await {
            Ok(ended) => ended,
            Err(_) => Err(Ok(format!("no answer within {timeout:?}"))),
        };
    match ended {
        Ok(outcome) => Ok(outcome),
        Err(Ok(reason)) => Ok(Outcome::Transport(reason)),
        Err(Err(unreachable)) => Err(unreachable),
    }
}

/// `error: cause: cause` (hyper's own message is only "client error (Connect)").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Whether a JSON body has a `"partial": true` member, without parsing it all (the
/// generator shares the CPU with the servers it measures).
pub fn says_partial(body: &[u8]) -> bool {
    member_value(body, b"\"partial\"").is_some_and(|value| value.starts_with(b"true"))
}

/// The shards a partial answer lacked and why (`shard: reason; ...`, from its
/// `shards.failures`). Parsed only for partial answers, which are rare.
pub fn missing_shards(body: &[u8]) -> String {
    /// The part of a `/search` or `/suggest` answer that lists failed shards.
    #[derive(serde::Deserialize)]
    struct Accounting {
        shards: searcher::model::ShardsSummary,
    }
    match serde_json::from_slice::<Accounting>(body) {
        Ok(answer) if answer.shards.failures.is_empty() => "no failed shard listed".into(),
        Ok(answer) => (answer.shards.failures.iter())
            .map(|failure| format!("{}: {}", failure.shard, failure.reason))
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("a partial answer without its shard accounting: {e}"),
    }
}

/// Whether a JSON body's `"hits"` member is an empty array.
pub fn says_no_hits(body: &[u8]) -> bool {
    let empty = |key: &[u8]| {
        member_value(body, key)
            .and_then(|value| value.strip_prefix(b"["))
            .is_some_and(|rest| skip_ws(rest).starts_with(b"]"))
    };
    // A search's hits, or a suggestion answer's suggestions.
    empty(b"\"hits\"") || empty(b"\"suggestions\"")
}

/// The bytes after `"key":` for the first occurrence of a quoted key. Inside a JSON string
/// every quote is escaped, so an unescaped `"key"` followed by `:` is a member name.
fn member_value<'a>(body: &'a [u8], quoted_key: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(pos) = find(&body[from..], quoted_key) {
        let at = from + pos;
        let escaped = at > 0 && body[at - 1] == b'\\';
        let rest = skip_ws(&body[at + quoted_key.len()..]);
        if !escaped {
            if let Some(value) = rest.strip_prefix(b":") {
                return Some(skip_ws(value));
            }
        }
        from = at + 1;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// State shared by the workers and the timeline task.
struct Shared {
    client: HttpClient,
    /// Per target (the first, then `also`), per query.
    uris: Vec<Vec<Uri>>,
    kind_ids: Vec<usize>,
    next: AtomicUsize,
    /// Which target the next request goes to first.
    turn: AtomicUsize,
    /// Requests sent again to another target because theirs was unreachable.
    rerouted: AtomicU64,
    issued: AtomicU64,
    max_requests: Option<u64>,
    deadline: Instant,
    stop: Option<Arc<AtomicBool>>,
    request_timeout: Duration,
    stats: Mutex<Stats>,
}

struct Stats {
    total: Recorder,
    /// The current timeline second, when a timeline is kept.
    window: Option<KindStats>,
    window_start: Instant,
}

impl Shared {
    /// The next query to send, or `None` once the run is over (time, count or stop).
    fn claim(&self) -> Option<usize> {
        if Instant::now() >= self.deadline {
            return None;
        }
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            return None;
        }
        let issued = self.issued.fetch_add(1, Ordering::Relaxed);
        if self.max_requests.is_some_and(|max| issued >= max) {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % self.uris[0].len())
    }

    /// Sends query `query` to the next target in turn, and to the following ones while
    /// the one asked is unreachable.
    async fn send(&self, query: usize) -> Outcome {
        let targets = self.uris.len();
        let first = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut last = String::new();
        for tried in 0..targets {
            let uri = &self.uris[(first + tried) % targets][query];
            match exchange(&self.client, uri, self.request_timeout).await {
                Ok(outcome) => return outcome,
                Err(Unreachable(reason)) => last = reason,
            }
            if tried + 1 < targets {
                self.rerouted.fetch_add(1, Ordering::Relaxed);
            }
        }
        Outcome::Transport(last)
    }

    fn record(&self, query: usize, latency: Duration, outcome: &Outcome) {
        let kind = self.kind_ids[query];
        let mut stats = self.stats.lock().expect("stats lock");
        stats.total.record(kind, latency, outcome);
        if let Some(window) = stats.window.as_mut() {
            window.record(latency, outcome);
        }
    }

    /// The current second's figures, starting a new second.
    fn take_window(&self, now: Instant) -> (KindStats, Duration) {
        let mut stats = self.stats.lock().expect("stats lock");
        let length = now.saturating_duration_since(stats.window_start);
        stats.window_start = now;
        let window = stats
            .window
            .replace(KindStats::default())
            .unwrap_or_default();
        (window, length)
    }
}

async fn closed_loop(shared: &Arc<Shared>, concurrency: usize) {
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Some(query) = shared.claim() {
                    let sent = Instant::now();
                    let outcome = shared.send(query).await;
                    shared.record(query, sent.elapsed(), &outcome);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

async fn open_loop(shared: &Arc<Shared>, rate: f64, max_in_flight: usize, start: Instant) {
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / rate);
    for n in 0u64.. {
        let intended = start + interval.mul_f64(n as f64);
        if intended >= shared.deadline {
            break;
        }
        if intended > Instant::now() {
            tokio::time::sleep_until(intended).await;
        }
        let Some(query) = shared.claim() else { break };
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let shared = shared.clone();
        tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = shared.send(query).await;
            let latency = open_loop_latency(intended, sent, Instant::now());
            shared.record(query, latency, &outcome);
            drop(permit);
        });
    }
    // Every permit back means every request has finished.
    let _ = in_flight.acquire_many(max_in_flight as u32).await;
}

/// Latency of an open-loop request: from its intended send time, less the timer's
/// granularity.
pub fn open_loop_latency(intended: Instant, sent: Instant, done: Instant) -> Duration {
    let lateness = sent.saturating_duration_since(intended);
    done.saturating_duration_since(sent) + lateness.saturating_sub(TIMER_SLACK)
}

/// Reads the target's hedge and retry counters.
struct MetricsScraper {
    client: HttpClient,
    uri: Option<Uri>,
    last: Option<FailoverCounters>,
}

impl MetricsScraper {
    fn new(client: HttpClient, uri: Option<Uri>) -> Self {
        MetricsScraper {
            client,
            uri,
            last: None,
        }
    }

    async fn fetch(&self) -> Option<FailoverCounters> {
        let uri = self.uri.clone()?;
        let exchange = async {
            let response = self.client.get(uri).await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let body = response.into_body().collect().await.ok()?.to_bytes();
            Some(FailoverCounters::parse(&String::from_utf8_lossy(&body)))
        };
        tokio::time::timeout(Duration::from_millis(500), exchange)
            .await
            .ok()
            .flatten()
    }

    /// Increase since the previous successful scrape; `None` when unknown.
    async fn increase(&mut self) -> Option<FailoverCounters> {
        let now = self.fetch().await?;
        let increase = self.last.map(|last| now.since(last));
        self.last = Some(now);
        increase
    }
}

async fn timeline_task(
    shared: Arc<Shared>,
    mut scraper: MetricsScraper,
    mut sink: Option<RowSink>,
    start: Instant,
    mut done: oneshot::Receiver<()>,
) -> Vec<TimelineRow> {
    // A target without /metrics (the baselines) shows `-` for the whole run.
    if scraper.increase().await.is_none() && scraper.last.is_none() {
        scraper.uri = None;
    }
    let mut rows = Vec::new();
    let mut ticks =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let finished = tokio::select! {
            _ = ticks.tick() => false,
            _ = &mut done => true,
        };
        let now = Instant::now();
        let (window, length) = shared.take_window(now);
        // The stragglers after the last full second would make a noisy row of a few
        // milliseconds; they count in the summary only.
        if finished && !rows.is_empty() && length < Duration::from_millis(500) {
            break;
        }
        let mut row = TimelineRow::from_window(rows.len() as u64 + 1, now - start, length, &window);
        if let Some(increase) = scraper.increase().await {
            row.hedges = Some(increase.hedges);
            row.retries = Some(increase.retries);
        }
        if let Some(sink) = sink.as_mut() {
            sink(&row);
        }
        rows.push(row);
        if finished {
            break;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_detection() {
        assert!(says_partial(
            br#"{"hits":[],"partial":true,"coverage":0.5}"#
        ));
        assert!(says_partial(b"{\"partial\" :\n true}"));
        assert!(!says_partial(br#"{"hits":[],"partial":false}"#));
        assert!(!says_partial(
            br#"{"snippet":"a \"partial\": true b","partial":false}"#
        ));
        assert!(!says_partial(b"{}"));
        let partial = br#"{"partial":true,"shards":{"total":2,"successful":1,"failed":1,
            "failures":[{"shard":"s1","reason":"down"}]}}"#;
        assert_eq!(missing_shards(partial), "s1: down");
        assert!(says_no_hits(br#"{"total":0,"hits": [ ],"partial":false}"#));
        assert!(!says_no_hits(
            br#"{"hits":[{"id":1,"title":"\"hits\": []"}]}"#
        ));
        assert!(!says_no_hits(b"{}"));
        assert!(says_no_hits(br#"{"prefix":"zz","suggestions":[]}"#));
        assert!(!says_no_hits(br#"{"suggestions":[{"title":"A"}]}"#));
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            percent_encode("\"a b\" +c&d=é"),
            "%22a%20b%22%20%2Bc%26d%3D%C3%A9"
        );
        assert_eq!(percent_encode("Az09-_.~"), "Az09-_.~");
    }

    #[test]
    fn targets_accept_a_base_or_the_search_endpoint() {
        let t = Target::parse("127.0.0.1:8080/", "search").unwrap();
        assert_eq!(t.search, "http://127.0.0.1:8080/search");
        assert_eq!(t.metrics_uri().unwrap(), "http://127.0.0.1:8080/metrics");
        let t = Target::parse("http://h:1/api/search", "search").unwrap();
        assert_eq!(
            (t.search.as_str(), t.base.as_str()),
            ("http://h:1/api/search", "http://h:1/api")
        );
        let uri = t
            .search_uri("+a b", 10, &[("allow_partial".into(), "false".into())])
            .unwrap();
        assert_eq!(
            uri,
            "http://h:1/api/search?q=%2Ba%20b&size=10&allow_partial=false"
        );
        assert!(Target::parse("https://h/", "search").is_err());
        assert!(Target::parse("http://h/search?q=x", "search").is_err());
        assert!(Target::parse("http://[::1", "search").is_err());
        let t = Target::parse("http://h:1", "suggest").unwrap();
        assert_eq!(t.search, "http://h:1/suggest");
        let t = Target::parse("http://h:1/suggest", "suggest").unwrap();
        assert_eq!(t.base, "http://h:1");
    }

    #[test]
    fn open_loop_latency_charges_lateness_beyond_the_timer_slack() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // On time (or late by less than a timer tick): the exchange alone.
        assert_eq!(open_loop_latency(t0, t0 + ms(1), t0 + ms(3)), ms(2));
        // Held back 50 ms by a stalled server: charged, less the slack.
        assert_eq!(open_loop_latency(t0, t0 + ms(50), t0 + ms(52)), ms(51));
    }

    #[test]
    fn bad_specs_are_refused() {
        let queries = vec![BenchQuery {
            text: "a".into(),
            kind: "term".into(),
        }];
        let secs = Duration::from_secs(1);
        let spec = |mode| LoadSpec::new("http://127.0.0.1:1", queries.clone(), mode, secs);
        assert!(validate(&spec(LoadMode::Closed { concurrency: 0 })).is_err());
        assert!(validate(&spec(LoadMode::Open { rate: 0.0 })).is_err());
        assert!(validate(&spec(LoadMode::Open { rate: f64::NAN })).is_err());
        assert!(validate(&spec(LoadMode::Closed { concurrency: 4 })).is_ok());
    }

    #[test]
    fn connection_refused_is_counted_not_fatal() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // closed again when dropped: nothing listens there
        let queries = vec![BenchQuery {
            text: "a".into(),
            kind: "term".into(),
        }];
        let mut spec = LoadSpec::new(
            &format!("http://127.0.0.1:{port}"),
            queries,
            LoadMode::Closed { concurrency: 2 },
            Duration::from_secs(5),
        );
        spec.max_requests = Some(6);
        let report = run_blocking(spec).unwrap();
        assert_eq!((report.overall.requests, report.overall.errors), (6, 6));
        assert!(!report.error_samples.is_empty());
    }

    /// A server answering every request on every connection with an empty JSON object.
    fn tiny_server() -> std::net::SocketAddr {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if line == "\r\n" {
                            let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                            if writer.write_all(answer.as_bytes()).is_err() {
                                return;
                            }
                        }
                        line.clear();
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn spread_load_is_rerouted_past_an_unreachable_coordinator() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let queries = vec![BenchQuery {
            text: "a".into(),
            kind: "term".into(),
        }];
        let mut spec = LoadSpec::new(
            &format!("http://127.0.0.1:{closed}"),
            queries,
            LoadMode::Closed { concurrency: 1 },
            Duration::from_secs(20),
        );
        spec.also = vec![format!("http://{}", tiny_server())];
        spec.max_requests = Some(6);
        let report = run_blocking(spec).unwrap();
        assert_eq!((report.overall.requests, report.overall.errors), (6, 0));
        // Every other request went to the closed port first.
        assert_eq!(report.rerouted, 3);
    }
}
