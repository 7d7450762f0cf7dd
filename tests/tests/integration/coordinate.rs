//! Every node coordinates (real processes over the English sample, 6 shards, R = 2):
//!
//! - a node with an `http` address answers `/search` and `/suggest` with the same hits and
//!   scores as the separate front-end on the same cluster, and so does a coordinator-only
//!   node (`[[coordinator]]`, started as `searcher node --id`); `/cluster` lists every
//!   coordinator; the page's cross-origin reads carry CORS headers, nothing else does; the
//!   public API needs no credentials while the node's RPC still does;
//! - load spread over two coordinating nodes, one of them SIGKILLed mid-run: the load
//!   generator's retry on the other coordinator leaves 0 failed searches.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tests::cluster_secret::{write_secret, AUTH_TABLE};
use tests::Signal;
use tests::{free_port, get_json, raw_http, spawn_searcher, temp_dir, wait_for, ChildGuard};
use tools::bench::loadgen::{self, percent_encode, LoadMode, LoadSpec};
use tools::bench::queries::BenchQuery;

use crate::searcher_cluster::build_shards;

const PATIENCE: Duration = Duration::from_secs(90);
/// Queries over the sample's articles: words, required terms, a phrase, a title field,
/// a query matching nothing.
const QUERIES: [&str; 12] = [
    "anarchism",
    "albedo",
    "autism",
    "+political +philosophy",
    "\"natural science\"",
    "title:alabama",
    "abraham lincoln",
    "greek alphabet",
    "apollo moon",
    "chemical element",
    "american football",
    "zzzyzzx",
];

/// Three coordinating nodes, a separate front-end and a coordinator-only node.
struct Coordinated {
    /// `http://127.0.0.1:<port>` of the front-end, then node0..2, then the coordinator.
    urls: Vec<String>,
    nodes: Vec<Option<ChildGuard>>,
    node_rpc_ports: Vec<u16>,
    _others: Vec<ChildGuard>,
}

impl Coordinated {
    fn start(dir: &Path, store: &Path) -> Coordinated {
        let frontend = free_port();
        let rpc: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let http: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let coordinator = free_port();
        let mut toml = format!(
            "shard_store = {store:?}\nreplication = 2\n\n[frontend]\nlisten = \"127.0.0.1:{frontend}\"\n\n\
             [timeouts]\nattempt_ms = 700\ndeadline_ms = 5000\nprobe_interval_ms = 200\nconnect_ms = 250\neject_after_failures = 2\n{AUTH_TABLE}"
        );
        for (i, (rpc, http)) in rpc.iter().zip(&http).enumerate() {
            toml.push_str(&format!(
                "\n[[node]]\nid = \"node{i}\"\nrpc = \"127.0.0.1:{rpc}\"\nhttp = \"127.0.0.1:{http}\"\n"
            ));
        }
        toml.push_str(&format!(
            "\n[[coordinator]]\nid = \"coord\"\nhttp = \"127.0.0.1:{coordinator}\"\n"
        ));
        write_secret(dir);
        std::fs::write(dir.join("cluster.toml"), toml).expect("cluster file");
        std::fs::create_dir_all(dir.join("logs")).expect("log dir");
        let nodes = (0..3)
            .map(|i| {
                let id = format!("node{i}");
                Some(spawn_searcher(dir, &id, &["node", "--id", &id]))
            })
            .collect();
        let others = vec![
            spawn_searcher(dir, "frontend", &["frontend"]),
            spawn_searcher(dir, "coord", &["node", "--id", "coord"]),
        ];
        let ports = std::iter::once(frontend)
            .chain(http.iter().copied())
            .chain(std::iter::once(coordinator));
        let cluster = Coordinated {
            urls: ports.map(|p| format!("http://127.0.0.1:{p}")).collect(),
            nodes,
            node_rpc_ports: rpc,
            _others: others,
        };
        for url in &cluster.urls {
            wait_all_up(url);
        }
        cluster
    }

    fn kill_node(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.signal(Signal::SIGKILL);
            let _ = node.child.wait();
        }
    }
}

/// Until the coordinator at `url` sees every node up.
fn wait_all_up(url: &str) {
    wait_for(&format!("every node up as {url} sees it"), PATIENCE, || {
        let (_, view) = get_json(&format!("{url}/cluster"))?;
        let nodes = view["nodes"].as_array()?;
        // A pid: the coordinator has heard from the node (it shows "up" before that too).
        let ready = nodes.len() == 3
            && nodes
                .iter()
                .all(|n| n["state"] == "up" && n["pid"].is_u64());
        ready.then_some(())
    });
}

/// `(id, score)` of every hit, and the total, of `q` asked at `url`.
fn hits(url: &str, q: &str) -> (Vec<(u64, f64)>, u64) {
    let url = format!("{url}/search?q={}&size=20", percent_encode(q));
    let (status, body) = get_json(&url).unwrap_or_else(|| panic!("no answer from {url}"));
    assert_eq!(status, 200, "{url}: {body}");
    assert_eq!(body["partial"], false, "{url}: {body}");
    let hits = body["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| (h["id"].as_u64().unwrap(), h["score"].as_f64().unwrap()))
        .collect();
    (hits, body["total"].as_u64().unwrap())
}

fn suggestions(url: &str, prefix: &str) -> Vec<Value> {
    let url = format!("{url}/suggest?q={}", percent_encode(prefix));
    let (status, body) = get_json(&url).unwrap_or_else(|| panic!("no answer from {url}"));
    assert_eq!(status, 200, "{url}: {body}");
    body["suggestions"].as_array().expect("suggestions").clone()
}

/// The response head of `GET path` on `port`, lower-cased.
fn head(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: http://elsewhere\r\nConnection: close\r\n\r\n"
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_lowercase();
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn coordinating_nodes_and_a_coordinator_answer_exactly_as_the_front_end() {
    let dir = temp_dir("coordinate-exact");
    let store = dir.path().join("shards");
    build_shards(&store, 6);
    let cluster = Coordinated::start(dir.path(), &store);
    let frontend = &cluster.urls[0];
    let mut matched = 0;
    for q in QUERIES {
        let (expected, total) = hits(frontend, q);
        matched += usize::from(!expected.is_empty());
        for url in &cluster.urls[1..] {
            let (got, got_total) = hits(url, q);
            assert_eq!(got_total, total, "{q:?} at {url}");
            assert_eq!(got.len(), expected.len(), "{q:?} at {url}");
            for ((id, score), (want_id, want_score)) in got.iter().zip(&expected) {
                // Ties may come in either order; scores must agree to the last bits.
                assert!(
                    (score - want_score).abs() < 1e-4,
                    "{q:?} at {url}: {got:?} vs {expected:?}"
                );
                if (score - want_score).abs() > 0.0 {
                    assert_eq!(id, want_id, "{q:?} at {url}");
                }
            }
            let ids = |h: &[(u64, f64)]| {
                let mut ids: Vec<u64> = h.iter().map(|(id, _)| *id).collect();
                ids.sort_unstable();
                ids
            };
            assert_eq!(ids(&got), ids(&expected), "{q:?} at {url}");
        }
    }
    assert!(matched >= 8, "the queries should match the sample");
    for prefix in ["a", "al", "ameri", "new "] {
        let expected = suggestions(frontend, prefix);
        for url in &cluster.urls[1..] {
            assert_eq!(suggestions(url, prefix), expected, "{prefix:?} at {url}");
        }
    }
    // /cluster lists every coordinator, wherever it is asked.
    let (_, view) = get_json(&format!("{}/cluster", cluster.urls[2])).expect("/cluster");
    let listed: Vec<String> = view["coordinators"]
        .as_array()
        .expect("coordinators")
        .iter()
        .map(|c| format!("http://{}", c["http"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, cluster.urls[1..], "{view}");
    // The page's cross-origin reads are allowed; nothing else is.
    let node_http = port_of(&cluster.urls[1]);
    assert!(head(node_http, "/search?q=albedo").contains("access-control-allow-origin: *"));
    assert!(head(node_http, "/cluster").contains("access-control-allow-origin: *"));
    assert!(!head(node_http, "/metrics").contains("access-control-allow-origin"));
    assert!(!head(node_http, "/").contains("access-control-allow-origin"));
    // The public API needs no credentials; the node's RPC still refuses a request without.
    let (status, _) = raw_http(
        cluster.node_rpc_ports[0],
        b"GET /rpc/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(30),
    );
    assert_eq!(status, 401);
}

#[test]
fn killing_a_coordinating_node_under_spread_load_fails_no_search() {
    let dir = temp_dir("coordinate-kill");
    let store = dir.path().join("shards");
    build_shards(&store, 6);
    let mut cluster = Coordinated::start(dir.path(), &store);
    let queries: Vec<BenchQuery> = QUERIES
        .iter()
        .map(|q| BenchQuery {
            text: q.to_string(),
            kind: "term".into(),
        })
        .collect();
    let mut spec = LoadSpec::new(
        &cluster.urls[1],
        queries,
        LoadMode::Closed { concurrency: 4 },
        Duration::from_secs(60),
    );
    spec.also = vec![cluster.urls[2].clone()];
    spec.max_requests = Some(1_500);
    spec.timeline = true;
    let (row_tx, row_rx) = std::sync::mpsc::channel();
    spec.on_row = Some(Box::new(move |row| {
        let _ = row_tx.send(row.requests);
    }));
    let load = std::thread::spawn(move || loadgen::run_blocking(spec));
    // Kill node0 once the load is running (a few seconds of answers seen).
    let mut answered = 0;
    while answered < 100 {
        answered += row_rx.recv_timeout(PATIENCE).expect("timeline rows");
    }
    cluster.kill_node(0);
    let report = load.join().expect("load thread").expect("load report");
    println!("{}", report.to_table());
    assert!(report.overall.requests >= 1_000, "{}", report.to_table());
    assert_eq!(report.overall.errors, 0, "{}", report.to_table());
    assert_eq!(report.overall.partial, 0, "{}", report.to_table());
    assert!(
        report.rerouted > 0,
        "node0's share went to node1: {}",
        report.to_table()
    );
}
