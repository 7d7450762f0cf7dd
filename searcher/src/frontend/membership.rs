//! The nodes a coordinator routes to, following the cluster file while it runs.
//!
//! A node added to the file (one more `[[node]]`, or `count` N → N+1) is probed at once and
//! gets the searches of the shards it reports serving; a node removed from it is retired:
//! its prober stops and it is never asked again. A node marked `drain` stays a member (it
//! keeps answering for the copies it still holds) but leaves the placement, like the
//! nodes' own healing does (`node/heal`). So a coordinator sees a cluster grow or shrink
//! without a restart, as the nodes do, and no search depends on its restart.
//!
//! Each change builds a new [`ReplicaSet`] and swaps it in; a query uses the set it
//! started with. Node indices are never reused (retired nodes keep theirs), so an index
//! from one set is valid in every later one and a query spanning a swap stays correct.
//! The handles of nodes present in both sets are shared, with their health and latency.
//! The coordinators `/cluster` lists (where clients retry) follow the file too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::task::JoinHandle;

use super::health;
use super::metrics::Metrics;
use super::nodes::NodeHandle;
use super::replica::ReplicaSet;
use crate::cluster::{ClusterConfig, NodeConfig};
use crate::cluster_watch::WatchedClusterFile;
use crate::model::CoordinatorView;
use crate::placement::Placement;
use shard_proto::auth::ClusterKey;

/// The current replica set, swapped whole when the cluster file changes.
pub struct Members {
    current: RwLock<Arc<ReplicaSet>>,
}

impl Members {
    pub fn new(set: ReplicaSet) -> Self {
        Members {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The set to use for one query (or one view of the cluster).
    pub fn current(&self) -> Arc<ReplicaSet> {
        Arc::clone(&self.current.read())
    }

    fn replace(&self, set: ReplicaSet) {
        *self.current.write() = Arc::new(set);
    }
}

/// What a new node's handle is made from, and the coordinators list `/cluster` shows.
pub struct HandleMaker {
    pub config: ClusterConfig,
    pub metrics: Arc<Metrics>,
    pub key: ClusterKey,
    /// Every coordinating process's public address, refreshed with the file.
    pub coordinators: Arc<RwLock<Vec<CoordinatorView>>>,
}

/// Every coordinating process's public address, for `/cluster` (the page and load
/// generators spread over them).
pub fn coordinator_views(config: &ClusterConfig) -> Vec<CoordinatorView> {
    config
        .public_addresses()
        .into_iter()
        .map(|(id, http)| CoordinatorView {
            id: id.to_string(),
            http: http.to_string(),
        })
        .collect()
}

impl HandleMaker {
    fn make(&self, index: usize, node: &NodeConfig) -> NodeHandle {
        NodeHandle::new(
            index,
            node,
            &self.config.timeouts,
            &self.metrics,
            self.key.clone(),
        )
    }
}

/// The running health probers, one per member; aborted when dropped.
struct Probers {
    running: HashMap<usize, JoinHandle<()>>,
    interval: Duration,
    timeout: Duration,
}

impl Probers {
    fn start(&mut self, index: usize, node: &Arc<NodeHandle>) {
        let prober = health::spawn_prober(node, self.interval, self.timeout);
        if let Some(old) = self.running.insert(index, prober) {
            old.abort();
        }
    }

    fn stop(&mut self, index: usize) {
        if let Some(prober) = self.running.remove(&index) {
            prober.abort();
        }
    }
}

impl Drop for Probers {
    fn drop(&mut self) {
        for prober in self.running.values() {
            prober.abort();
        }
    }
}

/// Probes every member and follows the cluster file until aborted (which stops the
/// probers too).
pub fn spawn(members: Arc<Members>, maker: HandleMaker) -> JoinHandle<()> {
    let interval = maker.config.timeouts.probe_interval();
    let mut probers = Probers {
        running: HashMap::new(),
        interval,
        timeout: maker.config.timeouts.attempt(),
    };
    let set = members.current();
    for i in set.members() {
        probers.start(i, &set.nodes[i]);
    }
    let mut file = WatchedClusterFile::of(&maker.config);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Some(config) = file.as_mut().and_then(WatchedClusterFile::changed) {
                follow(&members, &config, &maker, &mut probers);
            }
        }
    })
}

/// Applies the node list of a changed cluster file.
fn follow(members: &Members, config: &ClusterConfig, maker: &HandleMaker, probers: &mut Probers) {
    *maker.coordinators.write() = coordinator_views(config);
    let old = members.current();
    let (set, changes) = rebuilt(&old, config, |i, node| maker.make(i, node));
    for change in &changes {
        match *change {
            Change::Joined(i) => {
                tracing::info!(node = %set.nodes[i].id, addr = %set.nodes[i].addr, "node joined");
                probers.start(i, &set.nodes[i]);
            }
            Change::Left(i) => {
                tracing::info!(node = %set.nodes[i].id, "node left the cluster file: retired");
                probers.stop(i);
            }
        }
    }
    members.replace(set);
}

/// A member that came or went.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Joined(usize),
    Left(usize),
}

/// The set for `config`'s node list, keeping `old`'s handles (and indices) for the nodes
/// still there at the same address; a node whose address changed gets a new handle.
fn rebuilt(
    old: &ReplicaSet,
    config: &ClusterConfig,
    make: impl Fn(usize, &NodeConfig) -> NodeHandle,
) -> (ReplicaSet, Vec<Change>) {
    let mut nodes = old.nodes.clone();
    let mut retired = vec![true; nodes.len()];
    let mut changes = Vec::new();
    for node in &config.nodes {
        let same = |handle: &Arc<NodeHandle>| handle.id == node.id && handle.addr == node.rpc;
        match nodes.iter().position(same) {
            Some(i) => {
                retired[i] = false;
                if !old.is_member(i) {
                    changes.push(Change::Joined(i));
                }
            }
            None => {
                let i = nodes.len();
                nodes.push(Arc::new(make(i, node)));
                retired.push(false);
                changes.push(Change::Joined(i));
            }
        }
    }
    changes.extend(old.members().filter(|&i| retired[i]).map(Change::Left));
    let shards: Vec<_> = old.replicas.keys().copied().collect();
    let placement = Placement::for_cluster(config, shards);
    (
        ReplicaSet::with_retired(nodes, retired, &placement),
        changes,
    )
}
