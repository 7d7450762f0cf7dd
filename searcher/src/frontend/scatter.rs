//! The fan-out loop shared by the statistics and query phases: one request per node
//! covering every shard planned on it, then failover until every shard has an answer, has
//! failed for good, or the deadline passes.
//!
//! - A node request that fails (connect error, per-attempt timeout, 5xx, bad frame), or a
//!   shard the node reports as failed, sends those shards to a replica on a node not yet
//!   tried for them.
//! - A node request still running past that node's recent p95 (see `nodes.rs`) is hedged:
//!   its unanswered shards go to other replicas too, the first answer per shard wins —
//!   within the budget of `policy.rs`.
//! - An attempt gets the per-attempt timeout, except a last chance (some shard in it has no
//!   other live replica left to try), which gets the rest of the deadline: timing it out
//!   early could only turn a slow answer into a missing one. An ejected holder kept as a
//!   last resort is asked only after the live ones failed, never instead of waiting.
//! - Attempts run as tasks of their own: an abandoned loser still finishes (bounded by its
//!   budget) and reports the node's health, and its pooled connection survives.
//!
//! Partial failure is data: the result lists every shard that could not be answered, with
//! the reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use shard_proto::wire::ShardOutcome;
use shard_proto::ShardId;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::frontend::membership::Members;
use crate::frontend::metrics::Metrics;
use crate::frontend::nodes::{AttemptError, RpcCall, RpcReply};
use crate::frontend::policy::HedgeBudget;
use crate::frontend::replica::ReplicaSet;

/// The machinery every fan-out uses.
pub struct Fanout {
    /// The nodes, as the cluster file lists them now (a scatter uses one set throughout).
    pub replicas: Arc<Members>,
    pub metrics: Arc<Metrics>,
    pub hedge_budget: HedgeBudget,
    /// Budget of an ordinary attempt (the cluster file's `attempt_ms`).
    pub attempt_timeout: Duration,
}

/// A node's answer split per shard.
pub type Outcomes<T> = Vec<(ShardId, ShardOutcome<T>)>;

/// One phase of a search as the scatter loop sees it.
pub trait Phase: Send + Sync + 'static {
    type Item: Send + 'static;
    /// The request asking one node for these shards.
    fn call(&self, shards: Vec<ShardId>) -> RpcCall;
    /// Per-shard outcomes of an answer to the call for `shards` (an answer of the wrong
    /// kind is an error).
    fn split(
        &self,
        shards: &[ShardId],
        reply: RpcReply,
    ) -> Result<Outcomes<Self::Item>, AttemptError>;
    /// The index generation the requests name (`None`: the base one): only nodes that
    /// report serving a shard *in that generation* are asked for it.
    fn generation(&self) -> Option<&str>;
}

/// What one shard answered, and which node answered it.
pub struct Answer<T> {
    pub item: T,
    pub node: usize,
}

/// Result of a fan-out.
pub struct Gathered<T> {
    pub answers: BTreeMap<ShardId, Answer<T>>,
    pub failures: BTreeMap<ShardId, String>,
}

#[derive(Default)]
struct Slot {
    tried: Vec<usize>,
    in_flight: u32,
    finished: bool,
    last_error: Option<String>,
}

struct Attempt {
    node: usize,
    shards: Vec<ShardId>,
    hedge_at: Option<Instant>,
    is_hedge: bool,
}

type Running = FuturesUnordered<JoinHandle<(u64, Result<RpcReply, AttemptError>)>>;

/// One fan-out in progress.
struct Scatter<'a, P: Phase> {
    fanout: &'a Fanout,
    phase: &'a Arc<P>,
    /// The nodes as they were when the scatter started.
    replicas: Arc<ReplicaSet>,
    ranking: Vec<usize>,
    slots: HashMap<ShardId, Slot>,
    attempts: HashMap<u64, Attempt>,
    next_id: u64,
    running: Running,
    gathered: Gathered<P::Item>,
    remaining: usize,
    deadline: Instant,
}

impl Fanout {
    /// How long one attempt may run: the per-attempt timeout, or for a `last_chance`
    /// (nothing to fail over to) whatever is left until `deadline`.
    pub fn attempt_budget(&self, last_chance: bool, deadline: Instant) -> Duration {
        let left = deadline.saturating_duration_since(Instant::now());
        match last_chance {
            true => left,
            false => self.attempt_timeout.min(left),
        }
    }

    /// Runs `phase` over `shards` until all are answered or failed, or `deadline`.
    pub async fn scatter<P: Phase>(
        &self,
        phase: &Arc<P>,
        shards: &[ShardId],
        deadline: Instant,
    ) -> Gathered<P::Item> {
        let replicas = self.replicas.current();
        let mut scatter = Scatter {
            fanout: self,
            phase,
            ranking: replicas.ranking(),
            replicas,
            slots: shards.iter().map(|s| (*s, Slot::default())).collect(),
            attempts: HashMap::new(),
            next_id: 0,
            running: FuturesUnordered::new(),
            gathered: Gathered {
                answers: BTreeMap::new(),
                failures: BTreeMap::new(),
            },
            remaining: shards.len(),
            deadline,
        };
        scatter.launch_unanswered(shards.to_vec(), false);
        scatter.run().await;
        scatter.gathered
    }
}

impl<P: Phase> Scatter<'_, P> {
    async fn run(&mut self) {
        let deadline = self.deadline;
        while self.remaining > 0 {
            if self.running.is_empty() {
                self.fail_unfinished("no attempt left");
                break;
            }
            let next_hedge = self.attempts.values().filter_map(|a| a.hedge_at).min();
            tokio::select! {
                biased;
                Some(joined) = self.running.next() => {
                    match joined {
                        Ok((id, result)) => self.on_result(id, result),
                        Err(join_error) => tracing::error!(%join_error, "rpc task failed"),
                    }
                    self.retry_orphans();
                }
                _ = tokio::time::sleep_until(next_hedge.unwrap_or(deadline)), if next_hedge.is_some() => {
                    self.hedge_due(Instant::now());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.fail_unfinished("deadline exceeded");
                    break;
                }
            }
        }
    }

    /// Plans `shards` (each excluding the nodes already tried for it) and sends one request
    /// per node. Shards no live replica can take fail here unless an attempt is running.
    fn launch_unanswered(&mut self, shards: Vec<ShardId>, is_hedge: bool) -> usize {
        let slots = &self.slots;
        let generation = self.phase.generation();
        let plan = self
            .replicas
            .plan(&self.ranking, shards, generation, |shard, node| {
                slots.get(shard).is_some_and(|s| s.tried.contains(&node))
            });
        if !is_hedge {
            for shard in plan.unavailable {
                let slot = &self.slots[&shard];
                if slot.in_flight == 0 && !slot.finished {
                    let reason = match &slot.last_error {
                        Some(error) => format!("{error}; no other live replica"),
                        None => self.replicas.unavailable_reason(&shard),
                    };
                    self.finish_failed(shard, reason);
                }
            }
        }
        let launched = plan.by_node.len();
        for (node, shards) in plan.by_node {
            for shard in &shards {
                let slot = self
                    .slots
                    .get_mut(shard)
                    .expect("planned shards have slots");
                slot.tried.push(node);
                slot.in_flight += 1;
            }
            self.spawn(node, shards, is_hedge);
        }
        launched
    }

    fn spawn(&mut self, node: usize, shards: Vec<ShardId>, is_hedge: bool) {
        let handle = Arc::clone(&self.replicas.nodes[node]);
        let id = self.next_id;
        self.next_id += 1;
        let hedge_at = (!is_hedge).then(|| Instant::now() + handle.hedge_after());
        let last_chance = !self.alternatives_for_all(&shards);
        let budget = self.fanout.attempt_budget(last_chance, self.deadline);
        let call = self.phase.call(shards.clone());
        self.attempts.insert(
            id,
            Attempt {
                node,
                shards,
                hedge_at,
                is_hedge,
            },
        );
        self.running.push(tokio::spawn(async move {
            (id, handle.call(call, budget).await)
        }));
    }

    fn on_result(&mut self, id: u64, result: Result<RpcReply, AttemptError>) {
        let Some(attempt) = self.attempts.remove(&id) else {
            return;
        };
        let node_id = self.replicas.nodes[attempt.node].id.clone();
        let outcomes = match result.and_then(|reply| self.phase.split(&attempt.shards, reply)) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                self.fanout.metrics.rpc_error(&node_id, error.kind());
                for shard in &attempt.shards {
                    self.release(shard, Some(format!("{node_id}: {error}")));
                }
                return;
            }
        };
        let mut answered: Vec<ShardId> = Vec::with_capacity(outcomes.len());
        for (shard, outcome) in outcomes {
            if !attempt.shards.contains(&shard) || answered.contains(&shard) {
                continue; // a shard we did not ask this node for: ignore, never trust
            }
            answered.push(shard);
            match outcome {
                ShardOutcome::Ok(item) => {
                    self.release(&shard, None);
                    if !self.slots[&shard].finished {
                        if attempt.is_hedge {
                            self.fanout.metrics.hedges_won.inc();
                        }
                        self.finish_ok(shard, item, attempt.node);
                    }
                }
                ShardOutcome::Failed(reason) => {
                    self.release(&shard, Some(format!("{node_id}: {reason}")))
                }
            }
        }
        for shard in &attempt.shards {
            if !answered.contains(shard) {
                self.release(
                    shard,
                    Some(format!("{node_id}: shard missing from its answer")),
                );
            }
        }
    }

    fn release(&mut self, shard: &ShardId, error: Option<String>) {
        if let Some(slot) = self.slots.get_mut(shard) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            if error.is_some() {
                slot.last_error = error;
            }
        }
    }

    /// Shards with no answer and nothing running for them go to another replica.
    fn retry_orphans(&mut self) {
        let orphans: Vec<ShardId> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.finished && s.in_flight == 0)
            .map(|(shard, _)| *shard)
            .collect();
        if orphans.is_empty() {
            return;
        }
        let before = self.remaining;
        self.launch_unanswered(orphans.clone(), false);
        let retried = orphans.len() - (before - self.remaining);
        self.fanout.metrics.retries.inc_by(retried as u64);
    }

    /// Hedges every attempt that has run past its node's p95, budget permitting.
    fn hedge_due(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .attempts
            .iter()
            .filter(|(_, a)| a.hedge_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let attempt = self.attempts.get_mut(&id).expect("due attempts exist");
            attempt.hedge_at = None;
            let unanswered: Vec<ShardId> = attempt
                .shards
                .iter()
                .filter(|s| !self.slots[*s].finished)
                .copied()
                .collect();
            if unanswered.is_empty() || !self.has_alternative(&unanswered) {
                continue;
            }
            if !self.fanout.hedge_budget.try_take() {
                continue;
            }
            if self.launch_unanswered(unanswered, true) > 0 {
                self.fanout.metrics.hedges.inc();
            }
        }
    }

    /// Whether some of `shards` has a live replica not tried yet (a hedge could go there).
    fn has_alternative(&self, shards: &[ShardId]) -> bool {
        shards.iter().any(|shard| self.untried_replica(shard))
    }

    /// Whether every one of `shards` has a live replica not tried yet (else an attempt is a
    /// last chance).
    fn alternatives_for_all(&self, shards: &[ShardId]) -> bool {
        shards.iter().all(|shard| self.untried_replica(shard))
    }

    fn untried_replica(&self, shard: &ShardId) -> bool {
        let tried = self.slots.get(shard).map_or(&[][..], |s| &s.tried);
        self.replicas
            .has_live_alternative(shard, self.phase.generation(), |node| tried.contains(&node))
    }

    fn finish_ok(&mut self, shard: ShardId, item: P::Item, node: usize) {
        let slot = self.slots.get_mut(&shard).expect("slot");
        slot.finished = true;
        self.remaining -= 1;
        self.gathered.answers.insert(shard, Answer { item, node });
    }

    fn finish_failed(&mut self, shard: ShardId, reason: String) {
        let slot = self.slots.get_mut(&shard).expect("slot");
        if slot.finished {
            return;
        }
        slot.finished = true;
        self.remaining -= 1;
        self.gathered.failures.insert(shard, reason);
    }

    fn fail_unfinished(&mut self, why: &str) {
        let unfinished: Vec<(ShardId, Option<String>)> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.finished)
            .map(|(shard, s)| (*shard, s.last_error.clone()))
            .collect();
        for (shard, last_error) in unfinished {
            let reason = match last_error {
                Some(error) => format!("{why} (last error: {error})"),
                None => why.to_string(),
            };
            self.finish_failed(shard, reason);
        }
    }
}
