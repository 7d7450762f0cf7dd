//! Background health checks: every probe interval each node is asked for its health.
//!
//! An answer brings a node back (up) with the replica states it reports — this is the only
//! way an ejected node rejoins, so a dead node costs the front-end one failed probe per
//! interval instead of one failed attempt per query. A failed probe counts like a failed
//! request, so an idle front-end also notices a node that died. Each node has its own
//! loop, so a hung node (SIGSTOP) never delays the probes of the others.
//!
//! A probe cannot be faked by whatever answers on the port: the answer must be a
//! well-formed, authenticated health frame (the request is signed with the cluster key)
//! naming the expected node, the front-end's wire version and its schema fingerprint;
//! anything else, a 4xx included, counts as a failure.

use std::sync::Arc;
use std::time::Duration;

use shard_proto::wire::{HealthResponse, WIRE_VERSION};
use shard_proto::WikiSchema;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::frontend::nodes::{AttemptError, NodeHandle};

/// Starts the probe loop of `node`; abort the handle to stop it.
pub fn spawn_prober(
    node: &Arc<NodeHandle>,
    interval: Duration,
    timeout: Duration,
) -> JoinHandle<()> {
    tokio::spawn(probe_loop(Arc::clone(node), interval, timeout))
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
    let checked = node
        .probe(timeout)
        .await
        .and_then(|health| check_identity(node, health));
    match checked {
        Ok(health) => node.record_health(&health),
        Err(error) => {
            tracing::debug!(node = %node.id, %error, "health probe failed");
            node.record_probe_failure(&error);
        }
    }
}

/// The health answer, if it comes from the expected node speaking this front-end's wire
/// version and schema.
fn check_identity(
    node: &NodeHandle,
    health: HealthResponse,
) -> Result<HealthResponse, AttemptError> {
    let wrong = |what: String| Err(AttemptError::Decode(format!("{} {what}", node.addr)));
    if health.node != node.id {
        return wrong(format!("answers as node {:?}", health.node));
    }
    if health.wire_version != WIRE_VERSION {
        return wrong(format!(
            "speaks wire version {} (this front-end {WIRE_VERSION})",
            health.wire_version
        ));
    }
    let schema = expected_schema();
    if health.schema != *schema {
        return wrong(format!(
            "has schema {} (this front-end {schema})",
            health.schema
        ));
    }
    Ok(health)
}

/// This binary's schema fingerprint, computed once.
fn expected_schema() -> &'static String {
    static FINGERPRINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FINGERPRINT.get_or_init(|| WikiSchema::new().fingerprint())
}
