//! How the drill breaks and heals nodes where they run: [`local`] node processes of this
//! machine (signals, `tc` filters on loopback), or the containers of a Compose project
//! ([`compose`]: `docker kill`, `pause`, `network disconnect`, `stop`). The fault scripts
//! ([`super::faults`]) are the same for both; only the hands differ. Dropping the hands
//! undoes every harm not yet healed.

pub mod compose;
pub mod local;

use std::time::{Duration, Instant};

use compose::ComposeHands;
use local::LocalHands;

/// How long a stopped node may take to drain before it is killed, and a killed one to be
/// gone.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Prints one event line of the timeline.
pub type Event<'a> = dyn Fn(Instant, String) + Send + Sync + 'a;

/// One action on a node: when it was taken (just before the signal or the `docker`
/// command, which takes a while itself) and the timeline's line for it.
pub struct Done {
    pub at: Instant,
    pub line: String,
}

/// A harm done to one node, undone by [`Hands::heal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injury {
    /// The node (process or host) dies at once; `permanent`: never started again.
    Kill { permanent: bool },
    /// Hung: it keeps its sockets and answers nothing.
    Pause,
    /// Cut off the network, both directions.
    Partition,
}

/// Local processes or Compose containers.
pub enum Hands {
    Local(LocalHands),
    Compose(ComposeHands),
}

impl Hands {
    /// Does `injury` to `node`.
    pub async fn inject(&mut self, injury: Injury, node: &str) -> anyhow::Result<Done> {
        match self {
            Hands::Local(hands) => hands.inject(injury, node),
            Hands::Compose(hands) => hands.inject(injury, node).await,
        }
    }

    /// Undoes `injury` (a killed node is started again).
    pub async fn heal(&mut self, injury: Injury, node: &str) -> anyhow::Result<Done> {
        match self {
            Hands::Local(hands) => hands.heal(injury, node).await,
            Hands::Compose(hands) => hands.heal(injury, node).await,
        }
    }

    /// A graceful stop (the node drains), then a start; `event` prints both. When the
    /// start was begun.
    pub async fn restart(&mut self, node: &str, event: &Event<'_>) -> anyhow::Result<Instant> {
        match self {
            Hands::Local(hands) => hands.restart(node, event).await,
            Hands::Compose(hands) => hands.restart(node, event).await,
        }
    }

    /// The node's pid when the drill planned (local processes only).
    pub fn pid_before(&self, node: &str) -> Option<u32> {
        match self {
            Hands::Local(hands) => hands.pid_before(node),
            Hands::Compose(_) => None,
        }
    }

    /// The generation the store's alias names.
    pub async fn live_generation(&self) -> anyhow::Result<String> {
        match self {
            Hands::Local(hands) => hands.live_generation().await,
            Hands::Compose(hands) => hands.live_generation().await,
        }
    }

    /// Moves the store's alias to `to`; the generation it named before.
    pub async fn switch_generation(&self, to: &str) -> anyhow::Result<String> {
        match self {
            Hands::Local(hands) => hands.switch_generation(to).await,
            Hands::Compose(hands) => hands.switch_generation(to).await,
        }
    }
}
