//! The node's RPC server: routing, authentication, bounded bodies, the search queue and
//! the hand-off of calls to the search pool (the HTTP loop itself is [`crate::serve`]).
//!
//! Status codes are the contract with the front-end: 200 with a bincode frame; 401 for a
//! request without valid credentials (checked from the headers before the body is read,
//! and the MAC before it is decoded: nothing else is done for it); 400 with a plain-text
//! reason for a garbage frame or a bad request; 408 for a body that did not arrive in time;
//! 411 for a body without a length; 413 for a body over `MAX_FRAME_BYTES`; 503 when the
//! node has too many calls waiting or too many body bytes being received; 504 for a call
//! whose budget ran out before it could start; 404 for an unknown path; 405 for a wrong
//! method.
//!
//! Calls leave the async runtime for a rayon pool sized to the machine, behind a semaphore
//! with a bounded wait queue, so slow queries queue (up to a limit) instead of starving
//! the I/O thread that answers health probes; decoding and encoding frames happen on the
//! pool too. Each call carries a [`Stop`]: its deadline and a flag raised when hyper drops
//! the handler because the caller hung up.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shard_proto::auth::{self, AuthFailure, ClusterKey, Credentials, ReplayGuard, AUTH_HEADER};
use shard_proto::generation::BASE;
use shard_proto::wire::{
    self, paths, Call, ChunkRequest, FetchRequest, HealthResponse, ReplicaState, SearchRequest,
    StatsRequest, SuggestRequest, CONTENT_TYPE, MAX_FRAME_BYTES, WIRE_VERSION, WIRE_VERSION_HEADER,
};
use shard_proto::ShardId;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::heal::Healer;
use super::leaf::{BadRequest, Leaf};
use super::metrics::NodeMetrics;
use super::replica_chunks::read_chunk;
use super::stop::{Stop, Stopped};
use crate::in_flight::InFlight;
use crate::serve::{self, BodyTimeout, DeadlineBody, ServerCounters, ServerLimits};

/// Name prefix of the search pool's threads (`leaf-0`, `leaf-1`...), which is how a tool
/// reading `/proc/<pid>/task` tells the node's search work from its HTTP and I/O.
pub const SEARCH_THREAD_PREFIX: &str = "leaf-";
/// Calls waiting for a search permit at most; one more is answered 503 at once. As many as
/// one front-end keeps in flight to a node, so only several front-ends at full tilt (or
/// someone flooding the port) ever meet it.
pub const MAX_WAITING_CALLS: usize = 256;
/// Request body bytes being received or waiting at once, over all connections; beyond, a
/// call is answered 503 before its body is read. Bounds the node's memory under a flood
/// of large frames (each is at most `MAX_FRAME_BYTES`).
pub const MAX_BODY_BYTES_IN_FLIGHT: usize = 256 * 1024 * 1024;
/// Metrics route (no credentials needed: counts only).
pub const METRICS_PATH: &str = "/metrics";

/// What a job on the search pool hands back: an encoded frame for an RPC, the answer
/// itself for an in-process call.
enum Outcome<T = Bytes> {
    Answer(T),
    Bad(String),
    Stopped(Stopped),
    Internal(String),
}

/// A call refused before it ran: the status and reason an RPC answers with.
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub String);

/// Everything a request handler needs, shared by all connections.
pub struct NodeState {
    leaf: Arc<Leaf>,
    states: Vec<(ShardId, ReplicaState)>,
    schema_fingerprint: String,
    started: Instant,
    in_flight: AtomicUsize,
    searches: Arc<Semaphore>,
    /// Calls waiting for a permit of `searches`.
    waiting: AtomicUsize,
    /// Body bytes (in KiB) being received or queued.
    body_kib: Arc<Semaphore>,
    pool: rayon::ThreadPool,
    key: ClusterKey,
    replays: ReplayGuard,
    pub limits: ServerLimits,
    pub server_counters: Arc<ServerCounters>,
    pub metrics: Arc<NodeMetrics>,
    healer: Option<Arc<Healer>>,
    /// The healer's probe and decision tasks, stopped with the node.
    background: Vec<JoinHandle<()>>,
}

impl Drop for NodeState {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

impl NodeState {
    /// `threads` rayon workers run searches; up to twice as many requests hold a permit,
    /// so a worker never idles waiting for the next request to be decoded.
    pub fn new(
        leaf: Leaf,
        states: Vec<(ShardId, ReplicaState)>,
        fingerprint: String,
        threads: usize,
        key: ClusterKey,
        limits: ServerLimits,
    ) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            // Named so that tools can tell the search pool's CPU time from the rest of the
            // process in /proc (`SEARCH_THREAD_PREFIX`).
            .thread_name(|i| format!("{SEARCH_THREAD_PREFIX}{i}"))
            // Rayon aborts the process on a panic by default; the request's sender is
            // dropped instead, and it is answered with 500.
            .panic_handler(|_| tracing::error!("a search task panicked"))
            .build()
            .expect("building a rayon pool only fails if threads cannot be spawned");
        let server_counters = Arc::new(ServerCounters::default());
        NodeState {
            leaf: Arc::new(leaf),
            states,
            schema_fingerprint: fingerprint,
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            searches: Arc::new(Semaphore::new(threads * 2)),
            waiting: AtomicUsize::new(0),
            body_kib: Arc::new(Semaphore::new(MAX_BODY_BYTES_IN_FLIGHT / 1024)),
            pool,
            key,
            replays: ReplayGuard::default(),
            limits,
            metrics: Arc::new(NodeMetrics::new(&server_counters)),
            server_counters,
            healer: None,
            background: Vec::new(),
        }
    }

    /// The node heals with `healer`, whose tasks (`background`) stop with the node.
    pub fn with_healer(mut self, healer: Arc<Healer>, background: Vec<JoinHandle<()>>) -> Self {
        self.healer = Some(healer);
        self.background = background;
        self
    }

    /// The leaf, shared with the healer (which adds and removes replicas).
    pub fn leaf(&self) -> &Arc<Leaf> {
        &self.leaf
    }

    /// What the node reports about itself: the health RPC's answer, also read in-process
    /// by the node's own coordinator.
    pub fn health(&self) -> HealthResponse {
        let hidden = self.healer.as_ref().map(|h| h.hidden()).unwrap_or_default();
        let healing = match &self.healer {
            Some(healer) => healer.report(Instant::now()),
            None => Vec::new(),
        };
        let hidden_base = hidden.get(BASE).cloned().unwrap_or_default();
        let mut replicas = self.leaf.current_states(&self.states, &hidden_base);
        let base: Vec<ShardId> = (self.leaf.serving().into_iter())
            .filter(|shard| !hidden_base.contains(shard))
            .collect();
        let generations = self.leaf.generations.report(base, &hidden);
        // A shard held only in a named generation is listed too: front-ends route by
        // what `replicas` lists (`generations` says which generation has it).
        for (shard, state) in self.leaf.generations.serving_states(&hidden) {
            if !replicas.iter().any(|(held, _)| *held == shard) {
                replicas.push((shard, state));
            }
        }
        replicas.sort_by_key(|(shard, _)| *shard);
        HealthResponse {
            node: self.leaf.node_id.clone(),
            pid: std::process::id(),
            uptime_millis: self.started.elapsed().as_millis() as u64,
            in_flight: self.in_flight.load(Ordering::Relaxed) as u32,
            replicas,
            healing,
            generations,
            wire_version: WIRE_VERSION,
            schema: self.schema_fingerprint.clone(),
        }
    }

    /// Routes one request: credentials first, for everything but the metrics.
    pub async fn handle(self: Arc<Self>, request: Request<DeadlineBody>) -> Response<Full<Bytes>> {
        let arrived = Instant::now();
        if request.uri().path() == METRICS_PATH && request.method() == Method::GET {
            return metrics_text(self.metrics.render());
        }
        let header = request
            .headers()
            .get(AUTH_HEADER)
            .map(HeaderValue::as_bytes);
        let credentials = match auth::check_header(header, auth::unix_millis_now()) {
            Ok(credentials) => credentials,
            Err(failure) => return self.unauthorized(failure),
        };
        if let Some(version) = request.headers().get(WIRE_VERSION_HEADER) {
            let parsed = version.to_str().ok().and_then(|v| v.parse::<u32>().ok());
            if parsed != Some(WIRE_VERSION) {
                let message = format!("wire version {version:?} (this node speaks {WIRE_VERSION})");
                return text(StatusCode::BAD_REQUEST, message);
            }
        }
        let post = request.method() == Method::POST;
        match request.uri().path() {
            paths::HEALTH if request.method() == Method::GET => {
                match self.authenticate(&credentials, "GET", paths::HEALTH, b"") {
                    Ok(()) => frame(&self.health()),
                    Err(failure) => self.unauthorized(failure),
                }
            }
            paths::STATS if post => {
                let phase = |leaf: &Leaf, r: &StatsRequest, stop: &Stop| leaf.stats(r, stop);
                self.rpc(request, credentials, arrived, phase).await
            }
            paths::SEARCH if post => {
                let phase = |leaf: &Leaf, r: &SearchRequest, stop: &Stop| leaf.search(r, stop);
                self.rpc(request, credentials, arrived, phase).await
            }
            paths::FETCH if post => {
                let phase = |leaf: &Leaf, r: &FetchRequest, stop: &Stop| leaf.fetch(r, stop);
                self.rpc(request, credentials, arrived, phase).await
            }
            paths::SUGGEST if post => {
                let phase = |leaf: &Leaf, r: &SuggestRequest, stop: &Stop| leaf.suggest(r, stop);
                self.rpc(request, credentials, arrived, phase).await
            }
            paths::REPLICA_CHUNK if post => {
                let phase = |leaf: &Leaf, r: &ChunkRequest, _: &Stop| read_chunk(leaf, r);
                self.rpc(request, credentials, arrived, phase).await
            }
            paths::HEALTH => wrong_method("GET"),
            paths::STATS | paths::SEARCH | paths::FETCH | paths::SUGGEST | paths::REPLICA_CHUNK => {
                wrong_method("POST")
            }
            path => text(StatusCode::NOT_FOUND, format!("no RPC at {path}")),
        }
    }

    /// The MAC over the whole request, then the nonce (only for a valid MAC, so forged
    /// requests never fill the nonce memory).
    fn authenticate(
        &self,
        credentials: &Credentials,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), AuthFailure> {
        self.key.verify(credentials, method, path, body)?;
        self.replays.admit(credentials, auth::unix_millis_now())
    }

    fn unauthorized(&self, failure: AuthFailure) -> Response<Full<Bytes>> {
        self.metrics.refused(match failure {
            AuthFailure::Missing => "unauthenticated_missing",
            AuthFailure::Malformed => "unauthenticated_malformed",
            AuthFailure::Stale(_) => "unauthenticated_stale",
            AuthFailure::BadMac => "unauthenticated_bad_mac",
            AuthFailure::Replayed => "unauthenticated_replayed",
            AuthFailure::Overloaded => "unauthenticated_overloaded",
        });
        text(StatusCode::UNAUTHORIZED, failure.to_string())
    }

    fn refuse(
        &self,
        reason: &'static str,
        status: StatusCode,
        message: String,
    ) -> Response<Full<Bytes>> {
        self.metrics.refused(reason);
        text(status, message)
    }

    /// Reads and authenticates the body, queues for a permit within the call's budget, then
    /// decodes, runs `phase` and encodes on the search pool.
    async fn rpc<Req, Resp, Phase>(
        self: Arc<Self>,
        request: Request<DeadlineBody>,
        credentials: Credentials,
        arrived: Instant,
        phase: Phase,
    ) -> Response<Full<Bytes>>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize,
        Phase: FnOnce(&Leaf, &Req, &Stop) -> Result<Resp, BadRequest> + Send + 'static,
    {
        let _in_flight = InFlight::enter(&self.in_flight);
        let path = request.uri().path().to_string();
        let (body, _body_permit) = match self.read_body(request).await {
            Ok(read) => read,
            Err(response) => return response,
        };
        if let Err(failure) = self.authenticate(&credentials, "POST", &path, &body) {
            return self.unauthorized(failure);
        }
        let budget = match wire::call_budget(&body) {
            Ok(budget) => budget,
            Err(e) => return self.refuse("bad_frame", StatusCode::BAD_REQUEST, e.to_string()),
        };
        // Dropped with this future when the caller hangs up: the pool job sees it.
        let (stop, _cancel_on_drop) = Stop::for_call(arrived, budget);
        let permit = match self.wait_for_permit(&stop).await {
            Ok(permit) => permit,
            Err(Refused(status, message)) => return text(status, message),
        };
        let job = move |leaf: &Leaf, stop: &Stop| run_call::<Req, Resp>(leaf, &body, stop, phase);
        match self.spawn_on_pool(permit, &stop, job).await {
            Ok(Outcome::Answer(bytes)) => frame_bytes(bytes),
            Ok(Outcome::Bad(reason)) => self.refuse("bad_request", StatusCode::BAD_REQUEST, reason),
            Ok(Outcome::Stopped(stopped)) => text(StatusCode::GATEWAY_TIMEOUT, stopped.to_string()),
            Ok(Outcome::Internal(reason)) => text(StatusCode::INTERNAL_SERVER_ERROR, reason),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the search task failed".into(),
            ),
        }
    }

    /// Reads a body of a declared length of at most `MAX_FRAME_BYTES`, within the node's
    /// budget of body bytes in flight; the error is the response.
    async fn read_body(
        &self,
        request: Request<DeadlineBody>,
    ) -> Result<(Bytes, OwnedSemaphorePermit), Response<Full<Bytes>>> {
        let too_large = || {
            let message = format!("body exceeds the {MAX_FRAME_BYTES}-byte frame limit");
            self.refuse("too_large", StatusCode::PAYLOAD_TOO_LARGE, message)
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let Some(declared) = declared else {
            let message = "a body needs a content-length".to_string();
            return Err(self.refuse("no_length", StatusCode::LENGTH_REQUIRED, message));
        };
        if declared > MAX_FRAME_BYTES as u64 {
            return Err(too_large()); // refused before reading a byte of it
        }
        let kib = (declared as u32).div_ceil(1024).max(1);
        let Ok(permit) = Arc::clone(&self.body_kib).try_acquire_many_owned(kib) else {
            let message = "node busy: too many request bytes in flight".to_string();
            return Err(self.refuse("body_memory", StatusCode::SERVICE_UNAVAILABLE, message));
        };
        match Limited::new(request.into_body(), declared as usize)
            .collect()
            .await
        {
            Ok(collected) => Ok((collected.to_bytes(), permit)),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Err(e) if e.downcast_ref::<BodyTimeout>().is_some() => {
                Err(self.refuse("body_timeout", StatusCode::REQUEST_TIMEOUT, e.to_string()))
            }
            Err(e) => Err(text(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {e}"),
            )),
        }
    }

    /// Runs `job` on the search pool holding `permit`; the receiver gets its outcome (or
    /// an error if the job panicked).
    fn spawn_on_pool<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        stop: &Stop,
        job: impl FnOnce(&Leaf, &Stop) -> Outcome<T> + Send + 'static,
    ) -> oneshot::Receiver<Outcome<T>> {
        let (done, answer) = oneshot::channel();
        let leaf = Arc::clone(&self.leaf);
        let job_stop = stop.clone();
        let metrics = Arc::clone(&self.metrics);
        self.pool.spawn(move || {
            let _running = metrics.running();
            let outcome = job(&leaf, &job_stop);
            // Counted here, not by the handler: a cancelled call's handler is gone.
            if let Outcome::Stopped(stopped) = &outcome {
                metrics.stopped(stop_label(*stopped));
            }
            if let Some(deadline) = job_stop.deadline() {
                metrics.ran_past_deadline(Instant::now().saturating_duration_since(deadline));
            }
            let _ = done.send(outcome);
            drop(permit);
        });
        answer
    }

    /// Runs `phase` for the node's own coordinator, in-process: the same permit queue,
    /// search pool, deadline (`budget`, from now), cancellation (dropping the future
    /// cancels the call, as a caller hanging up does) and metrics as an RPC, without HTTP,
    /// authentication or (de)serialization. An error is what an RPC would have answered.
    pub async fn call_local<Resp: Send + 'static>(
        self: &Arc<Self>,
        budget: std::time::Duration,
        phase: impl FnOnce(&Leaf, &Stop) -> Result<Resp, BadRequest> + Send + 'static,
    ) -> Result<Resp, Refused> {
        let _in_flight = InFlight::enter(&self.in_flight);
        let millis = u32::try_from(budget.as_millis()).unwrap_or(u32::MAX);
        let (stop, _cancel_on_drop) = Stop::for_call(Instant::now(), millis);
        let permit = self.wait_for_permit(&stop).await?;
        let job = move |leaf: &Leaf, stop: &Stop| {
            if let Err(stopped) = stop.check() {
                return Outcome::Stopped(stopped);
            }
            match phase(leaf, stop) {
                Ok(answer) => Outcome::Answer(answer),
                Err(BadRequest(reason)) => Outcome::Bad(reason),
            }
        };
        match self.spawn_on_pool(permit, &stop, job).await {
            Ok(Outcome::Answer(answer)) => Ok(answer),
            Ok(Outcome::Bad(reason)) => {
                self.metrics.refused("bad_request");
                Err(Refused(StatusCode::BAD_REQUEST, reason))
            }
            Ok(Outcome::Stopped(stopped)) => {
                Err(Refused(StatusCode::GATEWAY_TIMEOUT, stopped.to_string()))
            }
            Ok(Outcome::Internal(reason)) => {
                Err(Refused(StatusCode::INTERNAL_SERVER_ERROR, reason))
            }
            Err(_) => Err(Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the search task failed".into(),
            )),
        }
    }

    /// A search permit, waiting in a bounded queue for at most the call's budget.
    async fn wait_for_permit(&self, stop: &Stop) -> Result<OwnedSemaphorePermit, Refused> {
        let late = || {
            self.metrics.refused("expired");
            Refused(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline exceeded before the call could start".into(),
            )
        };
        if stop.check().is_err() {
            return Err(late());
        }
        if let Ok(permit) = Arc::clone(&self.searches).try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = InFlight::enter(&self.waiting);
        if waiting.others >= MAX_WAITING_CALLS {
            let message = format!("node busy: {MAX_WAITING_CALLS} calls already waiting");
            self.metrics.refused("queue_full");
            return Err(Refused(StatusCode::SERVICE_UNAVAILABLE, message));
        }
        let acquire = Arc::clone(&self.searches).acquire_owned();
        let deadline = stop.deadline().map(tokio::time::Instant::from_std);
        let acquired = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, acquire).await.ok(),
            None => Some(acquire.await),
        };
        match acquired {
            Some(Ok(permit)) => Ok(permit),
            Some(Err(_closed)) => Err(Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "node is shutting down".into(),
            )),
            None => Err(late()),
        }
    }
}

/// Decodes, runs and encodes one call on a pool thread, unless it is already stopped.
fn run_call<Req: DeserializeOwned, Resp: Serialize>(
    leaf: &Leaf,
    body: &[u8],
    stop: &Stop,
    phase: impl FnOnce(&Leaf, &Req, &Stop) -> Result<Resp, BadRequest>,
) -> Outcome<Bytes> {
    if let Err(stopped) = stop.check() {
        return Outcome::Stopped(stopped);
    }
    let call: Call<Req> = match wire::decode(body) {
        Ok(call) => call,
        Err(e) => return Outcome::Bad(e.to_string()),
    };
    let answer = match phase(leaf, &call.request, stop) {
        Ok(answer) => answer,
        Err(BadRequest(reason)) => return Outcome::Bad(reason),
    };
    if let Err(stopped) = stop.check() {
        return Outcome::Stopped(stopped);
    }
    match wire::encode(&answer) {
        Ok(bytes) => Outcome::Answer(Bytes::from(bytes)),
        Err(e) => Outcome::Internal(format!("encoding the answer: {e}")),
    }
}

fn stop_label(stopped: Stopped) -> &'static str {
    match stopped {
        Stopped::Deadline => "deadline",
        Stopped::Cancelled => "cancelled",
    }
}

/// A 200 answer carrying `message` as a bincode frame.
fn frame<T: Serialize>(message: &T) -> Response<Full<Bytes>> {
    match wire::encode(message) {
        Ok(bytes) => frame_bytes(Bytes::from(bytes)),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the answer: {e}"),
        ),
    }
}

/// A 200 answer carrying an encoded frame.
fn frame_bytes(bytes: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(WIRE_VERSION_HEADER, HeaderValue::from(WIRE_VERSION));
    response
}

fn metrics_text(body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// An error answer with a plain-text reason.
fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(WIRE_VERSION_HEADER, HeaderValue::from(WIRE_VERSION));
    response
}

fn wrong_method(allowed: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allowed}"));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// Serves the node's RPC on `listener` within its [`ServerLimits`] until `shutdown`
/// completes, then drains for at most the configured time.
pub async fn serve(
    listener: TcpListener,
    state: Arc<NodeState>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = state.limits.clone();
    let counters = Arc::clone(&state.server_counters);
    let service = hyper::service::service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, std::convert::Infallible>(state.handle(request).await) }
    });
    serve::serve(listener, &limits, counters, service, shutdown).await;
}
