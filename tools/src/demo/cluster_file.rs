//! The cluster file the demo writes (`DATA/cluster.toml`): N nodes on free loopback ports,
//! the shard store the indexers filled, R replicas, the front-end's address. Every node
//! also coordinates (an `http` address: it serves the page and the API too), so the page
//! keeps working whichever single process is killed, the front-end included.
//!
//! Ports change on every start (they are whatever the kernel hands out for
//! `127.0.0.1:0`), which is what lets two demos run side by side; the shard store and node
//! data directories are written relative to the file, so a data directory can be moved.
//! The cluster secret that authenticates the nodes' RPC is generated once into
//! `DATA/cluster.secret` (mode 0600) and kept across restarts.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use searcher::cluster::{self, AuthConfig, ClusterConfig, FrontendConfig, NodeConfig, Timeouts};
use searcher::node::heal::HealConfig;

/// Name of the cluster file inside the data directory.
pub const CLUSTER_FILE: &str = "cluster.toml";
/// The shard store, relative to the data directory.
pub const SHARD_STORE: &str = "shards";
/// The cluster secret, relative to the data directory.
pub const SECRET_FILE: &str = "cluster.secret";

/// Node ids the demo uses: `node-1` ... `node-N`.
pub fn node_id(i: usize) -> String {
    format!("node-{}", i + 1)
}

/// Writes the cluster file for `nodes` nodes and returns its path and the loaded (resolved,
/// validated) configuration.
pub fn write(
    data: &Path,
    nodes: usize,
    replication: usize,
    listen: SocketAddr,
) -> anyhow::Result<(PathBuf, ClusterConfig)> {
    let ports = free_ports(2 * nodes)?;
    let (rpc_ports, http_ports) = ports.split_at(nodes);
    cluster::ensure_secret_file(&data.join(SECRET_FILE))?;
    let config = ClusterConfig {
        shard_store: PathBuf::from(SHARD_STORE).into(),
        s3: Default::default(),
        replication,
        frontend: FrontendConfig {
            listen,
            ..FrontendConfig::default()
        },
        timeouts: Timeouts::default(),
        limits: Default::default(),
        scrub: Default::default(),
        auth: AuthConfig {
            secret_file: Some(PathBuf::from(SECRET_FILE)),
        },
        server: Default::default(),
        // Seconds, not minutes: the demo shows a cluster restoring its replicas while
        // one watches (kill a node, see its shards re-replicate in the cluster panel).
        heal: HealConfig {
            after_ms: 5_000,
            cool_down_ms: 10_000,
            ..HealConfig::default()
        },
        // A generation switched in the demo is followed within a second or two.
        generations: searcher::node::generations::GenerationsConfig {
            poll_ms: 1_000,
            ..Default::default()
        },
        nodes: rpc_ports
            .iter()
            .zip(http_ports)
            .enumerate()
            .map(|(i, (&rpc, &http))| NodeConfig {
                id: node_id(i),
                rpc: SocketAddr::from(([127, 0, 0, 1], rpc)).into(),
                listen: None,
                data_dir: None,
                http: Some(SocketAddr::from(([127, 0, 0, 1], http)).into()),
                http_listen: None,
                drain: false,
            })
            .collect(),
        node_sets: Vec::new(),
        coordinators: Vec::new(),
        source: Default::default(),
    };
    let path = data.join(CLUSTER_FILE);
    config.save(&path)?;
    let loaded =
        ClusterConfig::load(&path).context("the demo wrote a cluster file it cannot read back")?;
    Ok((path, loaded))
}

/// `count` distinct loopback ports that were free a moment ago (all bound at once, so the
/// kernel cannot hand out the same one twice).
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot read a bound port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_loadable_file_with_distinct_ports() {
        let dir = tempfile::tempdir().unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], 18080));
        let (path, config) = write(dir.path(), 3, 2, listen).unwrap();
        assert_eq!(path, dir.path().join("cluster.toml"));
        assert_eq!(
            config.shard_store.as_dir(),
            Some(&*dir.path().join("shards"))
        );
        assert_eq!(config.frontend.listen, listen);
        let ids: Vec<&str> = config.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["node-1", "node-2", "node-3"]);
        assert_eq!(
            config.node("node-2").unwrap().data_dir(),
            dir.path().join("nodes/node-2")
        );
        let mut ports: Vec<u16> = config.nodes.iter().map(|n| n.rpc.port()).collect();
        ports.extend(config.public_addresses().iter().map(|(_, a)| a.port()));
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6, "an rpc and an http port per node");
        assert!(config.cluster_key().is_ok(), "a generated secret");
    }
}
