//! The cluster description an operator writes (and the demo generates): searcher nodes,
//! the shard store, the replication factor, the front-end's address and timeouts.
//!
//! Everything a process knows about the cluster comes from this file plus the shard store
//! it names, so every node and front-end derive the same view without talking to each
//! other. Relative paths are resolved against the file's own directory.
//!
//! Nodes are listed one by one (`[[node]]`) or by a pattern (`[[node_set]]`, expanded at
//! load: see [`crate::addr`]); either way a node is its id, reached at a `host:port`. A
//! node marked `drain = true` is left out of the placement (its replicas move to the
//! others before it drops them: `node::heal`); nodes re-read the file when it changes,
//! so adding, draining or removing a node needs no restart of the others.
//!
//! The cluster secret authenticates the internal RPC (see `shard_proto::auth`): it comes
//! from the environment variable [`SECRET_ENV`] if set, else from the file `[auth]
//! secret_file` names. A cluster without one does not start.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shard_proto::auth::ClusterKey;
use shard_proto::manifest::ShardManifest;
use shard_proto::remote::S3Config;
use shard_proto::store::{ShardSource, ShardStore, StoreLocation};
use shard_proto::{QueryLimits, ShardId};

use crate::addr::{NodeAddr, NodeSet};
use crate::error::{Error, Result};
use crate::model::SearchType;
use crate::node::generations::GenerationsConfig;
use crate::node::heal::HealConfig;
use crate::node::scrub::ScrubConfig;
use crate::serve::ServerLimits;

/// Environment variable holding the cluster secret itself (for deployments that hand
/// secrets over as variables); it takes precedence over `[auth] secret_file`.
pub const SECRET_ENV: &str = "WIKISEARCH_CLUSTER_SECRET";

/// The parsed cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Where the published shards are, as written by `indexer build --out`: a directory
    /// (one sub-directory per shard, each with its manifest) or `s3://bucket/prefix`.
    pub shard_store: StoreLocation,
    /// Endpoint, region, credentials and retries of an `s3://` shard store (each field
    /// overrides its `AWS_*` environment variable).
    #[serde(default, skip_serializing_if = "is_default_s3")]
    pub s3: S3Config,
    /// Copies of every shard, each on a different node.
    pub replication: usize,
    #[serde(default)]
    pub frontend: FrontendConfig,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// What one search may cost (query shape and depth), enforced by the front-end and
    /// again by every node; see `shard_proto::limits` for each limit and its default.
    #[serde(default)]
    pub limits: QueryLimits,
    /// How nodes re-verify their replicas in the background.
    #[serde(default)]
    pub scrub: ScrubConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub server: ServerLimits,
    /// How nodes restore lost replicas (`node::heal`).
    #[serde(default)]
    pub heal: HealConfig,
    /// How nodes follow the store's live index generation (`node::generations`).
    #[serde(default)]
    pub generations: GenerationsConfig,
    /// The shard-holding nodes: placement hashes their ids.
    #[serde(rename = "node", default)]
    pub nodes: Vec<NodeConfig>,
    /// Coordinator-only nodes (`[[coordinator]]`): they serve the public API and hold no
    /// shards, so placement never sees them.
    #[serde(rename = "coordinator", default, skip_serializing_if = "Vec::is_empty")]
    pub coordinators: Vec<CoordinatorConfig>,
    /// Nodes by pattern; [`ClusterConfig::load`] expands them into `nodes` (after the
    /// `[[node]]` entries) and empties this list.
    #[serde(rename = "node_set", default, skip_serializing_if = "Vec::is_empty")]
    pub node_sets: Vec<NodeSet>,
    /// The file this was loaded from (not part of the content: equal whatever it is).
    #[serde(skip)]
    pub source: LoadedFrom,
}

/// Where a [`ClusterConfig`] was read from, so a node can notice the file change.
#[derive(Clone, Debug, Default)]
pub struct LoadedFrom(pub Option<PathBuf>);

impl PartialEq for LoadedFrom {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One searcher node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub id: String,
    /// Where the others reach the node's internal RPC server: `host:port`, a host name
    /// resolved at each connection, or an IP literal.
    pub rpc: NodeAddr,
    /// The address the node binds, when it differs from what `rpc` resolves to (e.g.
    /// `0.0.0.0:7000` in a container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Where the node keeps its replicas; default `<cluster dir>/nodes/<id>`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Where clients reach the node's public API (`/search`, the page...), if it
    /// coordinates searches: `host:port`, like `rpc`. A node without it serves RPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<NodeAddr>,
    /// The address the public API binds, when it differs from what `http` resolves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// Being removed: the placement gives it no shard, so the others take its replicas
    /// and it drops each copy once they serve it (then it can leave the file).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drain: bool,
}

/// A coordinator-only node: serves the public API over the shard-holding nodes, holds no
/// shards (`searcher node --id ID` for its id, or `searcher frontend`, which is the same
/// role at `[frontend] listen`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    pub id: String,
    /// Where clients reach its public API: `host:port`.
    pub http: NodeAddr,
    /// The address it binds, when it differs from what `http` resolves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
}

/// The public HTTP front-end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendConfig {
    pub listen: SocketAddr,
    /// Default fetch strategy of `/search` (`auto`, `query_then_fetch` or `query_and_fetch`);
    /// a request's `search_type` parameter overrides it.
    #[serde(default)]
    pub search_type: SearchType,
    /// If set, `/cluster` and `/metrics` are served only on this address (keep it private)
    /// and not on `listen`, for deployments where the front-end is public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            search_type: SearchType::default(),
            admin_listen: None,
        }
    }
}

/// Where the cluster secret is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// A file holding the secret (at least 16 bytes; `searcher demo` writes 64 random hex
    /// characters). Keep it readable by the cluster's processes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

/// Timeouts and failure-detection settings, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// One RPC attempt to one node (an attempt with no replica left to fail over to gets
    /// the rest of the deadline instead).
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
        config.expand_node_sets().map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        config.resolve_paths(base);
        config.validate().map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        config.source = LoadedFrom(Some(path.to_path_buf()));
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

    /// Appends the nodes of every `[[node_set]]` to `nodes`.
    fn expand_node_sets(&mut self) -> std::result::Result<(), String> {
        for set in std::mem::take(&mut self.node_sets) {
            self.nodes
                .extend(set.expand()?.into_iter().map(|n| NodeConfig {
                    id: n.id,
                    rpc: n.rpc,
                    listen: n.listen,
                    data_dir: n.data_dir,
                    http: n.http,
                    http_listen: n.http_listen,
                    drain: false,
                }));
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.shard_store = self.shard_store.resolve(base);
        if let Some(file) = self.auth.secret_file.take() {
            self.auth.secret_file = Some(base.join(file));
        }
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
            return Err("no [[node]] or [[node_set]] entries".into());
        }
        let placed = self.placed_nodes().count();
        if self.replication == 0 || self.replication > placed {
            return Err(format!(
                "replication = {} but there are {placed} nodes not draining (need 1 <= \
                 replication <= nodes)",
                self.replication,
            ));
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for node in &self.nodes {
            if node.id.is_empty() || !ids.insert(node.id.as_str()) {
                return Err(format!("node id {:?} is empty or repeated", node.id));
            }
            if !addrs.insert(&node.rpc) {
                return Err(format!("rpc address {} is used by two nodes", node.rpc));
            }
        }
        self.validate_coordinators(&mut ids, &addrs)?;
        let literal: BTreeSet<SocketAddr> =
            addrs.iter().filter_map(|a| a.as_socket_addr()).collect();
        let listens = [Some(self.frontend.listen), self.frontend.admin_listen];
        if let Some(taken) = listens.into_iter().flatten().find(|a| literal.contains(a)) {
            return Err(format!(
                "the front-end's address {taken} is a node's rpc address"
            ));
        }
        let t = &self.timeouts;
        if t.attempt_ms == 0 || t.deadline_ms < t.attempt_ms || t.probe_interval_ms == 0 {
            return Err(
                "timeouts: need 0 < attempt_ms <= deadline_ms and probe_interval_ms > 0".into(),
            );
        }
        if t.connect_ms == 0 {
            return Err("timeouts: connect_ms must be > 0".into());
        }
        self.server.validate()?;
        self.heal.validate()?;
        self.limits.validate()
    }

    /// Coordinator ids are unique among all ids; public addresses are unique and no
    /// node's rpc address.
    fn validate_coordinators<'a>(
        &'a self,
        ids: &mut BTreeSet<&'a str>,
        rpc: &BTreeSet<&NodeAddr>,
    ) -> std::result::Result<(), String> {
        for coordinator in &self.coordinators {
            if coordinator.id.is_empty() || !ids.insert(coordinator.id.as_str()) {
                return Err(format!("node id {:?} is empty or repeated", coordinator.id));
            }
        }
        let mut public = BTreeSet::new();
        for (id, http) in self.public_addresses() {
            if rpc.contains(http) || !public.insert(http) {
                return Err(format!(
                    "http address {http} of {id} is used twice (or is an rpc address)"
                ));
            }
        }
        Ok(())
    }

    /// Every coordinating process's public address, by id: the shard-holding nodes with
    /// an `http` address, then the coordinator-only nodes.
    pub fn public_addresses(&self) -> Vec<(&str, &NodeAddr)> {
        let nodes = self
            .nodes
            .iter()
            .filter_map(|n| n.http.as_ref().map(|http| (n.id.as_str(), http)));
        let coordinators = self.coordinators.iter().map(|c| (c.id.as_str(), &c.http));
        nodes.chain(coordinators).collect()
    }

    /// The coordinator-only node with this id, if it is one.
    pub fn coordinator(&self, id: &str) -> Option<&CoordinatorConfig> {
        self.coordinators.iter().find(|c| c.id == id)
    }

    /// The RPC key of this cluster, from [`SECRET_ENV`] or `[auth] secret_file`.
    pub fn cluster_key(&self) -> Result<ClusterKey> {
        let secret = match (std::env::var_os(SECRET_ENV), &self.auth.secret_file) {
            (Some(value), _) => value.into_encoded_bytes(),
            (None, Some(file)) => std::fs::read(file).map_err(|e| Error::io(file, e))?,
            (None, None) => {
                return Err(Error::Other(format!(
                    "no cluster secret: set [auth] secret_file in the cluster file or {SECRET_ENV}"
                )))
            }
        };
        ClusterKey::from_secret(&secret).map_err(Error::Other)
    }

    /// The ids of the nodes shards are placed on: every node not marked `drain`.
    pub fn placed_nodes(&self) -> impl Iterator<Item = &str> + Clone {
        self.nodes
            .iter()
            .filter(|n| !n.drain)
            .map(|n| n.id.as_str())
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Result<&NodeConfig> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| Error::UnknownNode(id.to_string()))
    }

    /// Reads every shard manifest in the shard store, sorted by shard id. A shard whose
    /// manifest cannot be used comes back as a [`BadShard`] naming it, next to the good ones,
    /// so one bad shard is reported (and can be placed and shown as failed), not fatal.
    pub fn shard_manifests(&self) -> Result<Vec<std::result::Result<ShardManifest, BadShard>>> {
        let live = self.open_store()?.live_shards()?;
        Ok(live
            .into_iter()
            .map(|(shard, source)| read_manifest(shard, &source))
            .collect())
    }

    /// The shard store this file names.
    pub fn open_store(&self) -> Result<ShardStore> {
        Ok(ShardStore::open(&self.shard_store, &self.s3)?)
    }
}

/// Whether the `[s3]` table is all defaults (then it is not written out).
fn is_default_s3(s3: &S3Config) -> bool {
    *s3 == S3Config::default()
}

/// Writes a new random cluster secret (32 bytes as 64 hex characters, readable by the
/// owner only) to `path`, unless a file is already there (a cluster keeps its secret).
pub fn ensure_secret_file(path: &Path) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let secret: [u8; 32] = rand::random();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(mut file) => file
            .write_all(format!("{hex}\n").as_bytes())
            .map_err(|e| Error::io(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// [`ClusterConfig::shard_manifests`] of the shard store `store`: the manifests of its
/// live shard directories (`shard_proto::store`: each slice's recorded generation).
pub fn store_manifests(store: &Path) -> Result<Vec<std::result::Result<ShardManifest, BadShard>>> {
    let live = ShardStore::Dir(store.to_path_buf()).live_shards()?;
    Ok(live
        .into_iter()
        .map(|(shard, source)| read_manifest(shard, &source))
        .collect())
}

/// A shard directory of the shard store whose manifest cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("shard {shard}: {reason}")]
pub struct BadShard {
    /// The shard, from its directory's name.
    pub shard: ShardId,
    pub reason: String,
}

/// Reads and checks the manifest of the store's shard directory `source` named `shard`.
pub(crate) fn read_manifest(
    shard: ShardId,
    source: &ShardSource,
) -> std::result::Result<ShardManifest, BadShard> {
    let bad = |reason: String| BadShard { shard, reason };
    let manifest = source.read_manifest().map_err(|e| bad(e.to_string()))?;
    // A copied or renamed directory would otherwise serve its documents as another shard.
    if manifest.shard != shard {
        return Err(bad(format!(
            "the directory holds the manifest of shard {}",
            manifest.shard
        )));
    }
    Ok(manifest)
}

/// The address a public API binds: `listen` if set, else the first address `http`
/// resolves to now.
pub async fn http_bind_addr(
    id: &str,
    http: &NodeAddr,
    listen: Option<SocketAddr>,
) -> Result<SocketAddr> {
    if let Some(listen) = listen {
        return Ok(listen);
    }
    let resolved = http
        .resolve()
        .await
        .map_err(|e| Error::Other(format!("{id}: resolving http = {http}: {e}")))?;
    resolved
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other(format!("{id}: http = {http} resolves to nothing")))
}

impl NodeConfig {
    /// The address the node binds: `listen` if set, else the first address `rpc`
    /// resolves to now.
    pub async fn bind_addr(&self) -> Result<SocketAddr> {
        if let Some(listen) = self.listen {
            return Ok(listen);
        }
        let resolved = self.rpc.resolve().await.map_err(|e| {
            Error::Other(format!(
                "node {}: resolving rpc = {}: {e}",
                self.id, self.rpc
            ))
        })?;
        resolved.into_iter().next().ok_or_else(|| {
            Error::Other(format!(
                "node {}: rpc = {} resolves to nothing",
                self.id, self.rpc
            ))
        })
    }

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
        assert_eq!(
            config.shard_store.as_dir(),
            Some(&*dir.path().join("shards"))
        );
        assert_eq!(config.s3, S3Config::default());
        assert_eq!(
            config.node("a").unwrap().data_dir(),
            dir.path().join("nodes/a")
        );
        assert_eq!(config.node("b").unwrap().data_dir(), Path::new("/tmp/b"));
        assert_eq!(config.timeouts, Timeouts::default());
        assert_eq!(config.frontend.search_type, SearchType::Auto);
        let and_fetch = GOOD.replace(
            "listen = \"127.0.0.1:9000\"",
            "listen = \"127.0.0.1:9000\"\nsearch_type = \"query_and_fetch\"",
        );
        let config = ClusterConfig::load(&write(dir.path(), &and_fetch)).unwrap();
        assert_eq!(config.frontend.search_type, SearchType::QueryAndFetch);
    }

    #[test]
    fn coordinating_nodes_and_coordinators_load_round_trip_and_stay_out_of_placement() {
        let dir = tempfile::tempdir().unwrap();
        let text = GOOD.replace(
            "rpc = \"127.0.0.1:7002\"",
            "rpc = \"127.0.0.1:7002\"\nhttp = \"127.0.0.1:8002\"",
        ) + "[[coordinator]]\nid = \"c\"\nhttp = \"127.0.0.1:8003\"\n";
        let path = write(dir.path(), &text);
        let config = ClusterConfig::load(&path).unwrap();
        let public: Vec<(&str, String)> = config
            .public_addresses()
            .into_iter()
            .map(|(id, addr)| (id, addr.to_string()))
            .collect();
        assert_eq!(
            public,
            [
                ("b", "127.0.0.1:8002".into()),
                ("c", "127.0.0.1:8003".into())
            ]
        );
        assert!(config.node("c").is_err(), "a coordinator holds no shards");
        assert!(config.coordinator("c").is_some());
        let shard = ShardId::new(0, 1, 0, 1).unwrap();
        let placement = crate::placement::Placement::for_cluster(&config, [shard]);
        assert_eq!(placement.replicas[&shard].len(), 2);
        assert!(!placement.replicas[&shard].contains(&"c".to_string()));
        config.save(&path).unwrap();
        assert_eq!(ClusterConfig::load(&path).unwrap(), config);
        // One address for two things is refused, naming it.
        let clash = text.replace("127.0.0.1:8003", "127.0.0.1:7001");
        let err = ClusterConfig::load(&write(dir.path(), &clash)).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:7001"), "{err}");
        let same_id = text.replace("id = \"c\"", "id = \"a\"");
        assert!(ClusterConfig::load(&write(dir.path(), &same_id)).is_err());
    }

    #[test]
    fn an_s3_store_and_its_table_load_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let text = GOOD.replace("\"shards\"", "\"s3://bucket/wiki/en\"")
            + "[s3]\nendpoint = \"http://127.0.0.1:3900\"\nregion = \"garage\"\nmax_retries = 3\n";
        let config = ClusterConfig::load(&write(dir.path(), &text)).unwrap();
        assert_eq!(config.shard_store.to_string(), "s3://bucket/wiki/en");
        assert_eq!(config.shard_store.as_dir(), None);
        assert_eq!(config.s3.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!((config.s3.max_retries, config.s3.retry_timeout_s), (3, 180));
        let saved = dir.path().join("saved.toml");
        config.save(&saved).unwrap();
        assert_eq!(ClusterConfig::load(&saved).unwrap(), config);
    }

    #[test]
    fn a_directory_store_writes_no_s3_table() {
        let dir = tempfile::tempdir().unwrap();
        let config = ClusterConfig::load(&write(dir.path(), GOOD)).unwrap();
        let saved = dir.path().join("saved.toml");
        config.save(&saved).unwrap();
        assert!(!std::fs::read_to_string(&saved).unwrap().contains("[s3]"));
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
            (
                "names no bucket",
                GOOD.replace("\"shards\"", "\"s3:///prefix\""),
            ),
            (
                "unknown field `endpont`",
                format!("{GOOD}\n[s3]\nendpont = \"x\""),
            ),
            (
                "unknown variant `dfs`",
                GOOD.replace("[frontend]", "[frontend]\nsearch_type = \"dfs\""),
            ),
            ("connect_ms", format!("{GOOD}\n[timeouts]\nconnect_ms = 0")),
            (
                "cannot be connected to",
                GOOD.replace("127.0.0.1:7001", "0.0.0.0:7001"),
            ),
            ("no port", GOOD.replace("127.0.0.1:7001", "search-0")),
            (
                "is used by two nodes",
                GOOD.replace("127.0.0.1:7002", "127.0.0.1:7001"),
            ),
            (
                "must contain {i}",
                format!("{GOOD}\n[[node_set]]\nid = \"s\"\nrpc = \"s:1\"\ncount = 2"),
            ),
            (
                "is a node's rpc address",
                GOOD.replace("127.0.0.1:9000", "127.0.0.1:7002"),
            ),
            (
                "max_connections",
                format!("{GOOD}\n[server]\nmax_connections = 0"),
            ),
        ];
        for (expected, text) in cases {
            let err = ClusterConfig::load(&write(dir.path(), &text))
                .unwrap_err()
                .to_string();
            // Each error names the file and says what is wrong with it.
            assert!(err.contains("cluster.toml"), "{err}");
            assert!(err.contains(expected), "expected {expected:?} in: {err}");
        }
        assert!(ClusterConfig::load(&dir.path().join("missing.toml")).is_err());
    }

    #[test]
    fn nodes_by_host_name_and_by_pattern_expand_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
shard_store = "shards"
replication = 2
[[node]]
id = "solo"
rpc = "solo.search:7000"
listen = "0.0.0.0:7000"
[[node_set]]
id = "search-{i}"
rpc = "search-{i}.search:7000"
count = 3
data_dir = "data/{i}"
"#;
        let config = ClusterConfig::load(&write(dir.path(), text)).unwrap();
        let ids: Vec<&str> = config.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["solo", "search-0", "search-1", "search-2"]);
        assert!(config.node_sets.is_empty(), "expanded into nodes");
        let node = config.node("search-1").unwrap();
        assert_eq!(node.rpc.to_string(), "search-1.search:7000");
        assert_eq!(node.data_dir(), dir.path().join("data/1"));
        assert_eq!(
            config.node("solo").unwrap().listen,
            Some("0.0.0.0:7000".parse().unwrap())
        );
        // A file written back (as the demo does) loads to the same nodes.
        config.save(&dir.path().join("again.toml")).unwrap();
        let again = ClusterConfig::load(&dir.path().join("again.toml")).unwrap();
        assert_eq!(again.nodes, config.nodes);
    }

    #[tokio::test]
    async fn a_node_binds_its_listen_address_or_what_rpc_resolves_to() {
        let dir = tempfile::tempdir().unwrap();
        let text = GOOD.replace("127.0.0.1:7002", "localhost:7002");
        let config = ClusterConfig::load(&write(dir.path(), &text)).unwrap();
        let a = config.node("a").unwrap().bind_addr().await.unwrap();
        assert_eq!(a, "127.0.0.1:7001".parse().unwrap());
        let b = config.node("b").unwrap().bind_addr().await.unwrap();
        assert!(b.ip().is_loopback() && b.port() == 7002, "{b}");
    }

    #[test]
    fn the_cluster_secret_comes_from_its_file_and_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let config = ClusterConfig::load(&write(dir.path(), GOOD)).unwrap();
        if std::env::var_os(SECRET_ENV).is_none() {
            let err = config.cluster_key().unwrap_err().to_string();
            assert!(err.contains("no cluster secret"), "{err}");
        }
        let with_file = format!("{GOOD}\n[auth]\nsecret_file = \"secret\"");
        let config = ClusterConfig::load(&write(dir.path(), &with_file)).unwrap();
        assert_eq!(config.auth.secret_file, Some(dir.path().join("secret")));
        std::fs::write(dir.path().join("secret"), "short").unwrap();
        assert!(config.cluster_key().is_err());
        std::fs::write(dir.path().join("secret"), "0123456789abcdef0123\n").unwrap();
        assert!(config.cluster_key().is_ok());
        let generated = dir.path().join("generated");
        ensure_secret_file(&generated).unwrap();
        let first = std::fs::read_to_string(&generated).unwrap();
        assert_eq!(first.trim().len(), 64);
        ensure_secret_file(&generated).unwrap();
        assert_eq!(
            std::fs::read_to_string(&generated).unwrap(),
            first,
            "kept, not replaced"
        );
    }

    /// Publishes a manifest (without index files: `shard_manifests` reads only manifests)
    /// into `store/<dir>`, claiming to be `shard`.
    fn publish(store: &Path, dir: &str, shard: ShardId) {
        let dir = store.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut manifest = ShardManifest {
            format: shard_proto::manifest::MANIFEST_FORMAT,
            shard,
            schema: "test".into(),
            tantivy_version: "test".into(),
            input: shard_proto::manifest::InputInfo {
                path: "in.xml".into(),
                bytes: 0,
                format: "xml".into(),
            },
            docs: 7,
            skipped: Default::default(),
            files: Vec::new(),
            created_unix: 0,
            checksum: String::new(),
        };
        manifest.write(&dir).unwrap();
    }

    #[test]
    fn shard_manifests_name_bad_shards_and_sort_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("shards");
        let id = |node, shard| ShardId::new(node, 12, shard, 2).unwrap();
        publish(&store, "n10of12-s0of2", id(10, 0));
        publish(&store, "n2of12-s1of2", id(2, 1));
        publish(&store, "n3of12-s0of2", id(4, 0)); // copied under another shard's name
        std::fs::create_dir_all(store.join("n5of12-s1of2")).unwrap(); // no manifest
        std::fs::create_dir_all(store.join("n6of12-s0of2")).unwrap();
        std::fs::write(store.join("n6of12-s0of2/manifest.json"), "{").unwrap(); // truncated
        std::fs::create_dir_all(store.join(".tmp-n7of12-s0of2")).unwrap(); // not a shard
        std::fs::write(store.join("n8of12-s0of2"), "").unwrap(); // a file, not a shard
        let config = ClusterConfig {
            shard_store: store.into(),
            s3: Default::default(),
            replication: 1,
            frontend: Default::default(),
            timeouts: Default::default(),
            limits: Default::default(),
            scrub: Default::default(),
            auth: Default::default(),
            server: Default::default(),
            heal: Default::default(),
            generations: Default::default(),
            nodes: Vec::new(),
            node_sets: Vec::new(),
            coordinators: Vec::new(),
            source: Default::default(),
        };

        let found = config.shard_manifests().unwrap();

        let shards: Vec<ShardId> = found
            .iter()
            .map(|m| match m {
                Ok(m) => m.shard,
                Err(bad) => bad.shard,
            })
            .collect();
        assert_eq!(shards, [id(2, 1), id(3, 0), id(5, 1), id(6, 0), id(10, 0)]);
        assert_eq!(found[0].as_ref().unwrap().docs, 7);
        let reasons: Vec<String> = found
            .iter()
            .filter_map(|m| m.as_ref().err())
            .map(|bad| bad.to_string())
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].starts_with("shard n3of12-s0of2: "),
            "{reasons:?}"
        );
        assert!(reasons[0].contains("n4of12-s0of2"), "{reasons:?}");
        assert!(
            reasons[1].starts_with("shard n5of12-s1of2: "),
            "{reasons:?}"
        );
        assert!(
            reasons[2].starts_with("shard n6of12-s0of2: "),
            "{reasons:?}"
        );
    }
}
