//! Background health checks: every probe interval each node is asked for its health.
//!
//! An answer brings a node back (up) with the replica states it reports — this is the only
//! way an ejected node rejoins, so a dead node costs the front-end one failed probe per
//! interval instead of one failed attempt per query. A failed probe counts like a failed
//! request, so an idle front-end also notices a node that died. Each node has its own
//! loop, so a hung node (SIGSTOP) never delays the probes of the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::frontend::nodes::NodeHandle;

/// Starts one probe loop per node; abort the handles to stop them.
pub fn spawn_probers(
    nodes: &[Arc<NodeHandle>],
    interval: Duration,
    timeout: Duration,
) -> Vec<JoinHandle<()>> {
    nodes
        .iter()
        .map(|node| tokio::spawn(probe_loop(Arc::clone(node), interval, timeout)))
        .collect()
}

async fn probe_loop(node: Arc<NodeHandle>, interval: Duration, timeout: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        probe_once(&node, timeout).await;
    }
}

/// One health check of one node, applied to its state.
pub async fn probe_once(node: &NodeHandle, timeout: Duration) {
    match node.probe(timeout).await {
        Ok(health) => {
            if health.node != node.id {
                let error = crate::frontend::nodes::AttemptError::Decode(format!(
                    "{} answers as node {:?}",
                    node.addr, health.node
                ));
                node.record_failure(&error);
                return;
            }
            node.record_health(&health);
        }
        Err(error) => {
            tracing::debug!(node = %node.id, %error, "health probe failed");
            node.record_failure(&error);
        }
    }
}
