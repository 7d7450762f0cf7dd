//! The cluster the hostile-network tests attack, and the raw tools they attack it with:
//! requests written byte by byte on fresh TCP connections (so nothing in a client library
//! fixes them up), signed or not, and the node's and front-end's metric lines.
//!
//! One shard store (4 shards of the English sample, built once by the real indexer) serves
//! every test; each test starts its own two nodes (every shard on both) and a front-end
//! whose `/cluster` and `/metrics` are on a separate admin port, with small server limits
//! so that the limits are reached quickly.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use shard_proto::auth::AUTH_HEADER;
use shard_proto::query::Syntax;
use shard_proto::wire::{self, Call, HealthResponse, SearchRequest};
use shard_proto::{GlobalStats, ShardId};
use tests::cluster_secret::{auth_value, write_secret, AUTH_TABLE};
use tests::{
    bin, free_port, process_alive, run_ok, shared_corpus, spawn_searcher, temp_dir, wait_for,
    ChildGuard,
};

pub const PATIENCE: Duration = Duration::from_secs(60);
pub const SHARDS: u32 = 4;
/// Small limits, so the tests reach them quickly: connections over 64 are refused, a head
/// must arrive within 1 s, a body within 4 s, and a stopping server drains for 500 ms.
pub const SERVER_LIMITS: &str = "\n[server]\nheader_timeout_ms = 1000\nbody_timeout_ms = 4000\n\
max_connections = 64\ndrain_ms = 500\n";

/// The shard store every test's cluster serves (built on first use).
fn store() -> &'static Path {
    static STORE: OnceLock<tempfile::TempDir> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let dir = temp_dir("hostile-net-store");
            run_ok(
                Command::new(bin("indexer"))
                    .args(["build", "--threads", "2", "--memory-mb", "256", "--shards"])
                    .arg(SHARDS.to_string())
                    .arg("--input")
                    .arg(shared_corpus("enwiki-sample.xml.bz2"))
                    .arg("--out")
                    .arg(dir.path().join("store"))
                    .stdout(Stdio::null()),
            );
            dir
        })
        .path()
}

/// Two nodes (`n0`, `n1`, every shard on both) and a front-end.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub node_ports: Vec<u16>,
    pub nodes: Vec<ChildGuard>,
    pub frontend: ChildGuard,
    pub fe_port: u16,
    pub admin_port: u16,
}

impl Net {
    pub fn start(test: &str) -> Net {
        let dir = temp_dir(test);
        write_secret(dir.path());
        let mut ports = std::collections::BTreeSet::new();
        while ports.len() < 4 {
            ports.insert(free_port());
        }
        let ports: Vec<u16> = ports.into_iter().collect();
        let (fe_port, admin_port, node_ports) = (ports[0], ports[1], ports[2..].to_vec());
        let mut toml = format!(
            "shard_store = {:?}\nreplication = 2\n\n[frontend]\nlisten = \"127.0.0.1:{fe_port}\"\n\
             admin_listen = \"127.0.0.1:{admin_port}\"\n\n[timeouts]\nattempt_ms = 1000\n\
             deadline_ms = 3000\nprobe_interval_ms = 200\nconnect_ms = 250\n\
             eject_after_failures = 2\n{AUTH_TABLE}{SERVER_LIMITS}",
            store().join("store")
        );
        for (i, port) in node_ports.iter().enumerate() {
            toml.push_str(&format!(
                "\n[[node]]\nid = \"n{i}\"\nrpc = \"127.0.0.1:{port}\"\n"
            ));
        }
        std::fs::write(dir.path().join("cluster.toml"), toml).expect("write cluster.toml");
        std::fs::create_dir_all(dir.path().join("logs")).expect("log dir");
        let nodes = (0..node_ports.len())
            .map(|i| {
                spawn_searcher(
                    dir.path(),
                    &format!("n{i}"),
                    &["node", "--id", &format!("n{i}")],
                )
            })
            .collect();
        let frontend = spawn_searcher(dir.path(), "frontend", &["frontend"]);
        let net = Net {
            dir,
            node_ports,
            nodes,
            frontend,
            fe_port,
            admin_port,
        };
        net.wait_all_up();
        net
    }

    /// Until `/cluster` shows every node `up` with a pid: a node the front-end has not heard
    /// from yet also shows `up` (nothing against it), but may not even listen yet.
    pub fn wait_all_up(&self) {
        wait_for("every node up and answering", PATIENCE, || {
            let (_, view) = http(self.admin_port, &get("/cluster"))?;
            let json: serde_json::Value = serde_json::from_str(&view).ok()?;
            let nodes = json["nodes"].as_array()?;
            let ready = nodes.len() == self.nodes.len()
                && nodes
                    .iter()
                    .all(|n| n["state"] == "up" && n["pid"].is_u64());
            ready.then_some(())
        });
    }

    /// Waits until `/cluster` shows `node` in `state`.
    /// Waits until `/cluster` shows `node` in `state` with a last error containing `error`.
    pub fn wait_for_node(&self, node: &str, state: &str, error: &str) {
        wait_for(&format!("{node} {state} ({error})"), PATIENCE, || {
            let (_, view) = http(self.admin_port, &get("/cluster"))?;
            let json: serde_json::Value = serde_json::from_str(&view).ok()?;
            let nodes = json["nodes"].as_array()?;
            nodes
                .iter()
                .any(|n| {
                    n["id"] == node
                        && n["state"] == state
                        && n["last_error"].as_str().unwrap_or("").contains(error)
                })
                .then_some(())
        });
    }

    /// Calls node `i` is working on (its signed health answer's `in_flight`).
    pub fn node_in_flight(&self, i: usize) -> Option<u32> {
        let path = wire::paths::HEALTH;
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: x\r\n{AUTH_HEADER}: {}\r\nconnection: close\r\n\r\n",
            auth_value("GET", path, b"")
        );
        let answer = http_bytes(self.node_ports[i], request.as_bytes())?;
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let health: HealthResponse = wire::decode(&answer[split..]).ok()?;
        Some(health.in_flight)
    }

    /// A path of the test directory (logs, cluster file).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn assert_all_alive(&self) {
        for guard in self.nodes.iter().chain([&self.frontend]) {
            assert!(
                process_alive(guard.pid()),
                "{} died; logs in {:?}",
                guard.name,
                self.dir.path()
            );
        }
    }

    /// The well-behaved client: a search through the front-end must be a complete 200.
    pub fn assert_search_works(&self) {
        let query = "/search?q=anarchism";
        let (status, body) = http(self.fe_port, &get(query)).expect("the front-end answers");
        assert!(
            status == 200 && body.contains("\"partial\":false"),
            "a good search failed: {status} {body}"
        );
    }

    /// One of node `i`'s metric values, e.g. `node_rpc_refused_total{reason="expired"}`.
    pub fn node_metric(&self, i: usize, series: &str) -> u64 {
        let (_, text) = http(self.node_ports[i], &get("/metrics")).expect("node metrics");
        metric(&text, series)
    }

    pub fn frontend_metric(&self, series: &str) -> u64 {
        let (_, text) = http(self.admin_port, &get("/metrics")).expect("front-end metrics");
        metric(&text, series)
    }

    /// The shards of the store (one indexer run, indexer 0 of 1).
    pub fn shards(&self) -> Vec<ShardId> {
        (0..SHARDS)
            .map(|s| ShardId::new(0, 1, s, SHARDS).expect("shard id"))
            .collect()
    }
}

/// The value of one series in an OpenMetrics text (0 if absent).
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").into_bytes()
}

/// A raw request on a fresh connection: the status and body, `None` if the connection
/// failed or closed without an answer.
pub fn http(port: u16, request: &[u8]) -> Option<(u16, String)> {
    parse_answer(&http_bytes(port, request)?)
}

/// The raw answer to a request on a fresh connection.
pub fn http_bytes(port: u16, request: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    stream.write_all(request).ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    Some(answer)
}

pub fn parse_answer(answer: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let status = text.get(9..12)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

/// A POST to a node with an optional credentials header.
pub fn rpc_post(path: &str, body: &[u8], auth: Option<&str>) -> Vec<u8> {
    let auth = auth.map_or(String::new(), |a| format!("{AUTH_HEADER}: {a}\r\n"));
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{auth}connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// A signed POST of `call` to a node.
pub fn signed<T: Serialize>(path: &str, call: &Call<T>) -> Vec<u8> {
    let frame = wire::encode(call).expect("encode");
    rpc_post(path, &frame, Some(&auth_value("POST", path, &frame)))
}

pub fn search_call(shards: Vec<ShardId>, query: &str, budget: Duration) -> Call<SearchRequest> {
    Call::new(
        SearchRequest {
            generation: None,
            query: query.into(),
            syntax: Syntax::Lenient,
            shards,
            top_k: 10,
            stats: GlobalStats::default(),
            fetch: None,
        },
        budget,
    )
}
