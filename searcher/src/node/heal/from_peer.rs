//! Where a healing install goes when the shard store cannot give a good copy (an object
//! corrupted or missing, the store unreachable): to the peers that reported serving the
//! shard in their last health answer, one after the other, over the authenticated RPC
//! (`node/replica_chunks.rs`). The node keeps the peers' addresses and the cluster key for
//! this, following the cluster file like its probes do.

use std::collections::BTreeMap;
use std::time::Duration;

use shard_proto::auth::ClusterKey;
use shard_proto::ShardId;

use super::decide::Peer;
use crate::addr::NodeAddr;
use crate::cluster::ClusterConfig;
use crate::rpc::NodeClient;

/// How to reach the other nodes.
pub struct PeerLinks {
    key: ClusterKey,
    connect: Duration,
    addrs: BTreeMap<String, NodeAddr>,
}

impl PeerLinks {
    pub fn new(config: &ClusterConfig, key: ClusterKey) -> PeerLinks {
        let mut links = PeerLinks {
            key,
            connect: config.timeouts.connect(),
            addrs: BTreeMap::new(),
        };
        links.follow(config);
        links
    }

    /// Takes the node list of a changed cluster file.
    pub fn follow(&mut self, config: &ClusterConfig) {
        self.addrs = (config.nodes.iter())
            .map(|n| (n.id.clone(), n.rpc.clone()))
            .collect();
    }

    /// Clients of the reachable peers that reported serving `shard`.
    pub fn holders(&self, peers: &BTreeMap<String, Peer>, shard: &ShardId) -> Vec<NodeClient> {
        peers
            .iter()
            .filter(|(_, peer)| peer.unreachable_since.is_none() && peer.serving.contains(shard))
            .filter_map(|(id, _)| {
                let addr = self.addrs.get(id)?;
                Some(NodeClient::new(
                    id.clone(),
                    addr.clone(),
                    self.connect,
                    self.key.clone(),
                ))
            })
            .collect()
    }
}
