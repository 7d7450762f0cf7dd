//! Nodes watch each other: every node probes every other node's health itself, on its
//! own schedule, so healing never depends on a front-end being up (the front-end's probes
//! only steer its own routing).
//!
//! One loop per peer (a hung peer never delays the probes of the others); [`Probes`]
//! follows the cluster file as it changes (a loop starts for a node added, stops for a
//! node removed, restarts for a node whose address changed). A probe counts
//! only if the answer is an authenticated health frame from the expected node speaking
//! this wire version; anything else, like no answer, makes the peer unreachable from the
//! first such probe on ([`Peer::unreachable_since`]), until it answers well again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use shard_proto::auth::ClusterKey;
use shard_proto::wire::{HealthResponse, WIRE_VERSION};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::decide::Peer;
use crate::addr::NodeAddr;
use crate::cluster::NodeConfig;
use crate::rpc::NodeClient;

/// What this node knows of the others, shared with the healing loop.
pub type Peers = Arc<Mutex<BTreeMap<String, Peer>>>;

/// How the probes run.
#[derive(Clone, Copy, Debug)]
pub struct ProbeTiming {
    pub interval: Duration,
    /// One probe's answer must come within this.
    pub timeout: Duration,
    pub connect: Duration,
}

/// The probe loops of one node, one per other node of the cluster file; dropping it stops
/// them.
pub struct Probes {
    me: String,
    key: ClusterKey,
    timing: ProbeTiming,
    peers: Peers,
    loops: BTreeMap<String, (NodeAddr, JoinHandle<()>)>,
}

impl Probes {
    /// Probes every node of `nodes` but `me` (call from within the runtime).
    pub fn start(
        me: &str,
        nodes: &[NodeConfig],
        key: &ClusterKey,
        timing: ProbeTiming,
        peers: &Peers,
    ) -> Probes {
        let mut probes = Probes {
            me: me.to_string(),
            key: key.clone(),
            timing,
            peers: Arc::clone(peers),
            loops: BTreeMap::new(),
        };
        probes.follow(nodes);
        probes
    }

    /// Probes exactly the nodes of `nodes` (but `me`): starts loops for new ones, stops
    /// those of nodes gone (forgetting what they reported), restarts moved ones.
    pub fn follow(&mut self, nodes: &[NodeConfig]) {
        let wanted: BTreeMap<&str, &NodeConfig> = nodes
            .iter()
            .filter(|n| n.id != self.me)
            .map(|n| (n.id.as_str(), n))
            .collect();
        let stale: Vec<String> = self
            .loops
            .iter()
            .filter(|(id, (rpc, _))| wanted.get(id.as_str()).is_none_or(|n| n.rpc != *rpc))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some((_, handle)) = self.loops.remove(&id) {
                handle.abort();
            }
            self.peers.lock().remove(&id);
        }
        for (id, node) in wanted {
            if self.loops.contains_key(id) {
                continue;
            }
            let client = NodeClient::new(
                node.id.clone(),
                node.rpc.clone(),
                self.timing.connect,
                self.key.clone(),
            );
            let handle = tokio::spawn(probe_loop(client, self.timing, Arc::clone(&self.peers)));
            self.loops
                .insert(id.to_string(), (node.rpc.clone(), handle));
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        for (_, handle) in self.loops.values() {
            handle.abort();
        }
    }
}

async fn probe_loop(client: NodeClient, timing: ProbeTiming, peers: Peers) {
    let mut ticker = tokio::time::interval(timing.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let answer = tokio::time::timeout(timing.timeout, client.health()).await;
        let health = match answer {
            Ok(Ok(health)) => check(client.node_id(), health),
            _ => None,
        };
        record(&peers, client.node_id(), health.as_ref(), Instant::now());
    }
}

/// The answer, if it comes from the expected node speaking this wire version.
fn check(id: &str, health: HealthResponse) -> Option<HealthResponse> {
    (health.node == id && health.wire_version == WIRE_VERSION).then_some(health)
}

/// Applies one probe's outcome (`None`: no usable answer) at `now`.
fn record(peers: &Peers, id: &str, health: Option<&HealthResponse>, now: Instant) {
    let mut peers = peers.lock();
    let peer = peers.entry(id.to_string()).or_default();
    match health {
        Some(health) => {
            peer.unreachable_since = None;
            peer.serving = health.serving();
            peer.generations = (health.generations.iter())
                .map(|g| (g.generation.clone(), g.shards.iter().copied().collect()))
                .collect();
        }
        None => {
            peer.unreachable_since.get_or_insert(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_proto::wire::ReplicaState;
    use shard_proto::ShardId;
    use std::collections::BTreeSet;

    fn health(node: &str, shards: &[ShardId]) -> HealthResponse {
        let serving = ReplicaState::Serving {
            docs: 1,
            bytes: 1,
            generation: None,
        };
        let mut replicas: Vec<_> = shards.iter().map(|s| (*s, serving.clone())).collect();
        let failed = ShardId::new(0, 1, 9, 10).unwrap();
        replicas.push((failed, ReplicaState::Failed("corrupt".into())));
        HealthResponse {
            node: node.into(),
            pid: 1,
            uptime_millis: 0,
            in_flight: 0,
            replicas,
            healing: Vec::new(),
            generations: Vec::new(),
            wire_version: WIRE_VERSION,
            schema: String::new(),
        }
    }

    #[test]
    fn unreachable_from_the_first_failed_probe_until_a_good_answer() {
        let peers: Peers = Peers::default();
        let shard = ShardId::new(0, 1, 0, 10).unwrap();
        let t0 = Instant::now();
        record(&peers, "b", Some(&health("b", &[shard])), t0);
        assert_eq!(peers.lock()["b"].serving, BTreeSet::from([shard]));
        assert_eq!(peers.lock()["b"].unreachable_since, None);
        for later in [1, 2, 3] {
            record(&peers, "b", None, t0 + Duration::from_secs(later));
        }
        let since = peers.lock()["b"].unreachable_since;
        assert_eq!(
            since,
            Some(t0 + Duration::from_secs(1)),
            "from the first failure"
        );
        record(
            &peers,
            "b",
            Some(&health("b", &[])),
            t0 + Duration::from_secs(4),
        );
        assert_eq!(peers.lock()["b"].unreachable_since, None);
        assert!(peers.lock()["b"].serving.is_empty());
        // Whatever answers as another node, or in another wire version, is not the peer.
        assert!(check("b", health("c", &[])).is_none());
        let old = HealthResponse {
            wire_version: WIRE_VERSION - 1,
            ..health("b", &[])
        };
        assert!(check("b", old).is_none());
    }
}
