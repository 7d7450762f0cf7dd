//! The background scrub: re-verifies the node's serving replicas against their manifests
//! (size and blake3 of every file), at a bounded read rate, so that bit rot or a file
//! rewritten after install is found by the node rather than served. It covers every
//! replica the leaf holds when it looks: those installed at start, those healing added
//! since, and those of every named index generation.
//!
//! A full pass starts every `pass_every_s` (the install just verified everything, so the
//! first pass waits one period); a replica on which a read failed is marked suspect by the
//! leaf and re-verified within a second. A replica that fails is dropped: its shard is
//! answered as failed, health reports it with the file that failed, and the front-end
//! asks another replica (and the healer, which sees the shard no longer served here,
//! installs a fresh copy). The thread holds only a weak reference to the leaf, and ends
//! once the node is gone.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::leaf::Leaf;
use super::replicas::Replica;

/// How the scrub runs (the cluster file's `[scrub]` table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrubConfig {
    /// Read rate of the scrub, in MiB/s; 0 turns the scrub (and suspect checks) off.
    pub mib_per_s: u64,
    /// Seconds between the starts of two full passes.
    pub pass_every_s: u64,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            mib_per_s: 16,
            pass_every_s: 3600,
        }
    }
}

/// How often the scrub looks for suspect replicas and for its next pass.
const TICK: Duration = Duration::from_millis(250);

/// Starts the scrub thread over the replicas of `leaf` (nothing when the scrub is off).
pub fn spawn(leaf: &Arc<Leaf>, config: &ScrubConfig) -> std::io::Result<()> {
    if config.mib_per_s == 0 {
        return Ok(());
    }
    let scrub = Scrub {
        leaf: Arc::downgrade(leaf),
        bytes_per_s: config.mib_per_s.saturating_mul(1 << 20),
        every: Duration::from_secs(config.pass_every_s.max(1)),
    };
    thread::Builder::new()
        .name("scrub".into())
        .spawn(move || scrub.run())
        .map(drop)
}

struct Scrub {
    leaf: Weak<Leaf>,
    bytes_per_s: u64,
    every: Duration,
}

impl Scrub {
    fn run(&self) {
        let mut next_pass = Instant::now() + self.every;
        loop {
            let Some(live) = self.replicas() else {
                return;
            };
            for replica in live.iter().filter(|r| r.take_suspect()) {
                self.verify(replica);
            }
            if Instant::now() >= next_pass {
                for replica in &live {
                    self.verify(replica);
                }
                next_pass = Instant::now() + self.every;
            }
            drop(live);
            thread::sleep(TICK);
        }
    }

    /// Every replica the leaf holds now, base and named generations (`None`: the node is
    /// gone). The leaf itself is not kept: a pass must not keep a stopped node alive.
    fn replicas(&self) -> Option<Vec<Arc<Replica>>> {
        let leaf = self.leaf.upgrade()?;
        let mut replicas = leaf.base_replicas();
        replicas.extend(leaf.generations.all_replicas());
        Some(replicas)
    }

    /// Re-verifies one replica at the configured rate; drops it on the first bad file.
    fn verify(&self, replica: &Replica) {
        if replica.dropped().is_some() {
            return;
        }
        let started = Instant::now();
        let mut read = 0u64;
        let mut pace = |bytes: u64| {
            read += bytes;
            let due = Duration::from_secs_f64(read as f64 / self.bytes_per_s as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                thread::sleep(wait);
            }
        };
        for entry in &replica.manifest.files {
            if let Err(e) = replica.manifest.verify_file(&replica.dir, entry, &mut pace) {
                replica.drop_corrupt(e.to_string());
                return;
            }
        }
        tracing::debug!(shard = %replica.shard, bytes = read, "replica re-verified");
    }
}
