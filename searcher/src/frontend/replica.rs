//! Holder-aware, load-aware replica choice: which node answers for which shard.
//!
//! A shard's holders are the nodes that *report* serving it in their health answers
//! (`NodeHandle::holds`); the placement is only the target, used for a node that has not
//! answered a health probe yet. So a copy a node installed while healing is used as soon
//! as it reports it, and a target that does not (yet) serve its shard is never asked.
//!
//! Every query ranks the live nodes once — healthy before suspect before nodes on
//! probation (which get one ranking in `PROBATION_TURN` first), then by cost (latency
//! estimate × (in-flight + 1); the coordinating node's own, reached in-process, counts
//! [`LOCAL_COST_FACTOR`] of it, so it is preferred until it is that much busier than a
//! remote replica), ties rotated so idle nodes share the work — and gives
//! each shard to the best-ranked node holding a live replica of it. Because every shard prefers the same least-loaded node, the plan needs as few
//! nodes as placement allows, so a query costs one request per node, not per shard (the
//! per-node batching of Quickwit's root). Retries and hedges plan again with the nodes
//! already tried for a shard excluded: a shard never goes twice to the same node.
//!
//! The node list only grows: a node removed from the cluster file is *retired* (never
//! ranked, listed or asked again) but keeps its index, so an index taken from one set stays
//! valid in every later one (see `membership.rs`, which swaps sets while queries run).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use shard_proto::ShardId;

use crate::frontend::nodes::{NodeHandle, PROBATION_TURN};
use crate::model::NodeHealth;
use crate::placement::Placement;

/// The placement table in node indices, plus the nodes.
pub struct ReplicaSet {
    /// Every node this front-end has known, in order of arrival (retired ones included).
    pub nodes: Vec<Arc<NodeHandle>>,
    /// Per node: left the cluster file (never ranked, listed or asked).
    retired: Vec<bool>,
    /// Shard → indices (into `nodes`) of the nodes the placement targets, placement order.
    pub replicas: BTreeMap<ShardId, Vec<usize>>,
    rotation: AtomicUsize,
}

/// What the coordinating node's own cost counts for in the ranking. Asking it saves an
/// exchange (HTTP, MAC, two frames each way) on both sides, and keeps a query on fewer
/// remote nodes; but once it is four times busier than a remote replica (its pool
/// queueing), the remote one answers sooner.
pub const LOCAL_COST_FACTOR: f64 = 0.25;

/// The cost ranking compares: the node's cost, discounted for the local node.
fn ranking_cost(node: &NodeHandle) -> f64 {
    match node.is_local() {
        true => node.cost() * LOCAL_COST_FACTOR,
        false => node.cost(),
    }
}

/// Where a node of this health ranks (lower first). A node on probation comes after every
/// other live node, except on a trial turn (one ranking in `PROBATION_TURN`) where it
/// comes first: a bounded share of the traffic, enough to prove itself.
fn rank_class(health: NodeHealth, trial: bool) -> u8 {
    match health {
        NodeHealth::Probation if trial => 0,
        NodeHealth::Up => 1,
        NodeHealth::Suspect => 2,
        NodeHealth::Probation => 3,
        NodeHealth::Down => 4,
    }
}

/// A plan: node index → shards it is asked for, plus the shards no live node holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub by_node: BTreeMap<usize, Vec<ShardId>>,
    pub unavailable: Vec<ShardId>,
}

impl ReplicaSet {
    pub fn new(nodes: Vec<Arc<NodeHandle>>, placement: &Placement) -> Self {
        let retired = vec![false; nodes.len()];
        Self::with_retired(nodes, retired, placement)
    }

    /// A set whose nodes `retired[i]` left the cluster (the placement never names them).
    pub fn with_retired(
        nodes: Vec<Arc<NodeHandle>>,
        retired: Vec<bool>,
        placement: &Placement,
    ) -> Self {
        let index_of = |id: &str| (0..nodes.len()).find(|&i| !retired[i] && nodes[i].id == id);
        let replicas = placement
            .replicas
            .iter()
            .map(|(shard, ids)| (*shard, ids.iter().filter_map(|id| index_of(id)).collect()))
            .collect();
        ReplicaSet {
            nodes,
            retired,
            replicas,
            rotation: AtomicUsize::new(0),
        }
    }

    /// Whether node `i` is in the cluster (not retired).
    pub fn is_member(&self, i: usize) -> bool {
        !self.retired.get(i).copied().unwrap_or(true)
    }

    /// The indices of the nodes in the cluster.
    pub fn members(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.is_member(i))
    }

    /// Node indices, best first: by health class (see [`rank_class`]), then cost, ties
    /// rotated.
    pub fn ranking(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
        let start = turn % n.max(1);
        let trial = turn.is_multiple_of(PROBATION_TURN);
        let mut ranked: Vec<(u8, f64, usize, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.is_member(*i))
            .map(|(i, node)| {
                let class = rank_class(node.state(), trial);
                (class, ranking_cost(node), (i + n - start) % n, i)
            })
            .collect();
        ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        ranked.into_iter().map(|(_, _, _, i)| i).collect()
    }

    /// Whether the placement puts `shard` on node `node`.
    pub fn targeted(&self, shard: &ShardId, node: usize) -> bool {
        self.replicas.get(shard).is_some_and(|t| t.contains(&node))
    }

    /// The nodes holding `shard` (as they report, see the module docs), targets first.
    pub fn holders(&self, shard: &ShardId) -> Vec<usize> {
        let targets = self.replicas.get(shard).map(Vec::as_slice).unwrap_or(&[]);
        let mut holders: Vec<usize> = targets.to_vec();
        holders.extend(
            self.members()
                .filter(|&n| !targets.contains(&n) && self.nodes[n].holds(shard, false)),
        );
        holders
    }

    /// Gives each shard to the best-ranked node that serves it and is not in `excluded`
    /// (nodes already tried for that shard); failing that, to an ejected holder that was
    /// only slow ([`NodeHandle::last_resort_for`]), so overload never turns into a
    /// partial answer while a holder is alive.
    pub fn plan(
        &self,
        ranking: &[usize],
        shards: impl IntoIterator<Item = ShardId>,
        generation: Option<&str>,
        excluded: impl Fn(&ShardId, usize) -> bool,
    ) -> Plan {
        let mut plan = Plan::default();
        for shard in shards {
            let candidates = || ranking.iter().copied().filter(|&n| !excluded(&shard, n));
            let targeted = |node: usize| self.targeted(&shard, node);
            let chosen = candidates()
                .find(|&node| self.nodes[node].serves(&shard, targeted(node), generation))
                .or_else(|| {
                    candidates().find(|&node| {
                        self.nodes[node].last_resort_for(&shard, targeted(node), generation)
                    })
                });
            match chosen {
                Some(node) => plan.by_node.entry(node).or_default().push(shard),
                None => plan.unavailable.push(shard),
            }
        }
        plan
    }

    /// Whether a live holder of `shard` outside `excluded` may still be asked: what makes
    /// an attempt worth cutting at the attempt timeout, or hedging. An ejected holder kept
    /// as a last resort does not count: cutting a live replica short to make room for a
    /// node already ejected trades a likely answer for an unlikely one (a killed container
    /// whose name stops resolving times out like a slow node). It is still asked if the
    /// live replica fails ([`ReplicaSet::plan`]).
    pub fn has_live_alternative(
        &self,
        shard: &ShardId,
        generation: Option<&str>,
        excluded: impl Fn(usize) -> bool,
    ) -> bool {
        self.members().any(|node| {
            let targeted = self.targeted(shard, node);
            !excluded(node) && self.nodes[node].serves(shard, targeted, generation)
        })
    }

    /// Why no replica of `shard` can answer (each holder's state and last error).
    pub fn unavailable_reason(&self, shard: &ShardId) -> String {
        let holders = self.holders(shard);
        if holders.is_empty() {
            return "no node holds a replica".to_string();
        }
        let reasons: Vec<String> = holders
            .iter()
            .map(|&node| self.nodes[node].unavailable_reason(shard))
            .collect();
        format!("no live replica ({})", reasons.join("; "))
    }
}
