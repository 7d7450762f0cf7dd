//! A holder ejected for timeouts (not for refusing connections) is kept as a last resort
//! (`NodeHandle::last_resort_for`), in the failover core (`failover_tests`' scripted nodes
//! and paused clock): it is asked when the live replica fails, but never cuts the live
//! replica's attempt short. A killed container whose name stops resolving looks exactly
//! like such a node, and cutting the live replica at the attempt timeout to wait on it
//! turned slow answers into partial ones.

use std::time::Duration;

use tokio::time::Instant;

use super::failover_tests::{shard, timeouts, Act, Cluster};
use crate::cluster::Timeouts;
use crate::frontend::nodes::AttemptError;
use crate::frontend::policy::HedgeBudget;
use crate::model::NodeHealth;

/// Two nodes holding shard 0; node 1 ejected after timing out (a last resort), node 0 live.
fn one_live_one_last_resort() -> Cluster {
    let timeouts = Timeouts {
        eject_after_failures: 1,
        ..timeouts()
    };
    let cluster = Cluster::new(2, &[&[0, 1]], timeouts, HedgeBudget::new(1.0, 10.0));
    assert!(cluster.handle(1).record_failure(&AttemptError::Timeout));
    assert_eq!(cluster.handle(1).state(), NodeHealth::Down);
    cluster
}

#[tokio::test(start_paused = true)]
async fn a_live_replica_slower_than_the_attempt_timeout_is_waited_for_not_cut_short() {
    let cluster = one_live_one_last_resort();
    // n0 answers after three attempt timeouts, within the deadline; n1 never answers.
    let slow = timeouts().attempt() * 3;
    cluster.nodes[0].own.set(vec![Act::Answer(slow)]);
    cluster.nodes[1]
        .own
        .set(vec![Act::Answer(Duration::from_secs(60))]);
    let start = Instant::now();
    let gathered = cluster.scatter().await;
    assert!(gathered.failures.is_empty(), "{:?}", gathered.failures);
    assert_eq!(gathered.answers[&shard(0)].node, 0);
    assert_eq!(Instant::now() - start, slow);
    assert!(
        cluster.calls_since(1, start).is_empty(),
        "the ejected holder is not asked while the live one may still answer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_live_replica_still_falls_back_on_the_last_resort() {
    let cluster = one_live_one_last_resort();
    cluster.nodes[0]
        .own
        .set(vec![Act::Fail(AttemptError::Status(503, "busy".into()))]);
    cluster.nodes[1]
        .own
        .set(vec![Act::Answer(timeouts().attempt() * 2)]);
    let start = Instant::now();
    let gathered = cluster.scatter().await;
    assert!(gathered.failures.is_empty(), "{:?}", gathered.failures);
    assert_eq!(gathered.answers[&shard(0)].node, 1);
    assert_eq!(cluster.calls_since(1, start).len(), 1);
}
