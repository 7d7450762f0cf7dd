//! [`NodeClient`]: one searcher node's RPC over hyper-util's pooled legacy client.
//!
//! Cheap to clone (the pool and the pre-parsed URIs are shared), so the front-end can hand
//! a copy to every tower service. Connections are kept alive and reused: the hot path is
//! one HTTP/1.1 exchange on a warm loopback connection with `TCP_NODELAY` (Nagle would
//! add up to 40 ms to small frames).
//!
//! Every request is signed with the cluster key (`shard_proto::auth`), and every call
//! carries the budget its caller gives it (`wire::Call`), so the node stops working on it
//! when nobody waits any more.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shard_proto::auth::{ClusterKey, AUTH_HEADER};
use shard_proto::wire::{
    self, paths, Call, ChunkRequest, ChunkResponse, FetchRequest, FetchResponse, HealthResponse,
    SearchRequest, SearchResponse, StatsRequest, StatsResponse, SuggestRequest, SuggestResponse,
    CONTENT_TYPE, MAX_FRAME_BYTES, WIRE_VERSION, WIRE_VERSION_HEADER,
};

use super::resolve::BoundedResolver;
use super::RpcError;
use crate::addr::NodeAddr;

/// Idle pooled connections older than this are closed (the timer makes this happen). Below
/// the nodes' idle timeout (`[server] header_timeout_ms`, at least 1 s, default 10 s), so the
/// client, not the node, closes an idle connection: no request races a node's close.
const POOL_IDLE: Duration = Duration::from_millis(900);
/// Longest error message kept from a non-200 answer.
const MAX_STATUS_MESSAGE: usize = 1024;

/// Typed client of one searcher node.
#[derive(Clone, Debug)]
pub struct NodeClient {
    node_id: Arc<str>,
    addr: NodeAddr,
    http: Client<HttpConnector<BoundedResolver>, Full<Bytes>>,
    uris: Arc<Uris>,
    key: ClusterKey,
}

/// The node's RPC URIs, parsed once.
#[derive(Debug)]
struct Uris {
    health: Uri,
    stats: Uri,
    search: Uri,
    fetch: Uri,
    suggest: Uri,
    replica_chunk: Uri,
}

impl Uris {
    /// The URIs name the host, not an address: hyper's connector resolves it again for
    /// every new connection, so after a failure (the pooled connection is gone) a node
    /// restarted at a new IP is found.
    fn new(addr: &NodeAddr) -> Self {
        let uri = |path: &str| -> Uri {
            format!("http://{addr}{path}")
                .parse()
                .expect("a validated host:port and a constant path form a valid URI")
        };
        Uris {
            health: uri(paths::HEALTH),
            stats: uri(paths::STATS),
            search: uri(paths::SEARCH),
            fetch: uri(paths::FETCH),
            suggest: uri(paths::SUGGEST),
            replica_chunk: uri(paths::REPLICA_CHUNK),
        }
    }
}

impl NodeClient {
    /// A client for the node `node_id` listening at `addr`; connecting gives up after
    /// `connect_timeout`; requests are signed with `key`. Nothing is connected until the
    /// first call.
    pub fn new(
        node_id: impl Into<String>,
        addr: NodeAddr,
        connect_timeout: Duration,
        key: ClusterKey,
    ) -> Self {
        // The lookup gets the connect timeout too (see `resolve.rs`).
        let mut connector =
            HttpConnector::new_with_resolver(BoundedResolver::system(connect_timeout));
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        NodeClient {
            node_id: Arc::from(node_id.into()),
            http,
            uris: Arc::new(Uris::new(&addr)),
            addr,
            key,
        }
    }

    /// The node this client talks to.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The node's RPC address.
    pub fn addr(&self) -> &NodeAddr {
        &self.addr
    }

    /// Node identity, replica states and load.
    pub async fn health(&self) -> Result<HealthResponse, RpcError> {
        let auth = self.sign("GET", &self.uris.health, b"");
        let request = Request::get(self.uris.health.clone())
            .header(WIRE_VERSION_HEADER, WIRE_VERSION)
            .header(AUTH_HEADER, auth)
            .body(Full::new(Bytes::new()))
            .map_err(|e| RpcError::Body(e.to_string()))?;
        self.exchange(request).await
    }

    /// Statistics phase; the node gives up after `budget`.
    pub async fn stats(
        &self,
        request: &StatsRequest,
        budget: Duration,
    ) -> Result<StatsResponse, RpcError> {
        self.post(&self.uris.stats, Call::new(request, budget))
            .await
    }

    /// Query phase; the node gives up after `budget`.
    pub async fn search(
        &self,
        request: &SearchRequest,
        budget: Duration,
    ) -> Result<SearchResponse, RpcError> {
        self.post(&self.uris.search, Call::new(request, budget))
            .await
    }

    /// Fetch phase; the node gives up after `budget`.
    pub async fn fetch(
        &self,
        request: &FetchRequest,
        budget: Duration,
    ) -> Result<FetchResponse, RpcError> {
        self.post(&self.uris.fetch, Call::new(request, budget))
            .await
    }

    /// A range of a file of a replica the node serves (healing from a live replica).
    pub async fn replica_chunk(
        &self,
        request: &ChunkRequest,
        budget: Duration,
    ) -> Result<ChunkResponse, RpcError> {
        self.post(&self.uris.replica_chunk, Call::new(request, budget))
            .await
    }

    /// Title suggestions; the node gives up after `budget`.
    pub async fn suggest(
        &self,
        request: &SuggestRequest,
        budget: Duration,
    ) -> Result<SuggestResponse, RpcError> {
        self.post(&self.uris.suggest, Call::new(request, budget))
            .await
    }

    /// The credentials header of a request to `uri` with `body`, sent now.
    fn sign(&self, method: &str, uri: &Uri, body: &[u8]) -> String {
        self.key.sign(method, uri.path(), body, rand::random())
    }

    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        uri: &Uri,
        call: Call<&Req>,
    ) -> Result<Resp, RpcError> {
        let frame = wire::encode(&call).map_err(|e| RpcError::Body(e.to_string()))?;
        let auth = self.sign("POST", uri, &frame);
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(WIRE_VERSION_HEADER, WIRE_VERSION)
            .header(AUTH_HEADER, auth)
            .body(Full::new(Bytes::from(frame)))
            .map_err(|e| RpcError::Body(e.to_string()))?;
        self.exchange(request).await
    }

    /// Sends one request and decodes the answer, sorting failures into [`RpcError`] kinds.
    async fn exchange<Resp: DeserializeOwned>(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Resp, RpcError> {
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_FRAME_BYTES)
            .collect()
            .await
            .map_err(|e| RpcError::Body(format!("reading the answer of {}: {e}", self.addr)))?
            .to_bytes();
        if status != StatusCode::OK {
            let end = floor_char_boundary(&body, MAX_STATUS_MESSAGE);
            let message = String::from_utf8_lossy(&body[..end]).into_owned();
            return Err(RpcError::Status(status.as_u16(), message));
        }
        wire::decode(&body).map_err(|e| RpcError::Decode(e.to_string()))
    }

    fn transport_error(&self, err: &hyper_util::client::legacy::Error) -> RpcError {
        let addr = self.addr.to_string();
        if err.is_connect() && caused_by_timeout(err) {
            return RpcError::Timeout { addr };
        }
        RpcError::Connect {
            addr,
            reason: error_chain(err),
        }
    }
}

/// Whether an I/O timeout is somewhere in the error's source chain (how `HttpConnector`
/// reports its connect timeout).
fn caused_by_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// `outer: inner: innermost`, because hyper's top-level messages alone ("client error
/// (Connect)") do not say what happened.
fn error_chain(err: &hyper_util::client::legacy::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The largest index ≤ `max` that does not split a UTF-8 sequence (lossy decoding would
/// otherwise turn a cut character into a replacement mark; harmless, but untidy).
fn floor_char_boundary(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut end = max;
    while end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    end
}
