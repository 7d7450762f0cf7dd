//! The scatter-gather front-end (root): `searcher frontend --config FILE [--listen ADDR]`.
//!
//! Stateless beyond caches: the shard list and document counts come from the manifests in
//! the shard store, the placement from the cluster file, everything else (health, pids,
//! term statistics) from the nodes — so several front-ends can serve one cluster and a
//! restarted one needs no recovery.
//!
//! - [`root`]: parse, global statistics, query phase, then [`merge`] (pure, shared with
//!   the in-process sharded baseline) and [`fetch`]: the fetch phase;
//! - [`scatter`]: one request per node, retries on another replica, hedging, deadline;
//! - [`replica`]: placement- and load-aware choice of replicas; [`policy`]: hedge budget;
//! - [`nodes`]: each node behind the [`nodes::NodeTransport`] seam, its one latency
//!   estimate and its health (evidence-based, with hysteresis and probation);
//!   [`health`]: ejection recovery through background probes;
//! - `failover_tests`: the failover core against scripted nodes under a paused clock;
//! - [`stats_cache`]: cached global BM25 statistics; [`api`]: HTTP routes; [`metrics`].

pub mod api;
#[cfg(test)]
mod failover_tests;
pub mod fetch;
pub mod health;
pub mod merge;
pub mod metrics;
pub mod nodes;
pub mod policy;
pub mod replica;
pub mod root;
pub mod scatter;
pub mod stats_cache;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};
use crate::placement::Placement;
use metrics::Metrics;
use nodes::NodeHandle;
use policy::HedgeBudget;
use replica::ReplicaSet;
use root::Root;
use scatter::Fanout;
use shard_proto::ShardId;

/// Flags of `searcher frontend`.
#[derive(Debug, clap::Args)]
pub struct FrontendArgs {
    /// The cluster file.
    #[arg(long)]
    pub config: PathBuf,
    /// Address to serve the public API on (default: `[frontend] listen` of the file).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Runs the front-end until SIGTERM or Ctrl-C.
pub fn run_cli(args: FrontendArgs) -> anyhow::Result<()> {
    let config = ClusterConfig::load(&args.config)?;
    let addr = args.listen.unwrap_or(config.frontend.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        tracing::info!(%addr, "front-end listening");
        run(config, listener, crate::shutdown::signal()).await?;
        tracing::info!("front-end stopped");
        Ok(())
    })
}

/// Serves the public API on `listener` until `shutdown` completes, then drains in-flight
/// requests.
pub async fn run(
    config: ClusterConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let frontend = Frontend::new(&config)?;
    axum::serve(listener, frontend.router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Other(format!("front-end server: {e}")))
}

/// A front-end's state and its background probers (stopped when dropped).
pub struct Frontend {
    pub state: Arc<api::AppState>,
    probers: Vec<tokio::task::JoinHandle<()>>,
}

impl Frontend {
    /// Reads the shard table, derives the placement and starts probing the nodes. Must be
    /// called within a tokio runtime.
    pub fn new(config: &ClusterConfig) -> Result<Self> {
        let shard_docs = read_shard_table(config)?;
        let placement = Placement::for_cluster(config, shard_docs.keys().copied());
        let metrics = Arc::new(Metrics::new());
        let nodes: Vec<Arc<NodeHandle>> = config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Arc::new(NodeHandle::new(i, node, &config.timeouts, &metrics)))
            .collect();
        let probers = health::spawn_probers(
            &nodes,
            config.timeouts.probe_interval(),
            config.timeouts.attempt(),
        );
        let fanout = Fanout {
            replicas: ReplicaSet::new(nodes, &placement),
            metrics: Arc::clone(&metrics),
            hedge_budget: HedgeBudget::default(),
            attempt_timeout: config.timeouts.attempt(),
        };
        let root = Root::new(
            fanout,
            shard_docs,
            config.timeouts.deadline(),
            config.frontend.search_type,
        )
        .with_limits(config.limits.clone());
        Ok(Frontend {
            state: Arc::new(api::AppState { root, metrics }),
            probers,
        })
    }

    /// The public API.
    pub fn router(&self) -> axum::Router {
        api::router(Arc::clone(&self.state))
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        for prober in &self.probers {
            prober.abort();
        }
    }
}

/// Shard → document count, from the manifests of the shard store. An unreadable manifest
/// is logged and its shard left out (it cannot be served either).
fn read_shard_table(config: &ClusterConfig) -> Result<BTreeMap<ShardId, u64>> {
    let mut shard_docs = BTreeMap::new();
    for manifest in config.shard_manifests()? {
        match manifest {
            Ok(m) => {
                shard_docs.insert(m.shard, m.docs);
            }
            Err(bad) => tracing::warn!(shard = %bad.shard, reason = %bad.reason, "skipping shard"),
        }
    }
    if shard_docs.is_empty() {
        tracing::warn!(store = %config.shard_store.display(), "no shards in the shard store");
    }
    Ok(shard_docs)
}
