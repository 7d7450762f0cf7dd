//! The `switch` fault: a generation switch under load. At `--at` the store's alias moves
//! to `--generation ID` (as `indexer generations switch ID` does), the drill times how long
//! until the front-end answers from it, and after `--heal-after` it switches back to the
//! generation that was live and times that too. Both times go to the timeline; the load's
//! p99 during the fault is the p99 during the switch.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::cluster_procs::Frontend;
use super::hands::{Event, Hands};

/// How long the front-end may take to answer from a switched generation (nodes install
/// it first).
const SWITCH_TIMEOUT: Duration = Duration::from_secs(300);

/// The two switches, timed: each from the alias moving to the first answer from the
/// generation it names.
#[derive(Clone, Debug)]
pub struct SwitchTimes {
    pub from: String,
    pub to: String,
    pub switched_at: Instant,
    pub to_answering: Duration,
    pub back_at: Instant,
    pub back_answering: Duration,
}

/// Switches to `to`, waits `heal_after`, switches back; `event` prints timeline lines.
pub async fn run(
    hands: &Hands,
    to: &str,
    heal_after: Duration,
    frontend: &Frontend,
    event: &Event<'_>,
) -> anyhow::Result<SwitchTimes> {
    let from = hands.live_generation().await?;
    if from == to {
        bail!("generation {to} is already live: --generation must name another one");
    }
    let (switched_at, to_answering) = switch_and_wait(hands, to, frontend, event).await?;
    tokio::time::sleep(heal_after).await;
    let (back_at, back_answering) = switch_and_wait(hands, &from, frontend, event).await?;
    Ok(SwitchTimes {
        from,
        to: to.to_string(),
        switched_at,
        to_answering,
        back_at,
        back_answering,
    })
}

async fn switch_and_wait(
    hands: &Hands,
    to: &str,
    frontend: &Frontend,
    event: &Event<'_>,
) -> anyhow::Result<(Instant, Duration)> {
    let asked = Instant::now();
    let from = hands.switch_generation(to).await?;
    event(asked, format!("alias: generation {from} → {to}"));
    loop {
        if let Ok((200, body)) = frontend.get_json("/search?q=the&size=1").await {
            if body["generation"] == to {
                let now = Instant::now();
                let took = now.duration_since(asked);
                event(
                    now,
                    format!(
                        "front-end answers from generation {to} ({:.2} s after the switch)",
                        took.as_secs_f64()
                    ),
                );
                return Ok((asked, took));
            }
        }
        if asked.elapsed() > SWITCH_TIMEOUT {
            bail!(
                "the front-end still does not answer from generation {to} after {SWITCH_TIMEOUT:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
