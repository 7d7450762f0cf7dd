//! The node's RPC server: hyper 1 over hyper-util's auto builder (HTTP/1.1 and h2c on one
//! port), routing, bounded bodies, the search concurrency limit and graceful drain.
//!
//! Status codes are the contract with the front-end: 200 with a bincode frame; 400 with a
//! plain-text reason for a garbage frame or a bad request; 413 for a body over
//! `MAX_FRAME_BYTES`; 404 for an unknown path; 405 for a wrong method. Searches leave the
//! async runtime for a rayon pool sized to the machine, behind a semaphore, so slow
//! queries queue instead of starving the I/O threads that answer health probes.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shard_proto::wire::{
    self, paths, FetchRequest, HealthResponse, ReplicaState, SearchRequest, StatsRequest,
    CONTENT_TYPE, MAX_FRAME_BYTES, WIRE_VERSION, WIRE_VERSION_HEADER,
};
use shard_proto::ShardId;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use super::leaf::{BadRequest, Leaf};
use crate::in_flight::InFlight;

/// Name prefix of the search pool's threads (`leaf-0`, `leaf-1`...), which is how a tool
/// reading `/proc/<pid>/task` tells the node's search work from its HTTP and I/O.
pub const SEARCH_THREAD_PREFIX: &str = "leaf-";
/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a request handler needs, shared by all connections.
pub struct NodeState {
    leaf: Arc<Leaf>,
    states: Vec<(ShardId, ReplicaState)>,
    schema_fingerprint: String,
    started: Instant,
    in_flight: AtomicUsize,
    searches: Arc<Semaphore>,
    pool: rayon::ThreadPool,
}

impl NodeState {
    /// `threads` rayon workers run searches; up to twice as many requests hold a permit,
    /// so a worker never idles waiting for the next request to be decoded.
    pub fn new(
        leaf: Leaf,
        states: Vec<(ShardId, ReplicaState)>,
        fingerprint: String,
        threads: usize,
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
        NodeState {
            leaf: Arc::new(leaf),
            states,
            schema_fingerprint: fingerprint,
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            searches: Arc::new(Semaphore::new(threads * 2)),
            pool,
        }
    }

    fn health(&self) -> HealthResponse {
        HealthResponse {
            node: self.leaf.node_id.clone(),
            pid: std::process::id(),
            uptime_millis: self.started.elapsed().as_millis() as u64,
            in_flight: self.in_flight.load(Ordering::Relaxed) as u32,
            replicas: self.leaf.current_states(&self.states),
            wire_version: WIRE_VERSION,
            schema: self.schema_fingerprint.clone(),
        }
    }

    /// Routes one request.
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(version) = request.headers().get(WIRE_VERSION_HEADER) {
            let parsed = version.to_str().ok().and_then(|v| v.parse::<u32>().ok());
            if parsed != Some(WIRE_VERSION) {
                let message = format!("wire version {version:?} (this node speaks {WIRE_VERSION})");
                return text(StatusCode::BAD_REQUEST, message);
            }
        }
        let post = request.method() == Method::POST;
        match request.uri().path() {
            paths::HEALTH if request.method() == Method::GET => frame(&self.health()),
            paths::STATS if post => {
                self.rpc(request, |leaf, r: StatsRequest| leaf.stats(&r))
                    .await
            }
            paths::SEARCH if post => {
                self.rpc(request, |leaf, r: SearchRequest| leaf.search(&r))
                    .await
            }
            paths::FETCH if post => {
                self.rpc(request, |leaf, r: FetchRequest| leaf.fetch(&r))
                    .await
            }
            paths::HEALTH => wrong_method("GET"),
            paths::STATS | paths::SEARCH | paths::FETCH => wrong_method("POST"),
            path => text(StatusCode::NOT_FOUND, format!("no RPC at {path}")),
        }
    }

    /// Decodes the body, runs `phase` on the search pool under the concurrency limit and
    /// encodes its answer.
    async fn rpc<Req, Resp>(
        self: Arc<Self>,
        request: Request<Incoming>,
        phase: fn(&Leaf, Req) -> Result<Resp, BadRequest>,
    ) -> Response<Full<Bytes>>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
    {
        let _in_flight = InFlight::enter(&self.in_flight);
        let message: Req = match read_frame(request).await {
            Ok(message) => message,
            Err(response) => return response,
        };
        let Ok(permit) = self.searches.clone().acquire_owned().await else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "node is shutting down".into(),
            );
        };
        let (done, answer) = oneshot::channel();
        let leaf = self.leaf.clone();
        self.pool.spawn(move || {
            let _ = done.send(phase(&leaf, message));
            drop(permit);
        });
        match answer.await {
            Ok(Ok(response)) => frame(&response),
            Ok(Err(BadRequest(reason))) => text(StatusCode::BAD_REQUEST, reason),
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the search task failed".into(),
            ),
        }
    }
}

/// Reads a body of at most `MAX_FRAME_BYTES` and decodes it; the error is the response.
async fn read_frame<T: DeserializeOwned>(
    request: Request<Incoming>,
) -> Result<T, Response<Full<Bytes>>> {
    let too_large = || {
        let message = format!("body exceeds the {MAX_FRAME_BYTES}-byte frame limit");
        text(StatusCode::PAYLOAD_TOO_LARGE, message)
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_FRAME_BYTES as u64) {
        return Err(too_large()); // refused before reading a byte of it
    }
    let body = match Limited::new(request.into_body(), MAX_FRAME_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("reading the body: {e}"),
            ))
        }
    };
    wire::decode(&body).map_err(|e| text(StatusCode::BAD_REQUEST, e.to_string()))
}

/// A 200 answer carrying `message` as a bincode frame.
fn frame<T: Serialize>(message: &T) -> Response<Full<Bytes>> {
    match wire::encode(message) {
        Ok(bytes) => {
            let mut response = Response::new(Full::new(Bytes::from(bytes)));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            headers.insert(WIRE_VERSION_HEADER, HeaderValue::from(WIRE_VERSION));
            response
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the answer: {e}"),
        ),
    }
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

/// Accepts connections until `shutdown` completes, then stops accepting and waits (up to
/// [`DRAIN_TIMEOUT`]) for in-flight requests to be answered; idle keep-alive connections
/// are closed at once.
pub async fn serve(
    listener: TcpListener,
    state: Arc<NodeState>,
    shutdown: impl Future<Output = ()>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Small frames must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.handle(request).await) }
                    });
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!("connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after {DRAIN_TIMEOUT:?}");
    }
}
