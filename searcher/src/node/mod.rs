//! `searcher node`: the shard-serving leaf process.
//!
//! At start it works out its shards from the shard store's manifests and the placement,
//! installs and verifies them ([`replicas`]), then serves the statistics, query and fetch
//! phases ([`leaf`]) over HTTP RPC ([`server`]) until SIGTERM/Ctrl-C, when it stops
//! accepting and finishes what is in flight. Meanwhile [`scrub`] re-verifies the replicas
//! in the background and drops any found corrupt.

pub mod leaf;
pub mod replicas;
pub mod scrub;
pub mod server;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use shard_proto::WikiSchema;
use tokio::net::TcpListener;

use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};

/// Flags of `searcher node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The cluster file.
    #[arg(long)]
    pub config: PathBuf,
    /// This node's id in the cluster file (it listens on that node's `rpc` address).
    #[arg(long)]
    pub id: String,
}

/// Loads the cluster file, binds the node's RPC address and serves until a signal.
pub fn run_cli(args: NodeArgs) -> anyhow::Result<()> {
    let config = ClusterConfig::load(&args.config)?;
    let addr = config.node(&args.id)?.rpc;
    // The async side only moves small frames (searches run on the rayon pool): one I/O
    // thread keeps up, and fewer threads mean fewer context switches per request.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("node-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        tracing::info!(node = %args.id, %addr, pid = std::process::id(), "node listening");
        run(config, args.id, listener, crate::shutdown::signal()).await
    })?;
    Ok(())
}

/// Installs the node's replicas, then serves RPC on `listener` until `shutdown`
/// completes and in-flight requests are answered.
pub async fn run(
    config: ClusterConfig,
    node_id: String,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let schema = WikiSchema::new();
    let limits = config.limits.clone();
    let scrub_config = config.scrub.clone();
    let install = {
        let (schema, node_id) = (schema.clone(), node_id.clone());
        // Hashing every file is blocking work: keep it off the runtime's I/O threads.
        tokio::task::spawn_blocking(move || replicas::install_assigned(&config, &node_id, &schema))
    };
    let replicas = install
        .await
        .map_err(|e| Error::Other(format!("installing replicas: {e}")))??;
    let served = replicas.serving.len();
    let refused = replicas.states.len() - served;
    tracing::info!(node = %node_id, served, refused, "replicas ready");
    let serving: Vec<_> = replicas.serving.values().cloned().collect();
    scrub::spawn(&serving, &scrub_config).map_err(|e| Error::Other(format!("scrub: {e}")))?;
    let fingerprint = schema.fingerprint();
    let leaf = leaf::Leaf::new(node_id, schema, replicas.serving).with_limits(limits);
    let state = server::NodeState::new(leaf, replicas.states, fingerprint, search_threads());
    server::serve(listener, Arc::new(state), shutdown).await;
    Ok(())
}

/// One search thread per core.
fn search_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
