//! The node's own shards as one more node of the fan-out: a [`NodeTransport`] that runs
//! each phase on the node's [`Leaf`] in-process, for a node that coordinates searches.
//!
//! A call takes the same path as an RPC once it is inside the node (`NodeState::call_local`:
//! the search permit queue, the rayon pool, the deadline, cancellation when the caller
//! drops it, the node's metrics) and skips what only a remote caller needs: HTTP, the
//! cluster-key MAC, bincode frames. Its refusals come back as the status codes an RPC
//! would carry, so the failover core classifies, retries and hedges a slow or failing
//! local shard on a remote replica exactly as it does for any node. Health is the node's
//! own report (what its leaf serves), read in-process: no probe crosses the network.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use shard_proto::wire::HealthResponse;

use crate::frontend::nodes::{AttemptError, NodeTransport, RpcCall, RpcReply};
use crate::node::leaf::Leaf;
use crate::node::server::{NodeState, Refused};

/// This process's node, reached without leaving the process.
pub struct LocalTransport {
    node: Arc<NodeState>,
}

impl LocalTransport {
    pub fn new(node: Arc<NodeState>) -> Self {
        LocalTransport { node }
    }
}

impl From<Refused> for AttemptError {
    fn from(Refused(status, reason): Refused) -> Self {
        AttemptError::Status(status.as_u16(), reason)
    }
}

impl NodeTransport for LocalTransport {
    fn call(
        &self,
        call: RpcCall,
        budget: Duration,
    ) -> BoxFuture<'static, Result<RpcReply, AttemptError>> {
        let node = Arc::clone(&self.node);
        Box::pin(async move {
            let reply = match call {
                RpcCall::Stats(r) => RpcReply::Stats(
                    node.call_local(budget, move |leaf: &Leaf, stop| leaf.stats(&r, stop))
                        .await?,
                ),
                RpcCall::Search(r) => RpcReply::Search(
                    node.call_local(budget, move |leaf: &Leaf, stop| leaf.search(&r, stop))
                        .await?,
                ),
                RpcCall::Fetch(r) => RpcReply::Fetch(
                    node.call_local(budget, move |leaf: &Leaf, stop| leaf.fetch(&r, stop))
                        .await?,
                ),
                RpcCall::Suggest(r) => RpcReply::Suggest(
                    node.call_local(budget, move |leaf: &Leaf, stop| leaf.suggest(&r, stop))
                        .await?,
                ),
            };
            Ok(reply)
        })
    }

    fn health(&self) -> BoxFuture<'static, Result<HealthResponse, AttemptError>> {
        let health = self.node.health();
        Box::pin(async move { Ok(health) })
    }
}
