//! The faults the drill injects, and how each one is healed.
//!
//! A fault is a short script over the cluster's nodes: inject at `--at`, wait
//! `--heal-after`, heal, then wait until the front-end reports every target serving again.
//! The [`Hands`] do the harm where the nodes run (local processes or Compose containers)
//! and undo whatever is not healed yet if the drill ends early, so the drill leaves the
//! cluster as it found it.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::cluster_procs::Monitor;
use super::hands::{Event, Hands, Injury};
use super::restore::{RestoreWatch, Restored};
use super::switch::SwitchTimes;

/// How long a node may take to serve again after it was healed or started.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The kinds of failure a drill can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL one node (`docker kill` with --compose); start it again after --heal-after.
    Kill,
    /// SIGSTOP one node (`docker pause`: hung, still holding its connections); SIGCONT
    /// (`unpause`) after --heal-after.
    Stop,
    /// SIGTERM one node (`docker stop`: graceful drain) and start it again at once.
    Restart,
    /// SIGKILL every replica of one shard; start them again after --heal-after.
    KillShard,
    /// Each node in turn: SIGTERM, start again, wait until it serves again.
    RollingRestart,
    /// Drop all traffic to and from one node's RPC port (with --compose: disconnect its
    /// container from the project's networks); undone after --heal-after.
    Partition,
    /// Switch the store's live index generation to --generation; back after --heal-after.
    Switch,
}

impl Fault {
    /// The name on the command line (`kill-shard`...).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "stop",
            Fault::Restart => "restart",
            Fault::KillShard => "kill-shard",
            Fault::RollingRestart => "rolling-restart",
            Fault::Partition => "partition",
            Fault::Switch => "switch",
        }
    }

    /// Whether `--heal-after` means anything for this fault.
    pub fn uses_heal_after(self) -> bool {
        !matches!(self, Fault::Restart | Fault::RollingRestart)
    }
}

/// A node the fault acts on, with what the monitor saw of it.
#[derive(Clone, Debug)]
pub struct TargetOutcome {
    pub node: String,
    pub pid_before: Option<u32>,
    /// The monitor's count of the node's processes before the fault (a restart makes it
    /// grow).
    pub incarnation_before: Option<u64>,
    pub injected_at: Option<Instant>,
    pub healed_at: Option<Instant>,
    /// First time the front-end reported it `down` after the fault was injected.
    pub ejected_at: Option<Instant>,
    /// When the front-end reported it `up` again (in a new process if restarted).
    pub serving_at: Option<Instant>,
}

/// What a fault script needs besides the hands: the monitor, the event printer.
pub struct FaultContext {
    pub monitor: Monitor,
    /// Prints one event line of the timeline.
    pub event: Box<Event<'static>>,
    /// The `switch` fault: the generation to switch to, and the front-end.
    pub switch: Option<(String, super::cluster_procs::Frontend)>,
    /// `--no-restart`: killed nodes stay down, and the drill watches the cluster restore
    /// every shard's copies without them.
    pub restore: Option<RestoreWatch>,
}

/// What a fault script measured.
pub struct FaultResult {
    /// One per target node (none for `switch`).
    pub outcomes: Vec<TargetOutcome>,
    /// `--no-restart`: the restore of every shard's copies.
    pub restored: Option<Restored>,
    /// `switch`: both switches, timed.
    pub switched: Option<SwitchTimes>,
}

/// The harm `fault` does to each target, for the faults that inject and heal.
fn injury(fault: Fault, permanent: bool) -> Option<Injury> {
    match fault {
        Fault::Kill | Fault::KillShard => Some(Injury::Kill { permanent }),
        Fault::Stop => Some(Injury::Pause),
        Fault::Partition => Some(Injury::Partition),
        Fault::Restart | Fault::RollingRestart | Fault::Switch => None,
    }
}

/// Runs the fault script: waits until `inject_at`, injects, heals after `heal_after`, and
/// waits until every target serves again (or, with `--no-restart`, until the cluster has
/// restored every shard's copies without them).
pub async fn run_fault(
    fault: Fault,
    targets: &[String],
    inject_at: Instant,
    heal_after: Duration,
    hands: &mut Hands,
    ctx: &FaultContext,
) -> anyhow::Result<FaultResult> {
    let mut outcomes: Vec<TargetOutcome> = targets
        .iter()
        .map(|node| TargetOutcome {
            node: node.clone(),
            pid_before: hands.pid_before(node),
            incarnation_before: None,
            injected_at: None,
            healed_at: None,
            ejected_at: None,
            serving_at: None,
        })
        .collect();
    let (mut restored, mut switched) = (None, None);
    tokio::time::sleep_until(inject_at.into()).await;
    for outcome in &mut outcomes {
        outcome.incarnation_before = ctx.monitor.incarnation(&outcome.node);
    }
    let permanent = ctx.restore.is_some();
    match (fault, &ctx.restore, injury(fault, permanent)) {
        (Fault::Switch, _, _) => {
            let (to, frontend) = ctx.switch.as_ref().context("switch needs --generation")?;
            let times = super::switch::run(hands, to, heal_after, frontend, &*ctx.event);
            switched = Some(times.await?);
        }
        (Fault::Restart | Fault::RollingRestart, _, _) => {
            for outcome in &mut outcomes {
                restart_one(outcome, hands, ctx).await?;
            }
        }
        (_, Some(watch), Some(injury)) => {
            // The copies before the loss: new copies are counted against them.
            let before = watch.before().await?;
            let since = Instant::now();
            inject_all(injury, &mut outcomes, hands, ctx).await?;
            let lost: Vec<String> = outcomes.iter().map(|o| o.node.clone()).collect();
            let restore = watch.wait(&before, &lost, since, &*ctx.event).await;
            for outcome in &mut outcomes {
                outcome.healed_at = restore.at;
            }
            restored = Some(restore);
        }
        (_, _, Some(injury)) => {
            inject_all(injury, &mut outcomes, hands, ctx).await?;
            tokio::time::sleep(heal_after).await;
            for outcome in &mut outcomes {
                let done = hands.heal(injury, &outcome.node).await?;
                (ctx.event)(done.at, done.line);
                outcome.healed_at = Some(done.at);
            }
            let restarted = matches!(injury, Injury::Kill { .. });
            for outcome in &mut outcomes {
                wait_serving(outcome, restarted, ctx).await;
            }
        }
        (_, _, None) => unreachable!("every other fault injects an injury"),
    }
    for outcome in &mut outcomes {
        if let Some(injected) = outcome.injected_at {
            let monitor = &ctx.monitor;
            let already_down = monitor.state_at(&outcome.node, injected).as_deref() == Some("down");
            outcome.ejected_at = if already_down {
                Some(injected)
            } else {
                monitor.first_seen(&outcome.node, "down", injected)
            };
        }
    }
    Ok(FaultResult {
        outcomes,
        restored,
        switched,
    })
}

async fn inject_all(
    injury: Injury,
    outcomes: &mut [TargetOutcome],
    hands: &mut Hands,
    ctx: &FaultContext,
) -> anyhow::Result<()> {
    for outcome in outcomes {
        let done = hands.inject(injury, &outcome.node).await?;
        (ctx.event)(done.at, done.line);
        outcome.injected_at = Some(done.at);
    }
    Ok(())
}

/// A graceful stop and a start, then wait until serving.
async fn restart_one(
    outcome: &mut TargetOutcome,
    hands: &mut Hands,
    ctx: &FaultContext,
) -> anyhow::Result<()> {
    // In a rolling restart the node may have restarted since the drill began.
    outcome.incarnation_before = ctx.monitor.incarnation(&outcome.node);
    outcome.injected_at = Some(Instant::now());
    outcome.healed_at = Some(hands.restart(&outcome.node, &*ctx.event).await?);
    wait_serving(outcome, true, ctx).await;
    Ok(())
}

async fn wait_serving(outcome: &mut TargetOutcome, restarted: bool, ctx: &FaultContext) {
    let since = outcome.healed_at.unwrap_or_else(Instant::now);
    let old = if restarted {
        outcome.incarnation_before
    } else {
        None
    };
    outcome.serving_at = ctx
        .monitor
        .wait_up(&outcome.node, since, old, REJOIN_TIMEOUT)
        .await;
    match outcome.serving_at {
        Some(at) => (ctx.event)(at, format!("node {} serving again", outcome.node)),
        None => (ctx.event)(
            Instant::now(),
            format!(
                "node {} NOT serving {REJOIN_TIMEOUT:?} after it was healed",
                outcome.node
            ),
        ),
    }
}
