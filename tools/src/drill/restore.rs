//! A permanent loss (`--fault kill --no-restart`): the killed nodes stay down, and the drill
//! times how long the cluster takes to restore every shard to R serving copies on its own
//! (the nodes' self-healing, issue "a cluster that heals itself"), and counts what it
//! moved to get there.
//!
//! Everything comes from `GET /cluster`: a shard's `serving` list is what its nodes report
//! serving, and a node reports a copy only once it is installed and every file verified
//! against the manifest, so "R serving copies" is "R verified copies". The bytes moved are
//! the bytes of every copy that appeared during the drill, as its node reports them (a copy
//! installed on a new holder, counted once).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use searcher::model::{ClusterView, NodeHealth};

use super::cluster_procs::Frontend;

/// How long the cluster may take to restore R copies before the drill gives up waiting.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(600);
/// How often `/cluster` is read while waiting.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// What the drill needs to watch a restore.
#[derive(Clone)]
pub struct RestoreWatch {
    pub frontend: Frontend,
    /// The cluster file's replication factor R.
    pub replication: usize,
}

/// The restore, measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Restored {
    /// When every shard had its copies again (`None`: not within the timeout).
    #[serde(skip)]
    pub at: Option<Instant>,
    /// Copies each shard needed: R, or fewer when fewer nodes are left.
    pub copies: usize,
    /// Copies installed on new holders, as `shard@node`.
    pub installed: Vec<String>,
    pub bytes: u64,
    /// Shards still short of copies when the drill stopped waiting.
    pub short: Vec<String>,
}

/// (shard, node) pairs serving, as `/cluster` reports them.
type Serving = BTreeSet<(String, String)>;

fn serving(view: &ClusterView) -> Serving {
    view.shards
        .iter()
        .flat_map(|s| s.serving.iter().map(|n| (s.id.clone(), n.clone())))
        .collect()
}

/// The bytes of each serving copy, as its node reports them.
fn copy_bytes(view: &ClusterView) -> BTreeMap<(String, String), u64> {
    view.shards
        .iter()
        .flat_map(|s| {
            s.replicas
                .iter()
                .filter_map(|r| Some(((s.id.clone(), r.node.clone()), r.bytes?)))
        })
        .collect()
}

impl RestoreWatch {
    /// The serving copies before the fault (the baseline new copies are counted against).
    pub async fn before(&self) -> anyhow::Result<Serving> {
        Ok(serving(&self.frontend.cluster().await?))
    }

    /// Waits until every shard has `min(R, nodes left)` serving copies on nodes other than
    /// `lost`; `event` prints the restore in the timeline.
    pub async fn wait(
        &self,
        before: &Serving,
        lost: &[String],
        since: Instant,
        event: &(dyn Fn(Instant, String) + Send + Sync),
    ) -> Restored {
        let mut restored = Restored {
            at: None,
            copies: self.replication,
            installed: Vec::new(),
            bytes: 0,
            short: Vec::new(),
        };
        loop {
            if let Ok(view) = self.frontend.cluster().await {
                self.measure(&view, before, lost, &mut restored);
                if restored.short.is_empty() {
                    let now = Instant::now();
                    restored.at = Some(now);
                    event(now, self.describe(&restored, now.duration_since(since)));
                    return restored;
                }
            }
            if since.elapsed() > RESTORE_TIMEOUT {
                event(
                    Instant::now(),
                    format!(
                        "shards {} still short of {} copies {RESTORE_TIMEOUT:?} after the loss",
                        restored.short.join(", "),
                        restored.copies
                    ),
                );
                return restored;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    fn measure(&self, view: &ClusterView, before: &Serving, lost: &[String], into: &mut Restored) {
        let left = view
            .nodes
            .iter()
            .filter(|n| !lost.contains(&n.id) && n.state != NodeHealth::Down)
            .count();
        into.copies = self.replication.min(left);
        let now: Serving = serving(view)
            .into_iter()
            .filter(|(_, node)| !lost.contains(node))
            .collect();
        into.short = view
            .shards
            .iter()
            .filter(|s| now.iter().filter(|(shard, _)| *shard == s.id).count() < into.copies)
            .map(|s| s.id.clone())
            .collect();
        let new: Vec<&(String, String)> = now.difference(before).collect();
        into.installed = new.iter().map(|(s, n)| format!("{s}@{n}")).collect();
        let bytes = copy_bytes(view);
        into.bytes = new.iter().filter_map(|copy| bytes.get(*copy)).sum();
    }

    fn describe(&self, restored: &Restored, took: Duration) -> String {
        format!(
            "every shard has {} serving copies again, {:.2} s after the loss: {} copies \
             installed ({}), {} bytes",
            restored.copies,
            took.as_secs_f64(),
            restored.installed.len(),
            restored.installed.join(", "),
            restored.bytes
        )
    }
}
