//! Following the cluster file while a process runs: nodes (healing) and coordinators
//! (routing) both look at its modification time and size every probe interval and read
//! it again when either changed. Polling, rather than a SIGHUP, works the same for an
//! edited file, a file replaced by `mv` and a Kubernetes ConfigMap update, and needs no
//! process to signal.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cluster::ClusterConfig;

/// The cluster file, watched for changes by modification time and size.
pub struct WatchedClusterFile {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
}

impl WatchedClusterFile {
    /// Watches `path`; its content now counts as seen.
    pub fn new(path: &Path) -> WatchedClusterFile {
        WatchedClusterFile {
            path: path.to_path_buf(),
            stamp: stamp(path),
        }
    }

    /// The file this process was started with, if it was loaded from one.
    pub fn of(config: &ClusterConfig) -> Option<WatchedClusterFile> {
        config.source.0.as_deref().map(WatchedClusterFile::new)
    }

    /// The file's new content, if it changed since the last look and reads well (a file
    /// that does not, e.g. half-written, is logged and read again at its next change).
    pub fn changed(&mut self) -> Option<ClusterConfig> {
        let now = stamp(&self.path);
        if now == self.stamp {
            return None;
        }
        self.stamp = now;
        match ClusterConfig::load(&self.path) {
            Ok(config) => Some(config),
            Err(error) => {
                tracing::warn!(%error, "cluster file changed but cannot be used: ignored");
                None
            }
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
