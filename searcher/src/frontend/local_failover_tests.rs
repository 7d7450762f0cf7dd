//! The coordinating node's own shards in the failover core (`failover_tests`' scripted
//! nodes and paused clock): the local node is preferred while it is not overloaded, and a
//! slow or failing local shard is hedged or retried on a remote replica like any other.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::failover_tests::{shard, timeouts, Act, Cluster, StatsProbe, FAST};
use crate::frontend::nodes::AttemptError;
use crate::frontend::policy::HedgeBudget;
use crate::frontend::replica::LOCAL_COST_FACTOR;
use crate::frontend::scatter::Phase as _;

/// Two nodes holding shard 0, node 1 the coordinator's own.
fn local_cluster() -> Cluster {
    let budget = HedgeBudget::new(1.0, 10.0);
    Cluster::with_local(2, &[&[0, 1]], timeouts(), budget, Some(1))
}

#[tokio::test(start_paused = true)]
async fn the_local_node_answers_while_it_is_not_overloaded() {
    let cluster = local_cluster();
    cluster.warm_up().await;
    let start = Instant::now();
    for _ in 0..20 {
        let gathered = cluster.scatter().await;
        assert_eq!(gathered.answers[&shard(0)].node, 1);
    }
    // Without the preference, equal nodes would take turns.
    assert!(cluster.calls_since(0, start).is_empty());
    assert_eq!(cluster.calls_since(1, start).len(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_busy_local_node_loses_to_an_idle_remote_replica() {
    let cluster = local_cluster();
    cluster.warm_up().await;
    // Hold requests in flight on the local node until its discounted cost exceeds the
    // remote node's (same latency estimate, nothing in flight).
    cluster.nodes[1]
        .own
        .set(vec![Act::Answer(Duration::from_secs(60))]);
    let held = (1.0 / LOCAL_COST_FACTOR) as usize;
    let local = Arc::clone(&cluster.fanout.replicas.current().nodes[1]);
    for _ in 0..held {
        let local = Arc::clone(&local);
        let call = StatsProbe.call(vec![shard(0)]);
        tokio::spawn(async move { local.call(call, Duration::from_secs(60)).await });
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(local.in_flight() as usize, held);
    assert_eq!(
        cluster.fanout.replicas.current().ranking()[0],
        0,
        "the remote first"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_local_shard_is_hedged_on_a_remote_replica() {
    let cluster = local_cluster();
    cluster.warm_up().await;
    cluster.nodes[1]
        .own
        .set(vec![Act::Answer(Duration::from_secs(10))]);
    let start = Instant::now();
    let gathered = cluster.scatter().await;
    assert_eq!(
        cluster.calls_since(1, start),
        [start],
        "asked locally first"
    );
    let hedged = cluster.calls_since(0, start);
    assert_eq!(hedged.len(), 1, "one hedge, to the remote replica");
    assert!(hedged[0] - start >= cluster.handle(1).hedge_after());
    assert_eq!(gathered.answers[&shard(0)].node, 0);
    assert!(gathered.failures.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_local_shard_is_retried_on_a_remote_replica() {
    let cluster = local_cluster();
    cluster.warm_up().await;
    let busy = AttemptError::Status(503, "node busy: 256 calls already waiting".into());
    cluster.nodes[1]
        .own
        .set(vec![Act::Fail(busy), Act::Answer(FAST)]);
    let start = Instant::now();
    let gathered = cluster.scatter().await;
    assert_eq!(cluster.calls_since(1, start).len(), 1);
    assert_eq!(cluster.calls_since(0, start).len(), 1, "retried remotely");
    assert_eq!(gathered.answers[&shard(0)].node, 0);
    assert!(gathered.failures.is_empty());
}
