//! The drill's hands on node processes of this machine: signals to the pids the
//! front-end reports, nodes started again from the `searcher` binary, and partitions as
//! `tc` filters on loopback ([`super::super::partition`]).
//!
//! Every injected harm is registered with the [`Healer`] first, so whatever way the drill
//! ends (done, error, Ctrl-C dropping its future) stopped nodes get SIGCONT, killed ones
//! are started again and partitions are removed: the drill leaves the cluster as it found
//! it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Instant;

use anyhow::{bail, Context};
use shard_proto::generation;
use shard_proto::store::ShardStore;

use super::super::cluster_procs::{self, Monitor};
use super::super::partition::Partition;
use super::{Done, Event, Injury, DRAIN_TIMEOUT};
use crate::proc_stats::parent_pid;
use crate::supervisor::{signal, wait_gone, Signal};

/// Node processes of this machine.
pub struct LocalHands {
    healer: Healer,
    monitor: Monitor,
    /// Each target's pid when the drill planned, and its RPC port.
    planned: BTreeMap<String, (Option<u32>, u16)>,
    /// The pid of each node killed (waited for before the node is started again).
    killed_pids: BTreeMap<String, u32>,
    /// The store whose alias the `switch` fault moves.
    store: Option<ShardStore>,
}

/// Where nodes are started again from, and what the drill planned to act on.
pub struct LocalSetup {
    pub searcher: PathBuf,
    pub config: PathBuf,
    pub log_dir: PathBuf,
    /// (node id, pid, RPC port) of each target.
    pub targets: Vec<(String, Option<u32>, u16)>,
    pub store: Option<ShardStore>,
}

impl LocalHands {
    pub fn new(setup: LocalSetup, monitor: Monitor) -> Self {
        LocalHands {
            healer: Healer::new(&setup.searcher, &setup.config, &setup.log_dir),
            monitor,
            planned: setup
                .targets
                .into_iter()
                .map(|(id, pid, port)| (id, (pid, port)))
                .collect(),
            killed_pids: BTreeMap::new(),
            store: setup.store,
        }
    }

    /// The node's pid as last reported (a rolling restart learnt it long before).
    fn pid(&self, node: &str) -> anyhow::Result<u32> {
        let planned = self.planned.get(node).and_then(|p| p.0);
        self.monitor.pid(node).or(planned).with_context(|| {
            format!("the front-end reports no pid for node {node}: cannot signal it")
        })
    }

    pub fn pid_before(&self, node: &str) -> Option<u32> {
        self.planned.get(node).and_then(|p| p.0)
    }

    pub fn inject(&mut self, injury: Injury, node: &str) -> anyhow::Result<Done> {
        let at = Instant::now();
        let line = match injury {
            Injury::Kill { permanent } => {
                let pid = self.pid(node)?;
                // A permanent loss is not undone: the node stays down after the drill.
                if !permanent {
                    self.healer.killing(node, pid);
                }
                signal(pid, Signal::SIGKILL)?;
                self.killed_pids.insert(node.to_string(), pid);
                let note = if permanent { ", for good" } else { "" };
                format!("SIGKILL node {node} (pid {pid}){note}")
            }
            Injury::Pause => {
                let pid = self.pid(node)?;
                signal(pid, Signal::SIGSTOP)?;
                self.healer.stopped.push(pid);
                format!("SIGSTOP node {node} (pid {pid})")
            }
            Injury::Partition => {
                let port = self
                    .planned
                    .get(node)
                    .map(|p| p.1)
                    .context("not a target")?;
                self.healer.partitions.push(Partition::install(port)?);
                format!("partition node {node}: dropping loopback packets of port {port}")
            }
        };
        Ok(Done { at, line })
    }

    pub async fn heal(&mut self, injury: Injury, node: &str) -> anyhow::Result<Done> {
        let mut at = Instant::now();
        let line = match injury {
            Injury::Kill { .. } => {
                let old = *self.killed_pids.get(node).context("node not killed")?;
                if !wait_gone(old, DRAIN_TIMEOUT).await {
                    bail!("node {node} (pid {old}) is still running after SIGKILL");
                }
                at = Instant::now();
                let pid = self.healer.start(node)?;
                format!("started node {node} again (pid {pid})")
            }
            Injury::Pause => {
                let pid = self.pid(node)?;
                signal(pid, Signal::SIGCONT)?;
                self.healer.stopped.retain(|p| *p != pid);
                format!("SIGCONT node {node} (pid {pid})")
            }
            Injury::Partition => {
                for mut partition in self.healer.partitions.drain(..) {
                    partition.heal()?;
                }
                format!("partition of node {node} removed")
            }
        };
        Ok(Done { at, line })
    }

    /// SIGTERM (graceful drain), SIGKILL if it does not exit in time, then start again.
    pub async fn restart(&mut self, node: &str, event: &Event<'_>) -> anyhow::Result<Instant> {
        let pid = self.pid(node)?;
        self.healer.killing(node, pid);
        signal(pid, Signal::SIGTERM)?;
        event(Instant::now(), format!("SIGTERM node {node} (pid {pid})"));
        if !wait_gone(pid, DRAIN_TIMEOUT).await {
            event(
                Instant::now(),
                format!("node {node} did not exit {DRAIN_TIMEOUT:?} after SIGTERM: SIGKILL"),
            );
            signal(pid, Signal::SIGKILL)?;
            wait_gone(pid, DRAIN_TIMEOUT).await;
        }
        let started = Instant::now();
        let new_pid = self.healer.start(node)?;
        event(
            started,
            format!("node {node} exited; started again (pid {new_pid})"),
        );
        Ok(started)
    }

    fn store(&self) -> anyhow::Result<ShardStore> {
        self.store.clone().context("switch needs --generation")
    }

    pub async fn live_generation(&self) -> anyhow::Result<String> {
        let store = self.store()?;
        blocking(move || generation::live(&store)).await
    }

    /// Moves the alias to `to`; the generation it named.
    pub async fn switch_generation(&self, to: &str) -> anyhow::Result<String> {
        let (store, to) = (self.store()?, to.to_string());
        Ok(blocking(move || generation::switch(&store, &to))
            .await?
            .from)
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> shard_proto::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(work)
        .await
        .context("generation task")??)
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
