//! Which nodes hold which shard: rendezvous (highest-random-weight) hashing of the shard
//! id over the node ids, top R.
//!
//! Every process computes the same table from the cluster file alone, so nodes know what
//! to load and front-ends know where to send, with no coordinator. Rendezvous hashing moves
//! only the shards of a node that joins or leaves, and spreads replicas evenly.

use std::collections::BTreeMap;

use shard_proto::ShardId;

use crate::cluster::ClusterConfig;

/// Shard → replica nodes (node ids, best first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub replicas: BTreeMap<ShardId, Vec<String>>,
}

/// The rendezvous weight of a (shard, node) pair: a stable hash, identical on every machine
/// and Rust version.
pub fn weight(shard: &ShardId, node_id: &str) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(shard.to_string().as_bytes());
    hasher.update(&[0]);
    hasher.update(node_id.as_bytes());
    let digest = hasher.finalize();
    u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"))
}

impl Placement {
    /// Places `shards` over `node_ids` with `replication` copies each.
    pub fn compute<'a>(
        shards: impl IntoIterator<Item = ShardId>,
        node_ids: impl IntoIterator<Item = &'a str> + Clone,
        replication: usize,
    ) -> Self {
        let mut replicas = BTreeMap::new();
        for shard in shards {
            let mut ranked: Vec<(u64, &str)> = node_ids
                .clone()
                .into_iter()
                .map(|node| (weight(&shard, node), node))
                .collect();
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            let chosen = ranked
                .into_iter()
                .take(replication)
                .map(|(_, node)| node.to_string())
                .collect();
            replicas.insert(shard, chosen);
        }
        Placement { replicas }
    }

    /// Placement of the given shards over the cluster's nodes (those marked `drain`
    /// excepted).
    pub fn for_cluster(config: &ClusterConfig, shards: impl IntoIterator<Item = ShardId>) -> Self {
        Self::compute(shards, config.placed_nodes(), config.replication)
    }

    /// The shards a node must hold.
    pub fn shards_of(&self, node_id: &str) -> Vec<ShardId> {
        self.replicas
            .iter()
            .filter(|(_, nodes)| nodes.iter().any(|n| n == node_id))
            .map(|(shard, _)| *shard)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: u32) -> Vec<ShardId> {
        (0..n).map(|s| ShardId::new(0, 1, s, n).unwrap()).collect()
    }

    #[test]
    fn every_shard_gets_r_distinct_nodes() {
        let nodes = ["a", "b", "c"];
        let placement = Placement::compute(shards(6), nodes, 2);
        for replicas in placement.replicas.values() {
            assert_eq!(replicas.len(), 2);
            assert_ne!(replicas[0], replicas[1]);
        }
        let held: usize = nodes.iter().map(|n| placement.shards_of(n).len()).sum();
        assert_eq!(held, 12);
    }

    #[test]
    fn placement_is_deterministic_and_moves_little_when_a_node_joins() {
        let before = Placement::compute(shards(60), ["a", "b", "c"], 1);
        assert_eq!(before, Placement::compute(shards(60), ["c", "a", "b"], 1));
        let after = Placement::compute(shards(60), ["a", "b", "c", "d"], 1);
        let moved = before
            .replicas
            .iter()
            .filter(|(s, nodes)| after.replicas[*s] != **nodes)
            .count();
        // Only shards that now rank "d" first move.
        assert!(after.replicas.values().filter(|n| n[0] == "d").count() == moved);
        assert!(moved < 30, "moved {moved} of 60");
    }

    #[test]
    fn placement_hashes_node_ids_never_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let file = |rpcs: [&str; 3]| {
            let mut text = "shard_store = \"s\"\nreplication = 2\n".to_string();
            for (id, rpc) in ["a", "b", "c"].iter().zip(rpcs) {
                text.push_str(&format!("[[node]]\nid = \"{id}\"\nrpc = \"{rpc}\"\n"));
            }
            let path = dir.path().join("cluster.toml");
            std::fs::write(&path, text).unwrap();
            ClusterConfig::load(&path).unwrap()
        };
        let before = file(["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]);
        let moved = file(["10.9.9.9:7100", "b.search:7000", "[::1]:7000"]);
        assert_eq!(
            Placement::for_cluster(&before, shards(12)),
            Placement::for_cluster(&moved, shards(12))
        );
    }
}
