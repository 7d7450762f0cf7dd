//! `wikisearch drill`: steady load against a running cluster's front-end, one injected
//! fault, its heal, and a report of what users saw.
//!
//! The load comes from the bench's load generator ([`crate::bench::loadgen`]), on a thread
//! of its own, whose per-second rows are printed live; the fault script
//! ([`faults`]) acts on the nodes through its [`hands`]: the node processes of this
//! machine whose pids the front-end reports in `GET /cluster`, or with `--compose PROJECT`
//! the containers of a Compose project (container faults instead of signals); a monitor
//! ([`cluster_procs::Monitor`]) polls `/cluster` to time ejection and rejoin; [`summary`]
//! puts it together. Ctrl-C (or SIGTERM) stops the load and heals the fault before exiting.
//!
//! Everything the drill learns comes from the cluster file and the front-end's public API
//! (shards, their holders, documents and bytes included), so it works on a cluster started
//! by `wikisearch demo`, by hand, or by `docker compose up`.

pub mod cluster_procs;
pub mod faults;
pub mod hands;
pub mod partition;
pub mod restore;
pub mod summary;
pub mod switch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::bench::loadgen::{self, LoadMode, LoadSpec};
use crate::bench::queries::{self, BenchQuery};
use crate::bench::report::LoadReport;
use crate::binaries::Binaries;
use crate::proc_stats::process_gone;
use cluster_procs::{Frontend, Monitor};
use faults::{Fault, FaultContext};
use hands::compose::ComposeHands;
use hands::local::{LocalHands, LocalSetup};
use hands::Hands;
use searcher::cluster::ClusterConfig;
use searcher::model::{ClusterView, NodeHealth};
use summary::{Inputs, Printer, Probe, Summary};

/// Default query file, relative to the workspace root (where a user runs the drill).
const DEFAULT_QUERIES: &str = "../shared/bench/queries-aol.jsonl";

/// Flags of `wikisearch drill`.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The cluster file of the running cluster.
    #[arg(long)]
    pub config: PathBuf,
    /// What to break.
    #[arg(long, value_enum)]
    pub fault: Fault,
    /// The coordinator to load and watch, `http://host:port` (default: the cluster file's
    /// front-end); any node with an `http` address, or a `[[coordinator]]`, will do.
    #[arg(long)]
    pub url: Option<String>,
    /// The nodes are the containers of this Compose project (the prefix of its container
    /// names: `compose` for deploy/compose/), one service per node id: faults are `docker
    /// kill`, `pause`, `network disconnect` and `stop` instead of signals to processes.
    #[arg(long)]
    pub compose: Option<String>,
    /// The node to break (kill, stop, restart, partition); default: the first in the file.
    #[arg(long, conflicts_with = "shard")]
    pub node: Option<String>,
    /// The shard whose every replica is killed (kill-shard); default: the first shard.
    #[arg(long)]
    pub shard: Option<String>,
    /// The index generation to switch to (switch; built with `indexer build --generation`).
    #[arg(long)]
    pub generation: Option<String>,
    /// kill, kill-shard: a permanent loss. The nodes stay down (also after the drill), and
    /// the drill times how long the cluster takes to restore every shard to R serving
    /// copies without them, and the bytes it moved.
    #[arg(long)]
    pub no_restart: bool,
    /// Seconds of load before the fault is injected.
    #[arg(long, default_value_t = 5.0)]
    pub at: f64,
    /// Seconds the fault lasts before it is healed (kill, stop, kill-shard, partition).
    #[arg(long, default_value_t = 10.0)]
    pub heal_after: f64,
    /// Seconds of load in all.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Open-loop load: requests per second (default 200 when --concurrency is not given).
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed-loop load: workers each with one request in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Benchmark queries (JSON lines or plain text); default ../shared/bench/queries-aol.jsonl.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// JSON lines (rows, events, then the summary) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the drill; Ctrl-C or SIGTERM heal the fault and stop.
pub fn run_cli(args: DrillArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the drill's runtime")?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = run(args) => result,
            // Dropping `run` drops the fault script's healer: the fault is undone here.
            _ = searcher::shutdown::signal() => bail!("interrupted: the fault was healed, load stopped"),
        }
    });
    // The load thread and restarted nodes are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}

/// Everything resolved before the load starts.
struct Plan {
    config_path: PathBuf,
    config: ClusterConfig,
    frontend: Frontend,
    /// (node id, pid, rpc port) of each target.
    targets: Vec<(String, Option<u32>, u16)>,
    shard: Option<String>,
    expected_coverage: Option<f64>,
    queries: Vec<BenchQuery>,
    mode: LoadMode,
}

/// The drill itself: plan, load + monitor + fault script, summary.
pub async fn run(args: DrillArgs) -> anyhow::Result<()> {
    let plan = plan(&args).await?;
    let t0 = Instant::now();
    let printer = Arc::new(Printer::new(args.json, t0));
    printer.header(&describe(&args, &plan));

    let monitor_printer = printer.clone();
    let (monitor, monitor_task) = Monitor::start(plan.frontend.clone(), move |t| {
        // The last error is the cause only of an ejection (a node turns suspect on slow
        // answers too, and keeps its last error from long before).
        let error = match (t.to.as_str(), t.last_error.as_deref()) {
            ("down", Some(e)) => format!(" ({e})"),
            _ => String::new(),
        };
        monitor_printer.event(
            t.at,
            format!("/cluster: node {} {} → {}{error}", t.node, t.from, t.to),
        );
    });
    let mut hands = hands_for(&args, &plan, &monitor).await?;
    let load = start_load(&args, &plan, printer.clone())?;

    let fault_printer = printer.clone();
    let ctx = FaultContext {
        monitor: monitor.clone(),
        event: Box::new(move |at, text| fault_printer.event(at, text)),
        switch: args
            .generation
            .as_ref()
            .map(|id| (id.clone(), plan.frontend.clone())),
        restore: args.no_restart.then(|| restore::RestoreWatch {
            frontend: plan.frontend.clone(),
            replication: plan.config.replication,
        }),
    };
    let inject_at = t0 + secs(args.at);
    let heal_after = secs(args.heal_after);
    let probes = probe_during(&plan, &printer, inject_at, heal_after, args.fault);
    let targets: Vec<String> = plan.targets.iter().map(|t| t.0.clone()).collect();
    let (outcomes, probes) = tokio::join!(
        faults::run_fault(args.fault, &targets, inject_at, heal_after, &mut hands, &ctx),
        probes
    );
    let faults::FaultResult {
        outcomes,
        restored,
        switched,
    } = outcomes?;
    let report = load.finish().await?;
    monitor_task.abort();

    let summary = Summary::build(Inputs {
        fault: args.fault,
        shard: plan.shard.clone(),
        report: &report,
        outcomes: &outcomes,
        printer: &printer,
        deadline_ms: plan.config.timeouts.deadline_ms,
        expected_coverage: plan.expected_coverage,
        probes,
        cluster_poll_errors: monitor.poll_errors(),
        restored,
        switched,
    });
    summary.print(args.json);
    Ok(())
}

/// The drill's hands: the Compose project's containers, or this machine's processes.
async fn hands_for(args: &DrillArgs, plan: &Plan, monitor: &Monitor) -> anyhow::Result<Hands> {
    if let Some(project) = &args.compose {
        // Every node, so a generation command can run in any one still running.
        let nodes: Vec<String> = plan.config.nodes.iter().map(|n| n.id.clone()).collect();
        let store = plan.config.shard_store.to_string();
        return Ok(Hands::Compose(
            ComposeHands::new(project, &nodes, &store).await?,
        ));
    }
    let store = match args.fault {
        Fault::Switch => Some(plan.config.open_store()?),
        _ => None,
    };
    let setup = LocalSetup {
        searcher: Binaries::locate()?.searcher,
        config: plan.config_path.clone(),
        log_dir: log_dir(&plan.config_path),
        targets: plan.targets.clone(),
        store,
    };
    Ok(Hands::Local(LocalHands::new(setup, monitor.clone())))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn log_dir(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("drill-logs")
}

fn describe(args: &DrillArgs, plan: &Plan) -> String {
    let targets: Vec<&str> = plan.targets.iter().map(|t| t.0.as_str()).collect();
    let load = match plan.mode {
        LoadMode::Open { rate } => format!("{rate} req/s (open loop)"),
        LoadMode::Closed { concurrency } => format!("concurrency {concurrency} (closed loop)"),
    };
    let heal = if args.no_restart {
        ", never started again".to_string()
    } else if args.fault.uses_heal_after() {
        format!(", healed after {} s", args.heal_after)
    } else {
        String::new()
    };
    let shard = plan
        .shard
        .as_ref()
        .map(|s| format!(" (shard {s})"))
        .unwrap_or_default();
    let hosts = match &args.compose {
        Some(project) => format!(" (containers of Compose project {project})"),
        None => String::new(),
    };
    let what = match targets.is_empty() {
        true => format!("{} of the store's alias{hosts}", args.fault.name()),
        false => format!(
            "{} of node(s) {}{hosts}{shard}",
            args.fault.name(),
            targets.join(", ")
        ),
    };
    format!(
        "drill: {what} at {} s{heal}; {} s of load at {load} against {}",
        args.at,
        args.duration,
        plan.frontend.base()
    )
}

async fn plan(args: &DrillArgs) -> anyhow::Result<Plan> {
    validate_args(args)?;
    let config = ClusterConfig::load(&args.config)?;
    let config_path = std::path::absolute(&args.config)
        .with_context(|| format!("cannot resolve {}", args.config.display()))?;
    if args.fault == Fault::Partition && args.compose.is_none() {
        partition::check_permitted()?;
    }
    let frontend = Frontend::new(match &args.url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => frontend_url(&config)?,
    });
    let (shard, expected_coverage, node_ids) =
        resolve_targets(args, &config, &answering(&frontend).await?)?;
    let cluster = targets_up(&frontend, &node_ids).await?;
    let mut targets = Vec::new();
    for id in node_ids {
        let seen = cluster
            .node(&id)
            .with_context(|| format!("the front-end does not report node {id}"))?;
        if seen.state != NodeHealth::Up {
            bail!(
                "node {id} is {}, not up after {TARGETS_UP_WAIT:?}: heal the cluster before \
                 drilling",
                seen.state.as_str()
            );
        }
        // In a container the pid is the container's own (1): nothing to check.
        if args.compose.is_none() {
            let pid = seen
                .pid
                .with_context(|| format!("the front-end reports no pid for node {id}"))?;
            if process_gone(pid) {
                bail!(
                    "node {id} has pid {pid}, which is not a process on this machine (a \
                     Compose cluster? pass --compose PROJECT)"
                );
            }
        }
        targets.push((id.clone(), seen.pid, config.node(&id)?.rpc.port()));
    }
    for node in cluster.nodes.iter().filter(|n| n.state != NodeHealth::Up) {
        eprintln!(
            "drill: warning: node {} is {} before the drill",
            node.id,
            node.state.as_str()
        );
    }
    let queries = load_queries(args)?;
    let mode = match (args.rate, args.concurrency) {
        (_, Some(concurrency)) => LoadMode::Closed { concurrency },
        (Some(rate), None) => LoadMode::Open { rate },
        (None, None) => LoadMode::Open { rate: 200.0 },
    };
    Ok(Plan {
        config_path,
        config,
        frontend,
        targets,
        shard,
        expected_coverage,
        queries,
        mode,
    })
}

/// `http://` + the cluster file's front-end address (loopback for a wildcard).
fn frontend_url(config: &ClusterConfig) -> anyhow::Result<String> {
    let listen = config.frontend.listen;
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let addr = std::net::SocketAddr::new(host.parse()?, listen.port());
    Ok(format!("http://{addr}"))
}

/// How long the drill waits for its target nodes to be `up` before it starts (a node can
/// be `suspect` for a few seconds after a latency shift, e.g. right after an earlier drill).
const TARGETS_UP_WAIT: Duration = Duration::from_secs(30);

/// The front-end's view of the cluster, or an error saying to start it.
async fn answering(frontend: &Frontend) -> anyhow::Result<ClusterView> {
    frontend.cluster().await.with_context(|| {
        format!(
            "the front-end at {} does not answer: start the cluster first (wikisearch \
             demo, searcher node + searcher frontend with this cluster file, or docker \
             compose up)",
            frontend.base()
        )
    })
}

/// The front-end's view once every one of `ids` is up, or after [`TARGETS_UP_WAIT`].
async fn targets_up(frontend: &Frontend, ids: &[String]) -> anyhow::Result<ClusterView> {
    let started = Instant::now();
    loop {
        let cluster = answering(frontend).await?;
        let up = |id: &String| cluster.node(id).is_some_and(|n| n.state == NodeHealth::Up);
        if ids.iter().all(up) || started.elapsed() > TARGETS_UP_WAIT {
            return Ok(cluster);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn validate_args(args: &DrillArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.url {
        if !url.starts_with("http://") {
            bail!("--url must be http://host:port, not {url:?}");
        }
    }
    for (name, value) in [
        ("--at", args.at),
        ("--heal-after", args.heal_after),
        ("--duration", args.duration),
    ] {
        if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
            bail!("{name} must be a number of seconds between 0 and 86400, not {value}");
        }
    }
    if args.duration <= args.at {
        bail!(
            "--duration ({} s) must be longer than --at ({} s)",
            args.duration,
            args.at
        );
    }
    match args.fault {
        Fault::KillShard if args.node.is_some() => bail!("kill-shard takes --shard, not --node"),
        Fault::RollingRestart if args.node.is_some() => {
            bail!("rolling-restart restarts every node: --node does not apply")
        }
        Fault::KillShard => {}
        Fault::Switch if args.generation.is_none() => bail!("switch needs --generation ID"),
        Fault::Switch if args.node.is_some() => {
            bail!("switch acts on the store: --node does not apply")
        }
        _ if args.generation.is_some() && args.fault != Fault::Switch => {
            bail!("--generation only applies to switch")
        }
        _ if args.shard.is_some() => bail!("--shard only applies to kill-shard"),
        _ if args.no_restart && !matches!(args.fault, Fault::Kill) => {
            bail!("--no-restart only applies to kill and kill-shard")
        }
        _ => {}
    }
    let needed = args.at
        + if args.fault.uses_heal_after() && !args.no_restart {
            args.heal_after
        } else {
            0.0
        }
        + 5.0;
    if args.duration < needed {
        eprintln!(
            "drill: warning: --duration {} s leaves little or no load after the heal; \
             {needed} s or more shows the recovery",
            args.duration
        );
    }
    Ok(())
}

/// The target node ids, and for kill-shard the shard and the coverage answers should show
/// (from the front-end's view: each shard's documents and the nodes the placement puts it
/// on).
fn resolve_targets(
    args: &DrillArgs,
    config: &ClusterConfig,
    cluster: &ClusterView,
) -> anyhow::Result<(Option<String>, Option<f64>, Vec<String>)> {
    match args.fault {
        Fault::Switch => Ok((None, None, Vec::new())),
        Fault::RollingRestart => Ok((
            None,
            None,
            config.nodes.iter().map(|n| n.id.clone()).collect(),
        )),
        Fault::KillShard => {
            let shard = match &args.shard {
                Some(text) => text
                    .parse::<shard_proto::ShardId>()
                    .map_err(|e| anyhow::anyhow!("--shard: {e}"))?
                    .to_string(),
                None => cluster
                    .shards
                    .first()
                    .map(|s| s.id.clone())
                    .context("the front-end reports no shards")?,
            };
            let holders = cluster
                .shards
                .iter()
                .find(|s| s.id == shard)
                .with_context(|| format!("the front-end reports no shard {shard}"))?
                .target
                .clone();
            // Other shards placed on the very same nodes go down with it.
            let lost: u64 = cluster
                .shards
                .iter()
                .filter(|s| s.target.iter().all(|n| holders.contains(n)))
                .map(|s| s.docs)
                .sum();
            let total: u64 = cluster.shards.iter().map(|s| s.docs).sum();
            let coverage = (total > 0).then(|| 1.0 - lost as f64 / total as f64);
            Ok((Some(shard), coverage, holders))
        }
        _ => {
            let node = match &args.node {
                Some(id) => config.node(id)?.id.clone(),
                None => config.nodes[0].id.clone(),
            };
            Ok((None, None, vec![node]))
        }
    }
}

fn load_queries(args: &DrillArgs) -> anyhow::Result<Vec<BenchQuery>> {
    let path = args
        .queries
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_QUERIES));
    if args.queries.is_none() && !path.exists() {
        bail!("no --queries given and {DEFAULT_QUERIES} does not exist here: pass --queries FILE");
    }
    Ok(queries::load(&path)?)
}

/// The load generator on a thread of its own; stopped early if the drill is dropped.
struct RunningLoad {
    report: tokio::sync::oneshot::Receiver<crate::Result<LoadReport>>,
    stop: StopOnDrop,
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl RunningLoad {
    async fn finish(self) -> anyhow::Result<LoadReport> {
        let report = self
            .report
            .await
            .context("the load generator thread died")?;
        drop(self.stop);
        Ok(report?)
    }
}

fn start_load(args: &DrillArgs, plan: &Plan, printer: Arc<Printer>) -> anyhow::Result<RunningLoad> {
    let mut spec = LoadSpec::new(
        plan.frontend.base(),
        plan.queries.clone(),
        plan.mode,
        secs(args.duration),
    );
    spec.timeline = true;
    spec.request_timeout = Duration::from_millis(plan.config.timeouts.deadline_ms.max(1_000) * 3);
    spec.on_row = Some(Box::new(move |row| printer.row(row)));
    let stop = Arc::new(AtomicBool::new(false));
    spec.stop = Some(stop.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("drill-load".into())
        .spawn(move || {
            let _ = tx.send(loadgen::run_blocking(spec));
        })
        .context("cannot start the load generator thread")?;
    Ok(RunningLoad {
        report: rx,
        stop: StopOnDrop(stop),
    })
}

/// Samples what a user sees: one search a second into the fault (for kill-shard, also with
/// `allow_partial=false`), and one after the fault is expected to be healed.
async fn probe_during(
    plan: &Plan,
    printer: &Printer,
    inject_at: Instant,
    heal_after: Duration,
    fault: Fault,
) -> Vec<Probe> {
    let query = loadgen::percent_encode(&plan.queries[0].text);
    let mut urls = vec![format!("/search?q={query}&size=10")];
    if fault == Fault::KillShard {
        urls.push(format!("/search?q={query}&size=10&allow_partial=false"));
    }
    let into_fault = Duration::from_secs(1)
        .min(heal_after / 2)
        .max(Duration::from_millis(300));
    tokio::time::sleep_until((inject_at + into_fault).into()).await;
    let mut probes = Vec::new();
    for url in urls {
        let at = printer.t(Instant::now());
        let probe = match plan.frontend.get_json(&url).await {
            Ok((status, body)) => Probe::from_answer(at, url, status, &body),
            Err(err) => Probe {
                t_s: at,
                url,
                error: Some(format!("{err:#}")),
                ..Probe::default()
            },
        };
        probes.push(probe);
    }
    probes
}
