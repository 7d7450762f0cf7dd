//! The faults the drill injects, and how each one is healed.
//!
//! A fault is a short script over the cluster's processes: inject at `--at`, wait
//! `--heal-after`, heal, then wait until the front-end reports every target serving again.
//! Every injected harm is registered with a [`Healer`] first, so whatever way the drill
//! ends (done, error, Ctrl-C dropping this future) stopped nodes get SIGCONT, killed ones
//! are started again and partitions are removed: the drill leaves the cluster as it found
//! it.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::cluster_procs::{self, Monitor};
use super::partition::Partition;
use super::restore::{RestoreWatch, Restored};
use super::switch::SwitchTimes;
use crate::proc_stats::parent_pid;
use crate::supervisor::{signal, wait_gone, Signal};

/// How long a node may take to serve again after it was healed or started.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERMed node may take to drain before it is SIGKILLed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds of failure a drill can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL one node; start it again after --heal-after.
    Kill,
    /// SIGSTOP one node (hung, still holding its connections); SIGCONT after --heal-after.
    Stop,
    /// SIGTERM one node (graceful drain) and start it again at once.
    Restart,
    /// SIGKILL every replica of one shard; start them again after --heal-after.
    KillShard,
    /// Each node in turn: SIGTERM, start again, wait until it serves again.
    RollingRestart,
    /// Drop all traffic to and from one node's RPC port; remove after --heal-after.
    Partition,
    /// Switch the store's live index generation to --generation; back after --heal-after.
    Switch,
}

impl Fault {
    /// The name on the command line (`kill-shard`...).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "stop",
            Fault::Restart => "restart",
            Fault::KillShard => "kill-shard",
            Fault::RollingRestart => "rolling-restart",
            Fault::Partition => "partition",
            Fault::Switch => "switch",
        }
    }

    /// Whether `--heal-after` means anything for this fault.
    pub fn uses_heal_after(self) -> bool {
        !matches!(self, Fault::Restart | Fault::RollingRestart)
    }
}

/// A node the fault acts on, with what the monitor saw of it.
#[derive(Clone, Debug)]
pub struct TargetOutcome {
    pub node: String,
    pub pid_before: Option<u32>,
    pub injected_at: Option<Instant>,
    pub healed_at: Option<Instant>,
    /// First time the front-end reported it `down` after the fault was injected.
    pub ejected_at: Option<Instant>,
    /// When the front-end reported it `up` again (with its new pid if restarted).
    pub serving_at: Option<Instant>,
}

impl TargetOutcome {
    fn new(node: &str, pid_before: Option<u32>) -> Self {
        TargetOutcome {
            node: node.to_string(),
            pid_before,
            injected_at: None,
            healed_at: None,
            ejected_at: None,
            serving_at: None,
        }
    }
}

/// What a fault script needs: where to restart nodes from, the monitor, the event printer.
pub struct FaultContext {
    /// The `searcher` binary nodes are started again from.
    pub searcher: PathBuf,
    pub config: PathBuf,
    pub log_dir: PathBuf,
    pub monitor: Monitor,
    /// Prints one event line of the timeline.
    pub event: Box<dyn Fn(Instant, String) + Send + Sync>,
    /// The `switch` fault: the generation to switch to, the store and the front-end.
    pub switch: Option<(
        String,
        shard_proto::store::ShardStore,
        super::cluster_procs::Frontend,
    )>,
    /// `--no-restart`: killed nodes stay down, and the drill watches the cluster restore
    /// every shard's copies without them.
    pub restore: Option<RestoreWatch>,
}

/// Harms not yet undone; undone on drop.
pub struct Healer {
    stopped: Vec<u32>,
    /// Nodes killed and not started again, with the process that had started each.
    killed: Vec<(String, Option<u32>)>,
    /// The process that started each node before this drill touched it.
    owners: std::collections::HashMap<String, Option<u32>>,
    partitions: Vec<Partition>,
    searcher: PathBuf,
    config: PathBuf,
    log_dir: PathBuf,
    /// Nodes this drill started; kept so their handles outlive the script (never killed).
    started: Vec<Child>,
}

impl Healer {
    pub fn new(searcher: &Path, config: &Path, log_dir: &Path) -> Self {
        Healer {
            searcher: searcher.to_path_buf(),
            stopped: Vec::new(),
            killed: Vec::new(),
            owners: std::collections::HashMap::new(),
            partitions: Vec::new(),
            config: config.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            started: Vec::new(),
        }
    }

    /// Records that `node` (process `pid`) is being killed: it will be started again,
    /// owned by the process that had started it.
    fn killing(&mut self, node: &str, pid: u32) {
        // A node this drill already started again is its keeper's child: its owner is the
        // one recorded the first time. A node an earlier drill started again is a keeper's
        // child too: its owner is the keeper's owner (the keeper exits with the node).
        let owner = *self.owners.entry(node.to_string()).or_insert_with(|| {
            let parent = parent_pid(pid).filter(|&p| p > 1 && p != std::process::id())?;
            Some(crate::keep::keeper_owner(parent).unwrap_or(parent))
        });
        self.killed.push((node.to_string(), owner));
    }

    fn start(&mut self, node: &str) -> anyhow::Result<u32> {
        let owner = self.owner_of(node);
        let (child, _log) =
            cluster_procs::start_node(&self.searcher, &self.config, node, &self.log_dir, owner)?;
        let pid = child.id();
        self.started.push(child);
        self.killed.retain(|(n, _)| n != node);
        Ok(pid)
    }

    /// The process the restarted node's life is bound to: the one that had started it,
    /// unless that one is gone too (a shell that ended with its node): then none, or the
    /// node would be stopped as soon as it starts.
    fn owner_of(&self, node: &str) -> Option<u32> {
        self.killed
            .iter()
            .find(|(n, _)| n == node)
            .and_then(|(_, owner)| *owner)
            .filter(|&owner| !crate::proc_stats::process_gone(owner))
    }
}

impl Drop for Healer {
    fn drop(&mut self) {
        for pid in std::mem::take(&mut self.stopped) {
            let _ = signal(pid, Signal::SIGCONT);
        }
        self.partitions.clear(); // each Partition removes its filter on drop
        for (node, owner) in std::mem::take(&mut self.killed) {
            let owner = owner.filter(|&owner| !crate::proc_stats::process_gone(owner));
            let started = cluster_procs::start_node(
                &self.searcher,
                &self.config,
                &node,
                &self.log_dir,
                owner,
            );
            match started {
                Ok((child, log)) => {
                    eprintln!(
                        "drill: started node {node} again (pid {}, log {})",
                        child.id(),
                        log.display()
                    );
                }
                Err(err) => eprintln!("drill: cannot start node {node} again: {err:#}"),
            }
        }
    }
}

/// What a fault script measured.
pub struct FaultResult {
    /// One per target node (none for `switch`).
    pub outcomes: Vec<TargetOutcome>,
    /// `--no-restart`: the restore of every shard's copies.
    pub restored: Option<Restored>,
    /// `switch`: both switches, timed.
    pub switched: Option<SwitchTimes>,
}

/// Runs the fault script: waits until `inject_at`, injects, heals after `heal_after`, and
/// waits until every target serves again (or, with `--no-restart`, until the cluster has
/// restored every shard's copies without them).
pub async fn run_fault(
    fault: Fault,
    targets: Vec<(String, Option<u32>, u16)>,
    inject_at: Instant,
    heal_after: Duration,
    ctx: &FaultContext,
) -> anyhow::Result<FaultResult> {
    let mut healer = Healer::new(&ctx.searcher, &ctx.config, &ctx.log_dir);
    let mut outcomes: Vec<TargetOutcome> = targets
        .iter()
        .map(|(node, pid, _)| TargetOutcome::new(node, *pid))
        .collect();
    let (mut restored, mut switched) = (None, None);
    tokio::time::sleep_until(inject_at.into()).await;
    match (fault, &ctx.restore) {
        (Fault::Kill | Fault::KillShard, Some(watch)) => {
            // The copies before the loss: new copies are counted against them.
            let before = watch.before().await?;
            let since = Instant::now();
            for (outcome, (_, _, port)) in outcomes.iter_mut().zip(&targets) {
                inject(fault, outcome, *port, &mut healer, ctx)?;
            }
            let lost: Vec<String> = outcomes.iter().map(|o| o.node.clone()).collect();
            let restore = watch.wait(&before, &lost, since, &*ctx.event).await;
            for outcome in &mut outcomes {
                outcome.healed_at = restore.at;
            }
            restored = Some(restore);
        }
        (Fault::Switch, _) => {
            let (to, store, frontend) = ctx.switch.as_ref().context("switch needs --generation")?;
            let times = super::switch::run(store.clone(), to, heal_after, frontend, &*ctx.event);
            switched = Some(times.await?);
        }
        (Fault::Restart | Fault::RollingRestart, _) => {
            for outcome in &mut outcomes {
                restart_one(outcome, &mut healer, ctx).await?;
            }
        }
        (Fault::Kill | Fault::KillShard | Fault::Stop | Fault::Partition, _) => {
            for (outcome, (_, _, port)) in outcomes.iter_mut().zip(&targets) {
                inject(fault, outcome, *port, &mut healer, ctx)?;
            }
            tokio::time::sleep(heal_after).await;
            for outcome in &mut outcomes {
                heal(fault, outcome, &mut healer, ctx).await?;
            }
            for outcome in &mut outcomes {
                let pid_must_change = matches!(fault, Fault::Kill | Fault::KillShard);
                wait_serving(outcome, pid_must_change, ctx).await;
            }
        }
    }
    for outcome in &mut outcomes {
        if let Some(injected) = outcome.injected_at {
            let monitor = &ctx.monitor;
            let already_down = monitor.state_at(&outcome.node, injected).as_deref() == Some("down");
            outcome.ejected_at = if already_down {
                Some(injected)
            } else {
                monitor.first_seen(&outcome.node, "down", injected, None)
            };
        }
    }
    Ok(FaultResult {
        outcomes,
        restored,
        switched,
    })
}

fn pid_of(outcome: &TargetOutcome) -> anyhow::Result<u32> {
    outcome.pid_before.with_context(|| {
        format!(
            "the front-end reports no pid for node {}: cannot signal it",
            outcome.node
        )
    })
}

fn inject(
    fault: Fault,
    outcome: &mut TargetOutcome,
    port: u16,
    healer: &mut Healer,
    ctx: &FaultContext,
) -> anyhow::Result<()> {
    let node = outcome.node.clone();
    match fault {
        Fault::Kill | Fault::KillShard => {
            let pid = pid_of(outcome)?;
            // A permanent loss is not undone: the node stays down after the drill.
            let permanent = ctx.restore.is_some();
            if !permanent {
                healer.killing(&node, pid);
            }
            signal(pid, Signal::SIGKILL)?;
            let note = if permanent { ", for good" } else { "" };
            (ctx.event)(
                Instant::now(),
                format!("SIGKILL node {node} (pid {pid}){note}"),
            );
        }
        Fault::Stop => {
            let pid = pid_of(outcome)?;
            signal(pid, Signal::SIGSTOP)?;
            healer.stopped.push(pid);
            (ctx.event)(Instant::now(), format!("SIGSTOP node {node} (pid {pid})"));
        }
        Fault::Partition => {
            healer.partitions.push(Partition::install(port)?);
            (ctx.event)(
                Instant::now(),
                format!("partition node {node}: dropping loopback packets of port {port}"),
            );
        }
        Fault::Restart | Fault::RollingRestart | Fault::Switch => {
            unreachable!("restarts and switches are one step")
        }
    }
    outcome.injected_at = Some(Instant::now());
    Ok(())
}

async fn heal(
    fault: Fault,
    outcome: &mut TargetOutcome,
    healer: &mut Healer,
    ctx: &FaultContext,
) -> anyhow::Result<()> {
    let node = outcome.node.clone();
    match fault {
        Fault::Kill | Fault::KillShard => {
            let old = pid_of(outcome)?;
            if !wait_gone(old, DRAIN_TIMEOUT).await {
                bail!("node {node} (pid {old}) is still running after SIGKILL");
            }
            let pid = healer.start(&node)?;
            (ctx.event)(
                Instant::now(),
                format!("started node {node} again (pid {pid})"),
            );
        }
        Fault::Stop => {
            let pid = pid_of(outcome)?;
            signal(pid, Signal::SIGCONT)?;
            healer.stopped.retain(|p| *p != pid);
            (ctx.event)(Instant::now(), format!("SIGCONT node {node} (pid {pid})"));
        }
        Fault::Partition => {
            for mut partition in healer.partitions.drain(..) {
                partition.heal()?;
            }
            (ctx.event)(Instant::now(), format!("partition of node {node} removed"));
        }
        Fault::Restart | Fault::RollingRestart | Fault::Switch => {
            unreachable!("restarts and switches are one step")
        }
    }
    outcome.healed_at = Some(Instant::now());
    Ok(())
}

/// SIGTERM (graceful drain), wait for exit, start again, wait until serving.
async fn restart_one(
    outcome: &mut TargetOutcome,
    healer: &mut Healer,
    ctx: &FaultContext,
) -> anyhow::Result<()> {
    let node = outcome.node.clone();
    // In a rolling restart the pid may have been learnt long before: read it again.
    let pid = match ctx.monitor.latest(&node) {
        Some((_, Some(pid))) => pid,
        _ => pid_of(outcome)?,
    };
    outcome.pid_before = Some(pid);
    healer.killing(&node, pid);
    signal(pid, Signal::SIGTERM)?;
    outcome.injected_at = Some(Instant::now());
    (ctx.event)(Instant::now(), format!("SIGTERM node {node} (pid {pid})"));
    if !wait_gone(pid, DRAIN_TIMEOUT).await {
        (ctx.event)(
            Instant::now(),
            format!("node {node} did not exit {DRAIN_TIMEOUT:?} after SIGTERM: SIGKILL"),
        );
        signal(pid, Signal::SIGKILL)?;
        wait_gone(pid, DRAIN_TIMEOUT).await;
    }
    let new_pid = healer.start(&node)?;
    outcome.healed_at = Some(Instant::now());
    (ctx.event)(
        Instant::now(),
        format!("node {node} exited; started again (pid {new_pid})"),
    );
    wait_serving(outcome, true, ctx).await;
    Ok(())
}

async fn wait_serving(outcome: &mut TargetOutcome, pid_must_change: bool, ctx: &FaultContext) {
    let since = outcome.healed_at.unwrap_or_else(Instant::now);
    let old_pid = if pid_must_change {
        outcome.pid_before
    } else {
        None
    };
    outcome.serving_at = ctx
        .monitor
        .wait_up(&outcome.node, since, old_pid, REJOIN_TIMEOUT)
        .await;
    match outcome.serving_at {
        Some(at) => (ctx.event)(at, format!("node {} serving again", outcome.node)),
        None => (ctx.event)(
            Instant::now(),
            format!(
                "node {} NOT serving {REJOIN_TIMEOUT:?} after it was healed",
                outcome.node
            ),
        ),
    }
}
