//! The HTTP server loop of both the node and the front-end, with the limits a public or
//! internal port needs against slow, idle and too many clients ([`ServerLimits`]).
//!
//! - HTTP/1.1 only (hyper's h1 connection): the node's client and browsers use it; h2c
//!   prior knowledge would only add an attack surface (stream floods) that no caller needs.
//! - A header read timeout, through hyper's timer: hyper runs that timer from the moment a
//!   connection waits for a request head, so it is also the idle keep-alive timeout.
//! - A body read timeout ([`DeadlineBody`]): a body must arrive whole within it, however
//!   slowly it trickles.
//! - A cap on open connections: one beyond it gets a short 503 and is closed (counted).
//! - A bounded graceful shutdown: stop accepting, let requests in flight finish for at most
//!   the drain time, then return even if a client is stuck half-way through a request.
//! - [`raise_fd_limit`]: the soft `RLIMIT_NOFILE` raised to the hard limit at start.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Limits of one HTTP server: the `[server]` table of the cluster file, the same for every
/// node and front-end of a cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// A request head must arrive within this; also how long an idle keep-alive
    /// connection is kept.
    pub header_timeout_ms: u64,
    /// A request body must arrive whole within this, counted from its head.
    pub body_timeout_ms: u64,
    /// Open connections at most; one more is answered 503 and closed.
    pub max_connections: usize,
    /// After a shutdown signal, requests in flight get this long to finish.
    pub drain_ms: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_connections: 4096,
            drain_ms: 10_000,
        }
    }
}

impl ServerLimits {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
    pub fn drain(&self) -> Duration {
        Duration::from_millis(self.drain_ms)
    }

    /// What is wrong with these limits, if anything.
    pub fn validate(&self) -> Result<(), String> {
        if self.header_timeout_ms < 1_000 || self.body_timeout_ms < 1_000 {
            return Err("[server] header_timeout_ms and body_timeout_ms must be >= 1000".into());
        }
        if self.max_connections == 0 {
            return Err("[server] max_connections must be >= 1".into());
        }
        Ok(())
    }
}

/// Counts of one server, for its metrics (prometheus counters: clones share the count).
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Connections refused because `max_connections` were open.
    pub refused_connections: Counter,
    /// Connections accepted since start.
    pub accepted_connections: Counter,
    /// Requests whose head has arrived and whose answer is not finished.
    pub requests_in_progress: Gauge,
}

/// Counts a request in progress until dropped (answered, or abandoned by its client).
struct InProgress(Gauge);

impl InProgress {
    fn enter(gauge: &Gauge) -> Self {
        gauge.inc();
        InProgress(gauge.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A request body that fails once `limit` has passed since the request head arrived.
pub struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<Sleep>>,
    limit: Duration,
}

/// The error of a body that did not arrive within its limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a connection over the cap is told before it is closed.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain\r\ncontent-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n";

/// Serves `service` on `listener` within `limits` until `shutdown` completes, then drains
/// for at most `limits.drain()`.
pub async fn serve<S, B>(
    listener: TcpListener,
    limits: &ServerLimits,
    counters: Arc<ServerCounters>,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: hyper::service::Service<Request<DeadlineBody>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout());
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let body_timeout = limits.body_timeout();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            counters.refused_connections.inc();
            refuse(stream);
            continue;
        };
        counters.accepted_connections.inc();
        // Small frames must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let in_progress = counters.requests_in_progress.clone();
        let with_deadline = hyper::service::service_fn(move |request: Request<Incoming>| {
            let counted = InProgress::enter(&in_progress);
            let answer = service.call(request.map(|body| DeadlineBody::new(body, body_timeout)));
            async move {
                let _counted = counted;
                answer.await
            }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), with_deadline);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(limits.drain(), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "some connections were still busy after {:?}: closing them",
            limits.drain()
        );
    }
}

/// Tells a connection over the cap why it is closed, without waiting for it: the answer
/// fits a fresh socket's send buffer, and a peer that does not read it loses nothing.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(TOO_MANY_CONNECTIONS);
}

/// Raises the soft limit on open files to the hard limit (a server holds one per client
/// connection, one per node connection and the shards' files); returns the new limit.
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!("cannot raise the open-files limit: {e}");
            None
        }
    }
}
