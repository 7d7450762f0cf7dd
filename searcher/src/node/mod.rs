//! `searcher node`: the shard-serving leaf process.
//!
//! At start it works out its shards from the shard store's manifests and the placement,
//! installs and verifies them ([`replicas`]), and only then binds its port (so a starting
//! node refuses connections, which the front-end skips at once, rather than accepting them
//! and answering nothing for minutes). It serves the statistics, query and fetch phases
//! ([`leaf`]) over authenticated HTTP RPC ([`server`]), each call stopping at its deadline
//! or when its caller hangs up ([`stop`]), until SIGTERM/Ctrl-C, when it stops accepting
//! and finishes what is in flight within the drain time. Title suggestions ([`suggest`])
//! are one more call of the same kind.
//! Meanwhile [`scrub`] re-verifies the replicas in the background and drops any found
//! corrupt, and [`heal`] watches the other nodes and restores lost replicas.
//!
//! A node with an `http` address in the cluster file also coordinates searches
//! ([`coordinate`]); a `[[coordinator]]` id runs the front-end's role only (no shards).

pub mod coordinate;
pub mod generations;
pub mod heal;
pub mod leaf;
pub mod metrics;
mod parsed;
pub mod replica_chunks;
pub mod replicas;
pub mod scrub;
pub mod server;
pub mod stop;
pub mod suggest;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod generations_tests;
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
    /// This node's id in the cluster file (it listens on that node's `listen` address, or
    /// what its `rpc` address resolves to).
    #[arg(long)]
    pub id: String,
}

/// Loads the cluster file, installs the replicas, binds the node's RPC address and serves
/// until a signal.
pub fn run_cli(args: NodeArgs) -> anyhow::Result<()> {
    let config = ClusterConfig::load(&args.config)?;
    if config.coordinator(&args.id).is_some() {
        return crate::frontend::run_coordinator_cli(config, &args.id);
    }
    let node = config.node(&args.id)?.clone();
    crate::serve::raise_fd_limit();
    // The async side only moves small frames (searches run on the rayon pool): one I/O
    // thread keeps up, and fewer threads mean fewer context switches per request. A
    // coordinating node also merges and writes JSON there: two.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if node.http.is_some() { 2 } else { 1 })
        .enable_all()
        .thread_name("node-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let state = Arc::new(prepare(config.clone(), args.id.clone()).await?);
        let addr = node.bind_addr().await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        tracing::info!(node = %args.id, %addr, pid = std::process::id(), "node listening");
        let shutdown = crate::shutdown::signal();
        match &node.http {
            Some(http) => {
                coordinate::serve(&config, &node, http, state, listener, shutdown).await?
            }
            None => server::serve(listener, state, shutdown).await,
        }
        Ok::<_, Error>(())
    })?;
    // Connections still open after the drain, and their pool jobs, are abandoned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
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
    let state = prepare(config, node_id).await?;
    server::serve(listener, Arc::new(state), shutdown).await;
    Ok(())
}

/// Reads the cluster key and installs and verifies the node's replicas: everything a node
/// does before it may accept a connection.
pub async fn prepare(config: ClusterConfig, node_id: String) -> Result<server::NodeState> {
    let key = config.cluster_key()?;
    let server_limits = config.server.clone();
    let schema = WikiSchema::new();
    let limits = config.limits.clone();
    let scrub_config = config.scrub.clone();
    let install = {
        let (config, schema, node_id) = (config.clone(), schema.clone(), node_id.clone());
        // Hashing every file is blocking work: keep it off the runtime's I/O threads.
        tokio::task::spawn_blocking(move || replicas::install_assigned(&config, &node_id, &schema))
    };
    let replicas = install
        .await
        .map_err(|e| Error::Other(format!("installing replicas: {e}")))??;
    let served = replicas.serving.len();
    let refused = replicas.states.len() - served;
    tracing::info!(node = %node_id, served, refused, "replicas ready");
    let in_store = replicas.in_store;
    let fingerprint = schema.fingerprint();
    let leaf =
        leaf::Leaf::new(node_id.clone(), schema.clone(), replicas.serving).with_limits(limits);
    let state = server::NodeState::new(
        leaf,
        replicas.states,
        fingerprint,
        search_threads(),
        key,
        server_limits,
    );
    scrub::spawn(state.leaf(), &scrub_config).map_err(|e| Error::Other(format!("scrub: {e}")))?;
    let healer = Arc::new(heal::Healer::new(
        &config,
        &node_id,
        Arc::clone(state.leaf()),
        schema,
    ));
    let background = healer.spawn(&config, in_store);
    follow_generations(&config, &node_id, Arc::clone(state.leaf())).await?;
    Ok(state.with_healer(healer, background))
}

/// Installs the store's live generation if it is a named one (before the node binds its
/// port, as for the base replicas), then follows the alias in the background.
async fn follow_generations(
    config: &ClusterConfig,
    node_id: &str,
    leaf: Arc<leaf::Leaf>,
) -> Result<()> {
    let mut watch = generations::Watch::new(config, node_id, WikiSchema::new(), leaf)?;
    let watch = tokio::task::spawn_blocking(move || {
        watch.poll();
        watch
    })
    .await
    .map_err(|e| Error::Other(format!("installing the live generation: {e}")))?;
    watch
        .spawn()
        .map_err(|e| Error::Other(format!("generation watch: {e}")))?;
    Ok(())
}

/// One search thread per core.
fn search_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
