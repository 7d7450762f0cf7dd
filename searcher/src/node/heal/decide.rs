//! The healing decision, pure: given what this node sees (the cluster's node ids, which
//! peers are unreachable and since when, what each reachable peer reports serving, what
//! this node holds and is doing) and the time, what it should do now.
//!
//! - A node unreachable for `after` is *dead*. The rendezvous placement over the nodes
//!   that are not dead names each shard's holders; removing nodes only raises the others'
//!   ranks, so a live target keeps its shards and only a dead node's shards get new
//!   holders (bytes moved = the dead node's replica bytes). This node installs every
//!   shard that placement gives it and it does not hold, fewest live copies first. With
//!   every holder of a shard dead, the next-ranked live nodes take it: coverage returns
//!   on its own.
//! - Before `after` has passed nothing moves: a node that returns within the grace period
//!   costs zero bytes. The shards this node would take over are reported as waiting.
//! - A copy this node holds beyond the full placement's target is temporary: once every
//!   holder the live placement names reports serving the shard (the lost node is back),
//!   it is retired after `cool_down` (first unannounced, then removed).
//! - Growing and shrinking are the same rule: a node added to the cluster file takes the
//!   shards the placement now gives it (about 1/(N+1) of the replicas: rendezvous moves
//!   nothing else), and the holder it displaces keeps its copy, announced, until the new
//!   holder reports serving it. A node marked `drain` (or no longer in the file, as it
//!   sees itself) is left out of the placement: its shards get new holders and it drops
//!   each copy only once they serve. So no shard has fewer than R serving copies during a
//!   planned change.
//!
//! Same inputs, same output, no clock or I/O: the loop around it (`super`) supplies them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use shard_proto::ShardId;

use crate::placement::Placement;

/// Another node, as this node's own probes see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Peer {
    /// Since when its probes fail (`None`: it answered the last one, or was never probed).
    pub unreachable_since: Option<Instant>,
    /// The shards it reported serving in its last answer (of the generation decided on).
    pub serving: BTreeSet<ShardId>,
    /// What it reported serving of each generation it holds, the base one included.
    pub generations: BTreeMap<String, BTreeSet<ShardId>>,
}

impl Peer {
    /// The same peer as seen when deciding on `generation`: its serving shards are those
    /// it reported for that generation.
    pub fn in_generation(&self, generation: &str) -> Peer {
        Peer {
            unreachable_since: self.unreachable_since,
            serving: self
                .generations
                .get(generation)
                .cloned()
                .unwrap_or_default(),
            generations: BTreeMap::new(),
        }
    }
}

/// What this node is doing about one shard (shards it simply serves have no task).
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// An install is running.
    Installing,
    /// The last install failed: retried at `retry_at`.
    Failing {
        attempts: u32,
        retry_at: Instant,
        error: String,
    },
    /// A temporary copy that is redundant since `since` (cool-down running).
    Surplus { since: Instant },
    /// A temporary copy no longer announced since `since`; removed after the drain.
    Retiring { since: Instant },
}

/// The knobs the decision needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Unreachable this long = dead.
    pub after: Duration,
    /// A redundant temporary copy is kept this long.
    pub cool_down: Duration,
    /// A retired copy is removed this long after it stopped being announced (front-ends
    /// stop routing to it within a probe or two).
    pub drain: Duration,
}

/// Everything the decision looks at.
#[derive(Clone, Debug)]
pub struct View<'a> {
    pub me: &'a str,
    /// Every node id of the cluster file.
    pub nodes: &'a [String],
    /// Nodes of the file marked `drain`: they keep serving but get no shards.
    pub draining: &'a BTreeSet<String>,
    pub replication: usize,
    /// The shards of the store this node could install.
    pub shards: &'a [ShardId],
    pub peers: &'a BTreeMap<String, Peer>,
    /// The shards this node serves now (verified, open, not retired).
    pub held: &'a BTreeSet<ShardId>,
    pub tasks: &'a BTreeMap<ShardId, Task>,
    pub now: Instant,
    pub timing: Timing,
}

/// What to do now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// Shards to install, most urgent first (fewest live copies, then shard id).
    pub install: Vec<ShardId>,
    /// Temporary copies that just became redundant: their cool-down starts now.
    pub surplus: Vec<ShardId>,
    /// Copies that are needed again (before their removal): keep serving them.
    pub keep: Vec<ShardId>,
    /// Redundant copies whose cool-down is over: stop announcing them.
    pub retire: Vec<ShardId>,
    /// Retired copies whose drain is over: remove them.
    pub remove: Vec<ShardId>,
    /// Failed installs of shards no longer wanted here: stop retrying them.
    pub forget: Vec<ShardId>,
    /// Shards this node will take over if their lost holders stay away: the time left and
    /// the lost holders.
    pub waiting: Vec<(ShardId, Duration, Vec<String>)>,
}

impl View<'_> {
    fn unreachable_for(&self, node: &str) -> Option<Duration> {
        let since = self.peers.get(node)?.unreachable_since?;
        Some(self.now.saturating_duration_since(since))
    }

    /// Whether the placement leaves `node` out: marked `drain`, or not in the file (this
    /// node, once an operator removed it).
    fn leaving(&self, node: &str) -> bool {
        self.draining.contains(node) || !self.nodes.iter().any(|n| n == node)
    }

    fn dead(&self, node: &str) -> bool {
        node != self.me
            && self
                .unreachable_for(node)
                .is_some_and(|d| d >= self.timing.after)
    }

    fn placement_over(&self, keep: impl Fn(&str) -> bool) -> Placement {
        let nodes = self.nodes.iter().map(String::as_str).filter(|n| keep(n));
        Placement::compute(
            self.shards.iter().copied(),
            nodes.collect::<Vec<_>>(),
            self.replication,
        )
    }

    /// Reachable nodes serving `shard`, this one included.
    fn live_copies(&self, shard: &ShardId) -> usize {
        let peers = self
            .peers
            .iter()
            .filter(|(id, p)| id.as_str() != self.me && p.unreachable_since.is_none())
            .filter(|(_, p)| p.serving.contains(shard))
            .count();
        peers + usize::from(self.held.contains(shard))
    }

    /// Whether every node in `holders` (this one excepted) reports serving `shard`.
    fn all_serve(&self, holders: &[String], shard: &ShardId) -> bool {
        holders.iter().filter(|n| n.as_str() != self.me).all(|n| {
            self.peers
                .get(n)
                .is_some_and(|p| p.unreachable_since.is_none() && p.serving.contains(shard))
        })
    }
}

/// The decision for `view` (see the module docs).
pub fn decide(view: &View) -> Decision {
    let live = view.placement_over(|n| !view.dead(n) && !view.leaving(n));
    let hopeful = view.placement_over(|n| {
        !view.leaving(n) && (n == view.me || view.unreachable_for(n).is_none())
    });
    let mut decision = Decision::default();
    let mut install = Vec::new();
    for shard in view.shards {
        let empty = Vec::new();
        let holders = live.replicas.get(shard).unwrap_or(&empty);
        let wanted = holders.iter().any(|n| n == view.me);
        let task = view.tasks.get(shard);
        if wanted {
            plan_wanted(view, shard, task, &mut install, &mut decision);
        } else if view.held.contains(shard) || matches!(task, Some(Task::Retiring { .. })) {
            plan_unwanted(view, shard, holders, task, &mut decision);
        } else if matches!(task, Some(Task::Failing { .. })) {
            decision.forget.push(*shard);
        }
        let would_take = hopeful
            .replicas
            .get(shard)
            .is_some_and(|h| h.iter().any(|n| n == view.me));
        if would_take && !wanted && !view.held.contains(shard) {
            decision.waiting.extend(waiting_for(view, &live, shard));
        }
    }
    install.sort();
    decision.install = install.into_iter().map(|(_, shard)| shard).collect();
    decision
}

/// A shard the live placement gives this node: install it unless held, running or
/// waiting for its retry; a retiring copy of it is kept.
fn plan_wanted(
    view: &View,
    shard: &ShardId,
    task: Option<&Task>,
    install: &mut Vec<(usize, ShardId)>,
    decision: &mut Decision,
) {
    match task {
        Some(Task::Installing) => {}
        Some(Task::Failing { retry_at, .. }) if *retry_at > view.now => {}
        Some(Task::Surplus { .. }) | Some(Task::Retiring { .. }) => decision.keep.push(*shard),
        _ if view.held.contains(shard) => {}
        _ => install.push((view.live_copies(shard), *shard)),
    }
}

/// A copy this node holds that the live placement does not give it: redundant once every
/// holder named serves the shard; retired after the cool-down, removed after the drain.
fn plan_unwanted(
    view: &View,
    shard: &ShardId,
    holders: &[String],
    task: Option<&Task>,
    decision: &mut Decision,
) {
    let redundant = !holders.is_empty() && view.all_serve(holders, shard);
    let elapsed = |since: &Instant| view.now.saturating_duration_since(*since);
    match task {
        Some(Task::Retiring { since }) if elapsed(since) >= view.timing.drain => {
            decision.remove.push(*shard)
        }
        Some(Task::Retiring { .. }) => {}
        Some(Task::Surplus { .. }) if !redundant => decision.keep.push(*shard),
        Some(Task::Surplus { since }) if elapsed(since) >= view.timing.cool_down => {
            decision.retire.push(*shard)
        }
        Some(Task::Surplus { .. }) => {}
        _ if redundant => decision.surplus.push(*shard),
        _ => {}
    }
}

/// If `shard` has holders unreachable but within the grace period, whose loss would hand
/// the shard to this node: how long until then, and who.
fn waiting_for(
    view: &View,
    live: &Placement,
    shard: &ShardId,
) -> Option<(ShardId, Duration, Vec<String>)> {
    let holders = live.replicas.get(shard)?;
    let lost: Vec<(String, Duration)> = holders
        .iter()
        .filter_map(|n| Some((n.clone(), view.unreachable_for(n)?)))
        .collect();
    let left = lost
        .iter()
        .map(|(_, d)| view.timing.after.saturating_sub(*d))
        .min()?;
    Some((*shard, left, lost.into_iter().map(|(n, _)| n).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn shards(n: u32) -> Vec<ShardId> {
        (0..n).map(|s| ShardId::new(0, 1, s, n).unwrap()).collect()
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// A 4-node cluster, R = 2, 12 shards, every node serving its target, as `me` sees it.
    struct World {
        nodes: Vec<String>,
        draining: BTreeSet<String>,
        shards: Vec<ShardId>,
        peers: BTreeMap<String, Peer>,
        held: BTreeSet<ShardId>,
        tasks: BTreeMap<ShardId, Task>,
        start: Instant,
        full: Placement,
    }

    const TIMING: Timing = Timing {
        after: Duration::from_secs(120),
        cool_down: Duration::from_secs(60),
        drain: Duration::from_secs(2),
    };

    impl World {
        fn new(me: &str) -> World {
            let nodes = ids(&["a", "b", "c", "d"]);
            let shards = shards(12);
            let full = Placement::compute(
                shards.clone(),
                nodes.iter().map(String::as_str).collect::<Vec<_>>(),
                2,
            );
            let peers = nodes
                .iter()
                .filter(|n| n.as_str() != me)
                .map(|n| {
                    let serving = full.shards_of(n).into_iter().collect();
                    (
                        n.clone(),
                        Peer {
                            unreachable_since: None,
                            serving,
                            ..Peer::default()
                        },
                    )
                })
                .collect();
            World {
                held: full.shards_of(me).into_iter().collect(),
                nodes,
                draining: BTreeSet::new(),
                shards,
                peers,
                tasks: BTreeMap::new(),
                start: Instant::now(),
                full,
            }
        }

        fn decide(&self, me: &str, at: Duration) -> Decision {
            decide(&View {
                me,
                nodes: &self.nodes,
                draining: &self.draining,
                replication: 2,
                shards: &self.shards,
                peers: &self.peers,
                held: &self.held,
                tasks: &self.tasks,
                now: self.start + at,
                timing: TIMING,
            })
        }

        fn lose(&mut self, node: &str, at: Duration) {
            let peer = self.peers.get_mut(node).unwrap();
            peer.unreachable_since = Some(self.start + at);
        }

        fn back(&mut self, node: &str) {
            let serving = self.full.shards_of(node).into_iter().collect();
            let peer = self.peers.get_mut(node).unwrap();
            *peer = Peer {
                unreachable_since: None,
                serving,
                ..Peer::default()
            };
        }
    }

    /// Shards `node` gets beyond its target when `dead` are gone.
    fn takes_over(world: &World, node: &str, dead: &[&str]) -> Vec<ShardId> {
        let alive: Vec<&str> = world
            .nodes
            .iter()
            .map(String::as_str)
            .filter(|n| !dead.contains(n))
            .collect();
        let live = Placement::compute(world.shards.clone(), alive, 2);
        let mine: BTreeSet<ShardId> = world.full.shards_of(node).into_iter().collect();
        live.shards_of(node)
            .into_iter()
            .filter(|s| !mine.contains(s))
            .collect()
    }

    #[test]
    fn a_steady_cluster_does_nothing() {
        let world = World::new("a");
        assert_eq!(world.decide("a", 1000 * SECOND), Decision::default());
    }

    #[test]
    fn nothing_moves_within_grace_and_the_takeover_is_reported_as_waiting() {
        let mut world = World::new("a");
        world.lose("b", 10 * SECOND);
        let decision = world.decide("a", 40 * SECOND);
        assert!(decision.install.is_empty(), "{decision:?}");
        let expected = takes_over(&world, "a", &["b"]);
        let waiting: Vec<ShardId> = decision.waiting.iter().map(|w| w.0).collect();
        assert_eq!(waiting, expected);
        for (_, left, lost) in &decision.waiting {
            assert_eq!(*left, 90 * SECOND);
            assert_eq!(lost, &ids(&["b"]));
        }
        // Back within grace: nothing to do, nothing moved.
        world.back("b");
        assert_eq!(world.decide("a", 100 * SECOND), Decision::default());
    }

    #[test]
    fn after_grace_the_dead_nodes_shards_and_only_those_get_new_holders() {
        let mut world = World::new("a");
        world.lose("b", Duration::ZERO);
        let mut moved = BTreeSet::new();
        for me in ["a", "c", "d"] {
            let mut view = World::new(me);
            view.lose("b", Duration::ZERO);
            let decision = view.decide(me, 120 * SECOND);
            assert_eq!(
                decision.install.iter().copied().collect::<BTreeSet<_>>(),
                takes_over(&view, me, &["b"]).into_iter().collect()
            );
            moved.extend(decision.install);
        }
        // Together the survivors install exactly what b held.
        let lost: BTreeSet<ShardId> = world.full.shards_of("b").into_iter().collect();
        assert_eq!(moved, lost);
        // A failed install waits for its retry time, then is retried.
        let shard = takes_over(&world, "a", &["b"])[0];
        world.tasks.insert(
            shard,
            Task::Failing {
                attempts: 1,
                retry_at: world.start + 130 * SECOND,
                error: "x".into(),
            },
        );
        assert!(!world.decide("a", 125 * SECOND).install.contains(&shard));
        assert!(world.decide("a", 130 * SECOND).install.contains(&shard));
        world.tasks.insert(shard, Task::Installing);
        assert!(!world.decide("a", 200 * SECOND).install.contains(&shard));
    }

    #[test]
    fn shards_with_fewest_live_copies_install_first_and_lost_shards_come_back() {
        let mut world = World::new("a");
        world.lose("b", Duration::ZERO);
        world.lose("c", Duration::ZERO);
        let decision = world.decide("a", 121 * SECOND);
        // a and d are all that is left: a holds the top-2 of {a, d}, i.e. every shard.
        let missing: BTreeSet<ShardId> = world
            .shards
            .iter()
            .copied()
            .filter(|s| !world.held.contains(s))
            .collect();
        assert_eq!(
            decision.install.iter().copied().collect::<BTreeSet<_>>(),
            missing
        );
        let copies = |s: &ShardId| usize::from(world.peers["d"].serving.contains(s));
        let order: Vec<usize> = decision.install.iter().map(copies).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "fewest live copies first");
        assert_eq!(
            order[0], 0,
            "a shard whose every holder is lost comes first"
        );
    }

    #[test]
    fn temporary_copies_are_dropped_after_the_lost_node_serves_again_and_the_cool_down() {
        let mut world = World::new("a");
        let extra = takes_over(&world, "a", &["b"]);
        assert!(!extra.is_empty(), "a takes over some of b's shards");
        world.held.extend(extra.iter().copied());
        // b is back but not serving yet: the copies stay.
        world.peers.get_mut("b").unwrap().serving.clear();
        assert!(world.decide("a", 10 * SECOND).surplus.is_empty());
        world.back("b");
        let decision = world.decide("a", 10 * SECOND);
        assert_eq!(decision.surplus, extra);
        for shard in &extra {
            world.tasks.insert(
                *shard,
                Task::Surplus {
                    since: world.start + 10 * SECOND,
                },
            );
        }
        assert!(
            world.decide("a", 69 * SECOND).retire.is_empty(),
            "cooling down"
        );
        assert_eq!(world.decide("a", 70 * SECOND).retire, extra);
        for shard in &extra {
            world.held.remove(shard);
            world.tasks.insert(
                *shard,
                Task::Retiring {
                    since: world.start + 70 * SECOND,
                },
            );
        }
        assert!(world.decide("a", 71 * SECOND).remove.is_empty(), "draining");
        assert_eq!(world.decide("a", 72 * SECOND).remove, extra);
        // Lost again while retiring: the copy is kept, not reinstalled.
        world.lose("b", Duration::ZERO);
        let decision = world.decide("a", 200 * SECOND);
        assert_eq!(decision.keep, extra);
        assert!(decision.install.iter().all(|s| !extra.contains(s)));
    }

    fn placement(nodes: &[&str]) -> Placement {
        Placement::compute(shards(12), nodes.iter().copied(), 2)
    }

    /// Every peer serves what `target` gives it.
    fn serve(world: &mut World, target: &Placement) {
        for (id, peer) in world.peers.iter_mut() {
            peer.serving = target.shards_of(id).into_iter().collect();
        }
    }

    #[test]
    fn a_joining_node_takes_its_share_and_displaced_copies_go_once_it_serves() {
        let after = placement(&["a", "b", "c", "d", "e"]);
        let share = after.shards_of("e");
        assert!(!share.is_empty() && share.len() < 12, "{share:?}");
        // The new node installs exactly its share.
        let mut joining = World::new("e");
        joining.nodes.push("e".into());
        assert_eq!(joining.decide("e", SECOND).install, share);
        // Old holders: nothing while it does not serve, then each drops what moved.
        let mut displaced = 0;
        for me in ["a", "b", "c", "d"] {
            let mut world = World::new(me);
            world.nodes.push("e".into());
            world.peers.insert("e".into(), Peer::default());
            let before = world.decide(me, SECOND);
            assert_eq!(before, Decision::default(), "{me}: nothing before e serves");
            serve(&mut world, &after);
            let moved: Vec<ShardId> = world
                .held
                .iter()
                .filter(|s| !after.shards_of(me).contains(s))
                .copied()
                .collect();
            let decision = world.decide(me, 2 * SECOND);
            assert_eq!(decision.surplus, moved, "{me}");
            assert!(decision.install.is_empty(), "{me}: {decision:?}");
            displaced += moved.len();
        }
        assert_eq!(
            displaced,
            share.len(),
            "one displaced copy per replica moved"
        );
    }

    #[test]
    fn a_draining_or_removed_node_keeps_its_copies_until_the_new_holders_serve() {
        let without_b = placement(&["a", "c", "d"]);
        for removed in [false, true] {
            let mut world = World::new("b");
            match removed {
                true => world.nodes.retain(|n| n != "b"),
                false => _ = world.draining.insert("b".into()),
            }
            assert_eq!(world.decide("b", SECOND), Decision::default());
            serve(&mut world, &without_b);
            let held: Vec<ShardId> = world.held.iter().copied().collect();
            assert_eq!(world.decide("b", 2 * SECOND).surplus, held);
        }
        // The others take over b's copies at once (it is alive: nothing to wait for).
        let mut world = World::new("a");
        world.draining.insert("b".into());
        let wanted: Vec<ShardId> = without_b
            .shards_of("a")
            .into_iter()
            .filter(|s| !world.held.contains(s))
            .collect();
        assert!(!wanted.is_empty());
        let mut install = world.decide("a", SECOND).install;
        install.sort();
        assert_eq!(install, wanted);
    }
}
