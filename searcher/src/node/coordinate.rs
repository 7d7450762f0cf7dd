//! A node that coordinates: beside its authenticated RPC it serves the public API
//! (`/search`, `/suggest`, `/cluster`, `/metrics`, `/healthz`, the page) at its `http`
//! address from the cluster file, as `searcher frontend` does, with every promise of the
//! front-end (exact global BM25, failover, hedging, partial answers).
//!
//! Its own shards are one more node of the fan-out, reached in-process
//! (`frontend::local::LocalTransport`: the same search pool and queue as its RPC, no
//! frames), so a query needs remote nodes only for the shards this node does not hold,
//! and no separate front-end process exists to pay for or to lose. The public routes are
//! unauthenticated (as a front-end's); the RPC keeps its cluster-key MAC. A node without
//! an `http` address serves RPC only.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt as _;
use tokio::net::TcpListener;

use super::server::{self, NodeState};
use crate::addr::NodeAddr;
use crate::cluster::{http_bind_addr, ClusterConfig, NodeConfig};
use crate::error::{Error, Result};
use crate::frontend::local::LocalTransport;
use crate::frontend::{self, Frontend};

/// Serves the node's RPC on `rpc` and its public API at `http` until `shutdown`
/// completes, then drains both.
pub async fn serve(
    config: &ClusterConfig,
    node: &NodeConfig,
    http: &NodeAddr,
    state: Arc<NodeState>,
    rpc: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = http_bind_addr(&node.id, http, node.http_listen).await?;
    let public = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = Arc::new(LocalTransport::new(Arc::clone(&state)));
    let coordinator = Frontend::coordinating(config, &node.id, local)?;
    tracing::info!(node = %node.id, %addr, "node coordinating: public API listening");
    let shutdown = shutdown.shared();
    tokio::join!(
        server::serve(rpc, state, shutdown.clone()),
        frontend::serve_public(&coordinator, public, &config.server, shutdown),
    );
    Ok(())
}
