//! The cluster description an operator writes (and the demo generates): searcher nodes,
//! the shard store, the replication factor, the front-end's address and timeouts.
//!
//! Everything a process knows about the cluster comes from this file plus the shard store
//! it names, so every node and front-end derive the same view without talking to each
//! other. Relative paths are resolved against the file's own directory.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shard_proto::manifest::ShardManifest;
use shard_proto::ShardId;

use crate::error::{Error, Result};

/// The parsed cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Directory holding the published shards (one sub-directory per shard, each with its
    /// manifest), as written by `indexer build --out`.
    pub shard_store: PathBuf,
    /// Copies of every shard, each on a different node.
    pub replication: usize,
    #[serde(default)]
    pub frontend: FrontendConfig,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(rename = "node")]
    pub nodes: Vec<NodeConfig>,
}

/// One searcher node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub id: String,
    /// Address of the node's internal RPC server.
    pub rpc: SocketAddr,
    /// Where the node keeps its replicas; default `<cluster dir>/nodes/<id>`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

/// The public HTTP front-end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendConfig {
    pub listen: SocketAddr,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// Timeouts and failure-detection settings, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// One RPC attempt to one node.
    pub attempt_ms: u64,
    /// A whole search, retries and hedges included.
    pub deadline_ms: u64,
    /// How often ejected nodes are probed, and how often the health of all is refreshed.
    pub probe_interval_ms: u64,
    /// TCP connect.
    pub connect_ms: u64,
    /// Consecutive failures after which a node is ejected.
    pub eject_after_failures: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            attempt_ms: 1_000,
            deadline_ms: 3_000,
            probe_interval_ms: 500,
            connect_ms: 250,
            eject_after_failures: 2,
        }
    }
}

impl Timeouts {
    pub fn attempt(&self) -> Duration {
        Duration::from_millis(self.attempt_ms)
    }
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
}

impl ClusterConfig {
    /// Reads, parses and validates a cluster file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: ClusterConfig = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate().map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(config)
    }

    /// Writes the file (used by the demo).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.shard_store = base.join(&self.shard_store);
        for node in &mut self.nodes {
            let dir = node
                .data_dir
                .take()
                .unwrap_or_else(|| Path::new("nodes").join(&node.id));
            node.data_dir = Some(base.join(dir));
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.nodes.is_empty() {
            return Err("no [[node]] entries".into());
        }
        if self.replication == 0 || self.replication > self.nodes.len() {
            return Err(format!(
                "replication = {} but there are {} nodes (need 1 <= replication <= nodes)",
                self.replication,
                self.nodes.len()
            ));
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for node in &self.nodes {
            if node.id.is_empty() || !ids.insert(node.id.as_str()) {
                return Err(format!("node id {:?} is empty or repeated", node.id));
            }
            if !addrs.insert(node.rpc) {
                return Err(format!("rpc address {} is used by two nodes", node.rpc));
            }
        }
        let t = &self.timeouts;
        if t.attempt_ms == 0 || t.deadline_ms < t.attempt_ms || t.probe_interval_ms == 0 {
            return Err(
                "timeouts: need 0 < attempt_ms <= deadline_ms and probe_interval_ms > 0".into(),
            );
        }
        Ok(())
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Result<&NodeConfig> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::UnknownNode(id.to_string()))
    }

    /// Reads every shard manifest in the shard store, sorted by shard id. Unreadable entries
    /// are returned as errors next to the good ones, so one bad shard is reported, not fatal.
    pub fn shard_manifests(&self) -> Result<Vec<std::result::Result<ShardManifest, String>>> {
        let store = &self.shard_store;
        let entries = std::fs::read_dir(store).map_err(|e| Error::io(store, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(store, e))?;
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !dir.is_dir() || name.parse::<ShardId>().is_err() {
                continue; // temporary build directories and stray files are not shards
            }
            found.push((name, ShardManifest::read(&dir).map_err(|e| e.to_string())));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().map(|(_, m)| m).collect())
    }
}

impl NodeConfig {
    /// The resolved data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir
            .as_deref()
            .expect("ClusterConfig::load resolves every data_dir")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("cluster.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const GOOD: &str = r#"
shard_store = "shards"
replication = 2
[frontend]
listen = "127.0.0.1:9000"
[[node]]
id = "a"
rpc = "127.0.0.1:7001"
[[node]]
id = "b"
rpc = "127.0.0.1:7002"
data_dir = "/tmp/b"
"#;

    #[test]
    fn loads_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        let config = ClusterConfig::load(&write(dir.path(), GOOD)).unwrap();
        assert_eq!(config.shard_store, dir.path().join("shards"));
        assert_eq!(
            config.node("a").unwrap().data_dir(),
            dir.path().join("nodes/a")
        );
        assert_eq!(config.node("b").unwrap().data_dir(), Path::new("/tmp/b"));
        assert_eq!(config.timeouts, Timeouts::default());
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "replication = 3",
                GOOD.replace("replication = 2", "replication = 3"),
            ),
            ("unknown field", format!("{GOOD}\nbogus = 1")),
            ("id \"a\"", GOOD.replace("id = \"b\"", "id = \"a\"")),
            ("TOML", "shard_store = ".to_string()),
        ];
        for (expected, text) in cases {
            let err = ClusterConfig::load(&write(dir.path(), &text))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) || err.contains("cluster.toml"),
                "{err}"
            );
            assert!(err.contains("cluster.toml"), "{err}");
        }
        assert!(ClusterConfig::load(&dir.path().join("missing.toml")).is_err());
    }
}
