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
//! - [`replica`]: placement- and load-aware choice of replicas; [`membership`]: the
//!   nodes, following the cluster file; [`policy`]: hedge budget;
//! - [`nodes`]: each node behind the [`nodes::NodeTransport`] seam, its one latency
//!   estimate and its health (evidence-based, with hysteresis and probation);
//!   [`health`]: ejection recovery through background probes;
//! - `failover_tests`: the failover core against scripted nodes under a paused clock;
//! - [`stats_cache`]: cached global BM25 statistics; [`api`]: HTTP routes; [`metrics`];
//! - [`suggest`]: title suggestions for a prefix, one more phase through the same fan-out;
//! - [`local`]: a coordinating node's own shards as one more node of the fan-out,
//!   reached in-process (`node/coordinate.rs` wires it).
//!
//! The same code serves three roles: `searcher frontend` (the public API at `[frontend]
//! listen`), a coordinator-only node (`[[coordinator]]`, `searcher node --id ID`) and a
//! shard-holding node with an `http` address, which also coordinates.

pub mod api;
#[cfg(test)]
mod failover_tests;
pub mod fetch;
pub mod generation;
pub mod health;
#[cfg(test)]
mod last_resort_tests;
pub mod local;
#[cfg(test)]
mod local_failover_tests;
pub mod membership;
pub mod merge;
pub mod metrics;
pub mod nodes;
pub mod policy;
pub mod replica;
pub mod root;
pub mod scatter;
pub mod stats_cache;
pub mod suggest;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt as _;
use parking_lot::RwLock;
use tower::ServiceExt as _;

use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};
use crate::placement::Placement;
use crate::serve::{self, DeadlineBody, ServerCounters};
use membership::Members;
use metrics::Metrics;
use nodes::NodeHandle;
use policy::HedgeBudget;
use replica::ReplicaSet;
use root::Root;
use scatter::Fanout;
use shard_proto::manifest::ShardManifest;

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
    serve_coordinator(config, addr)
}

/// Runs a coordinator-only node (a `[[coordinator]]` entry) until SIGTERM or Ctrl-C: the
/// front-end's role at the entry's public address.
pub fn run_coordinator_cli(config: ClusterConfig, id: &str) -> anyhow::Result<()> {
    let coordinator = config
        .coordinator(id)
        .ok_or_else(|| Error::UnknownNode(id.to_string()))?
        .clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let addr = runtime.block_on(crate::cluster::http_bind_addr(
        &coordinator.id,
        &coordinator.http,
        coordinator.http_listen,
    ))?;
    drop(runtime);
    serve_coordinator(config, addr)
}

/// Serves the public API on `addr` as a coordinator holding no shards.
fn serve_coordinator(config: ClusterConfig, addr: SocketAddr) -> anyhow::Result<()> {
    crate::serve::raise_fd_limit();
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
        Ok::<_, anyhow::Error>(())
    })?;
    // Connections still open after the drain are abandoned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// Serves the public API on `listener` (and `/cluster` and `/metrics` on `[frontend]
/// admin_listen` if set) until `shutdown` completes, then drains in-flight requests for at
/// most `[server] drain_ms`.
pub async fn run(
    config: ClusterConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let frontend = Frontend::new(&config)?;
    let counters = Arc::new(ServerCounters::default());
    frontend.state.metrics.register_server(&counters);
    let limits = &config.server;
    let Some(admin_addr) = config.frontend.admin_listen else {
        let app = frontend.router();
        serve::serve(listener, limits, counters, router_service(app), shutdown).await;
        return Ok(());
    };
    let admin = tokio::net::TcpListener::bind(admin_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: admin_addr,
            source,
        })?;
    tracing::info!(%admin_addr, "front-end admin routes listening");
    let shutdown = shutdown.shared();
    let public = api::routes(Arc::clone(&frontend.state), api::Routes::Public);
    let private = api::routes(Arc::clone(&frontend.state), api::Routes::Admin);
    tokio::join!(
        serve::serve(
            listener,
            limits,
            Arc::clone(&counters),
            router_service(public),
            shutdown.clone()
        ),
        serve::serve(admin, limits, counters, router_service(private), shutdown),
    );
    Ok(())
}

/// Serves every route of `frontend` on `listener` within `limits` until `shutdown`
/// completes, then drains (a coordinating node's public API).
pub async fn serve_public(
    frontend: &Frontend,
    listener: tokio::net::TcpListener,
    limits: &serve::ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let counters = Arc::new(ServerCounters::default());
    frontend.state.metrics.register_server(&counters);
    let app = router_service(frontend.router());
    serve::serve(listener, limits, counters, app, shutdown).await;
}

/// An axum router as the service [`serve::serve`] runs.
fn router_service(
    router: axum::Router,
) -> impl hyper::service::Service<
    http::Request<DeadlineBody>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync
       + 'static {
    hyper::service::service_fn(move |request: http::Request<DeadlineBody>| {
        router.clone().oneshot(request)
    })
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
        Self::build(config, None)
    }

    /// The front-end of the node `node_id`, which reaches its own shards through `local`
    /// (in-process: [`local::LocalTransport`]) and the other nodes over RPC.
    pub fn coordinating(
        config: &ClusterConfig,
        node_id: &str,
        local: Arc<dyn nodes::NodeTransport>,
    ) -> Result<Self> {
        Self::build(config, Some((node_id, local)))
    }

    fn build(
        config: &ClusterConfig,
        local: Option<(&str, Arc<dyn nodes::NodeTransport>)>,
    ) -> Result<Self> {
        let live = generation::startup_table(config, || read_shard_table(config))?;
        let shard_docs = live.shard_docs.clone();
        let placement = Placement::for_cluster(config, shard_docs.keys().copied());
        let metrics = Arc::new(Metrics::new());
        let key = config.cluster_key()?;
        let nodes: Vec<Arc<NodeHandle>> = config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let handle = match &local {
                    Some((id, transport)) if *id == node.id => {
                        let transport = Arc::clone(transport);
                        NodeHandle::with_transport(i, node, transport, &config.timeouts, &metrics)
                            .into_local()
                    }
                    _ => NodeHandle::new(i, node, &config.timeouts, &metrics, key.clone()),
                };
                Arc::new(handle)
            })
            .collect();
        let replicas = Arc::new(Members::new(ReplicaSet::new(nodes, &placement)));
        let coordinators = Arc::new(RwLock::new(membership::coordinator_views(config)));
        let maker = membership::HandleMaker {
            config: config.clone(),
            metrics: Arc::clone(&metrics),
            key,
            coordinators: Arc::clone(&coordinators),
        };
        let mut probers = vec![membership::spawn(Arc::clone(&replicas), maker)];
        let generations = Arc::new(generation::Generations::new(live, config.open_store().ok()));
        probers.extend(generation::spawn_watch(
            Arc::clone(&generations),
            Arc::clone(&replicas),
            config,
        ));
        let fanout = Fanout {
            replicas,
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
        .with_limits(config.limits.clone())
        .with_generations(generations);
        Ok(Frontend {
            state: Arc::new(api::AppState {
                root,
                metrics,
                coordinators,
            }),
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

/// The manifests of the shard store's base shards. An unreadable manifest is logged and
/// its shard left out (it cannot be served either).
fn read_shard_table(config: &ClusterConfig) -> Result<Vec<ShardManifest>> {
    let mut manifests = Vec::new();
    for manifest in config.shard_manifests()? {
        match manifest {
            Ok(m) => manifests.push(m),
            Err(bad) => tracing::warn!(shard = %bad.shard, reason = %bad.reason, "skipping shard"),
        }
    }
    if manifests.is_empty() {
        tracing::warn!(store = %config.shard_store, "no shards in the shard store");
    }
    Ok(manifests)
}
