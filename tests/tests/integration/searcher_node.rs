//! `searcher node` as a process: shards built by the real `indexer build` from the
//! English sample dump, nodes spawned on free 127.0.0.1 ports from a cluster file, spoken
//! to in raw bincode frames over HTTP as the front-end does. Checks that the node serves
//! exactly what a direct tantivy search of the same shard returns, reports a corrupted
//! replica instead of serving it, answers bad frames with 4xx and keeps going, and exits
//! cleanly on SIGTERM.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shard_proto::auth::AUTH_HEADER;
use shard_proto::manifest::ShardManifest;
use shard_proto::query::Syntax;
use shard_proto::wire::{
    self, Call, DocRef, FetchRequest, FetchResponse, HealthResponse, ReplicaState, SearchRequest,
    SearchResponse, ShardHits, ShardOutcome,
};
use shard_proto::{query_parser, GlobalStats, ShardId, WikiSchema};
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::Value;
use tantivy::{Index, TantivyDocument};
use tests::cluster_secret::{auth_value, write_secret, AUTH_TABLE};
use tests::Signal;
use tests::{bin, free_port, run_ok, shared_corpus, temp_dir, wait_for, ChildGuard};

const SHARDS: u32 = 3;
const QUERIES: [&str; 5] = [
    "the",
    "anarchism",
    "+political +philosophy",
    "\"united states\"",
    "autism OR albedo",
];

/// Builds `SHARDS` shards of the English sample into `root/store` with the real indexer.
/// What the tests' calls give a node to answer.
const BUDGET: Duration = Duration::from_secs(30);

fn build_store(root: &Path) -> PathBuf {
    let store = root.join("store");
    run_ok(
        Command::new(bin("indexer"))
            .arg("build")
            .arg("--input")
            .arg(shared_corpus("enwiki-sample.xml.bz2"))
            .arg("--out")
            .arg(&store)
            .args(["--shards", &SHARDS.to_string()]),
    );
    store
}

/// Writes a cluster file with one `[[node]]` per id, each on a free port.
fn write_cluster(root: &Path, ids: &[&str], replication: usize) -> PathBuf {
    write_secret(root);
    let mut text = format!("shard_store = \"store\"\nreplication = {replication}\n{AUTH_TABLE}");
    for id in ids {
        text.push_str(&format!(
            "[[node]]\nid = \"{id}\"\nrpc = \"127.0.0.1:{}\"\n",
            free_port()
        ));
    }
    let path = root.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn rpc_addr(cluster: &Path, id: &str) -> String {
    let text = std::fs::read_to_string(cluster).unwrap();
    let block = text
        .split("[[node]]")
        .find(|b| b.contains(&format!("id = \"{id}\"")))
        .unwrap();
    let line = block.lines().find(|l| l.starts_with("rpc")).unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POSTs raw bytes; `(status, body)`, or `None` if the node cannot be reached.
fn post_raw(addr: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut response = agent()
        .post(format!("http://{addr}{path}"))
        .header("content-type", wire::CONTENT_TYPE)
        .header(AUTH_HEADER, auth_value("POST", path, body))
        .send(body)
        .ok()?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(wire::MAX_FRAME_BYTES as u64)
        .read_to_vec()
        .ok()?;
    Some((status, bytes))
}

/// POSTs a frame and returns the 200 answer's body.
fn post_ok(addr: &str, path: &str, frame: &[u8]) -> Vec<u8> {
    let (status, body) = post_raw(addr, path, frame).expect("node reachable");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

fn search(addr: &str, request: &SearchRequest) -> SearchResponse {
    let call = Call::new(request, BUDGET);
    let body = post_ok(addr, wire::paths::SEARCH, &wire::encode(&call).unwrap());
    wire::decode(&body).unwrap()
}

fn fetch(addr: &str, request: &FetchRequest) -> FetchResponse {
    let call = Call::new(request, BUDGET);
    let body = post_ok(addr, wire::paths::FETCH, &wire::encode(&call).unwrap());
    wire::decode(&body).unwrap()
}

fn health(addr: &str) -> Option<HealthResponse> {
    let mut response = agent()
        .get(format!("http://{addr}{}", wire::paths::HEALTH))
        .header(AUTH_HEADER, auth_value("GET", wire::paths::HEALTH, b""))
        .call()
        .ok()?;
    let body = response.body_mut().read_to_vec().ok()?;
    wire::decode(&body).ok()
}

fn spawn_node(cluster: &Path, id: &str) -> (ChildGuard, HealthResponse) {
    let node = ChildGuard::spawn(
        id,
        Command::new(bin("searcher"))
            .arg("node")
            .arg("--config")
            .arg(cluster)
            .args(["--id", id]),
    );
    let addr = rpc_addr(cluster, id);
    let health = wait_for(
        &format!("node {id} health"),
        Duration::from_secs(120),
        || health(&addr),
    );
    (node, health)
}

/// What a direct, in-process tantivy search of one shard returns: `(id, score)` and count.
fn direct_search(shard_dir: &Path, query: &str, k: usize) -> (Vec<(u64, f32)>, usize) {
    let index = Index::open_in_dir(shard_dir).unwrap();
    let schema = WikiSchema::of_index(&index).expect("a known schema");
    let searcher = index.reader().unwrap().searcher();
    let parsed = query_parser(&schema).parse_query(query).unwrap();
    let parsed = shard_proto::rank(&schema, parsed, query);
    let (top, count) = searcher
        .search(&parsed, &(TopDocs::with_limit(k).order_by_score(), Count))
        .unwrap();
    let hits = top
        .into_iter()
        .map(|(score, address)| {
            let doc: TantivyDocument = searcher.doc(address).unwrap();
            (
                doc.get_first(schema.fields.id)
                    .and_then(|v| v.as_u64())
                    .unwrap(),
                score,
            )
        })
        .collect();
    (hits, count)
}

fn ok_hits(outcome: &ShardOutcome<ShardHits>) -> &ShardHits {
    match outcome {
        ShardOutcome::Ok(hits) => hits,
        ShardOutcome::Failed(reason) => panic!("shard failed: {reason}"),
    }
}

#[test]
fn nodes_serve_real_shards_exactly_and_survive_bad_frames() {
    let tmp = temp_dir("searcher-node");
    let store = build_store(tmp.path());
    let live: std::collections::BTreeMap<ShardId, PathBuf> =
        shard_proto::store::live_shard_dirs(&store)
            .expect("read the store")
            .into_iter()
            .collect();
    let cluster = write_cluster(tmp.path(), &["a", "b"], 1);
    let (node_a, health_a) = spawn_node(&cluster, "a");
    let (_node_b, health_b) = spawn_node(&cluster, "b");
    assert_eq!(health_a.pid, node_a.pid());
    assert_eq!(health_a.schema, WikiSchema::new().fingerprint());
    let (held_a, held_b) = (health_a.serving(), health_b.serving());
    assert_eq!(
        held_a.len() + held_b.len(),
        SHARDS as usize,
        "{health_a:?} {health_b:?}"
    );
    assert!(held_a.is_disjoint(&held_b));

    for (health, held) in [(&health_a, &held_a), (&health_b, &held_b)] {
        let addr = rpc_addr(&cluster, &health.node);
        for query in QUERIES {
            let request = SearchRequest {
                generation: None,
                query: query.into(),
                syntax: Syntax::Lenient,
                shards: held.iter().copied().collect(),
                top_k: 10,
                fetch: None,
                stats: GlobalStats::default(), // local statistics: must equal a direct search
            };
            let response = search(&addr, &request);
            assert_eq!(response.shards.len(), held.len());
            let (mut node_best, mut direct_best) = (Vec::new(), Vec::new());
            for (shard, outcome) in &response.shards {
                let hits = ok_hits(outcome);
                let (expected, count) = direct_search(&live[shard], query, 10);
                assert_eq!(hits.total, count as u64, "{query} on {shard}");
                // A shard's hits are its own best in order: the direct search's, or a
                // prefix of them when the rest cannot reach the node's top 10 (the
                // shards of one request share a bar, `SharedBar`).
                let got: Vec<(u64, f32)> = hits.hits.iter().map(|h| (h.id, h.score)).collect();
                assert!(got.len() <= expected.len(), "{query} on {shard}");
                for (g, e) in got.iter().zip(&expected) {
                    assert!(
                        g.0 == e.0 && (g.1 - e.1).abs() < 1e-4,
                        "{query} on {shard}: {got:?} vs {expected:?}"
                    );
                }
                node_best.extend(got);
                direct_best.extend(expected);
            }
            // Over the node's shards, the best 10 are exactly the direct searches' best.
            for best in [&mut node_best, &mut direct_best] {
                best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                best.truncate(10);
            }
            assert_eq!(node_best.len(), direct_best.len(), "{query}");
            for (g, e) in node_best.iter().zip(&direct_best) {
                assert!(
                    g.0 == e.0 && (g.1 - e.1).abs() < 1e-4,
                    "{query}: {node_best:?} vs {direct_best:?}"
                );
            }
        }
    }

    // Fetch phase for node a's best "anarchism" hits; a shard it does not hold fails alone.
    let addr_a = rpc_addr(&cluster, "a");
    let all: Vec<ShardId> = held_a.iter().chain(&held_b).copied().collect();
    let request = SearchRequest {
        generation: None,
        query: "anarchism".into(),
        syntax: Syntax::Lenient,
        shards: all.clone(),
        top_k: 3,
        fetch: None,
        stats: GlobalStats::default(),
    };
    let response = search(&addr_a, &request);
    let mut docs = Vec::new();
    for (shard, outcome) in &response.shards {
        match outcome {
            ShardOutcome::Ok(hits) => docs.extend(hits.hits.iter().map(|h| DocRef {
                shard: *shard,
                segment: h.segment,
                doc: h.doc,
            })),
            ShardOutcome::Failed(reason) => {
                assert!(
                    held_b.contains(shard) && reason == "not served here",
                    "{shard}: {reason}"
                )
            }
        }
    }
    assert!(!docs.is_empty(), "no anarchism hit on node a's shards");
    let fetched = fetch(
        &addr_a,
        &FetchRequest {
            generation: None,
            query: "anarchism".into(),
            syntax: Syntax::Lenient,
            docs: docs.clone(),
            snippet_chars: 150,
            stats: GlobalStats::default(),
        },
    );
    assert_eq!(fetched.docs.len(), docs.len());
    for outcome in &fetched.docs {
        let ShardOutcome::Ok(doc) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            !doc.title.is_empty() && doc.url.starts_with("http"),
            "{doc:?}"
        );
        assert!(!doc.snippet_html.is_empty(), "{doc:?}");
    }

    // Bad frames: 4xx with a message, and the node keeps answering.
    let frame = wire::encode(&Call::new(&request, BUDGET)).unwrap();
    for (body, path, expected) in [
        (b"garbage garbage".to_vec(), wire::paths::SEARCH, 400),
        (frame[..frame.len() / 2].to_vec(), wire::paths::SEARCH, 400),
        (frame.clone(), "/rpc/unknown", 404),
    ] {
        let (status, message) = post_raw(&addr_a, path, &body).expect("node reachable");
        assert_eq!(status, expected, "{}", String::from_utf8_lossy(&message));
        assert!(!message.is_empty());
    }
    // An oversized body is refused from its declared length, before it is read (a client
    // still sending it would see the connection closed, so only the head is sent here).
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: node\r\ncontent-length: {}\r\n{AUTH_HEADER}: {}\r\n\r\n",
        wire::paths::SEARCH,
        wire::MAX_FRAME_BYTES + 1,
        auth_value("POST", wire::paths::SEARCH, b"")
    );
    let mut stream = std::net::TcpStream::connect(&addr_a).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(health(&addr_a).unwrap().node, "a");

    // SIGTERM: a clean exit.
    let mut node_a = node_a;
    node_a.signal(Signal::SIGTERM);
    let status = wait_for("node a to exit", Duration::from_secs(60), || {
        node_a.child.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
}

#[test]
fn node_refuses_a_corrupted_replica_and_serves_the_rest() {
    let tmp = temp_dir("searcher-node-corrupt");
    let store = build_store(tmp.path());
    let victim = ShardId::new(0, 1, 1, SHARDS).unwrap();
    let (_, dir) = shard_proto::store::live_shard_dirs(&store)
        .unwrap()
        .into_iter()
        .find(|(id, _)| *id == victim)
        .expect("the victim shard is published");
    let manifest = ShardManifest::read(&dir).unwrap();
    let file = manifest.files.iter().max_by_key(|f| f.bytes).unwrap();
    let path = dir.join(&file.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let cluster = write_cluster(tmp.path(), &["solo"], 1);
    let (_node, health) = spawn_node(&cluster, "solo");
    assert_eq!(health.replicas.len(), SHARDS as usize);
    for (shard, state) in &health.replicas {
        match (shard == &victim, state) {
            (true, ReplicaState::Failed(reason)) => {
                assert!(reason.contains(&file.name), "{reason}")
            }
            (
                false,
                ReplicaState::Serving {
                    docs,
                    bytes,
                    generation,
                },
            ) => {
                // What it holds: the build's generation and its bytes, as the store has them.
                assert!(*docs > 0);
                let (_, dir) = shard_proto::store::live_shard_dirs(&store)
                    .unwrap()
                    .into_iter()
                    .find(|(id, _)| id == shard)
                    .unwrap();
                let manifest = ShardManifest::read(&dir).unwrap();
                let expected: u64 = manifest.files.iter().map(|f| f.bytes).sum();
                assert_eq!(*bytes, expected);
                let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                assert_eq!(
                    *generation,
                    shard_proto::store::generation_of_dir_name(&name)
                );
                assert!(generation.is_some(), "indexer build names generations");
            }
            other => panic!("{shard}: {other:?}"),
        }
    }
    let addr = rpc_addr(&cluster, "solo");
    let shards = (0..SHARDS)
        .map(|s| ShardId::new(0, 1, s, SHARDS).unwrap())
        .collect();
    let request = SearchRequest {
        generation: None,
        query: "the".into(),
        syntax: Syntax::Lenient,
        shards,
        top_k: 5,
        fetch: None,
        stats: GlobalStats::default(),
    };
    let response = search(&addr, &request);
    for (shard, outcome) in &response.shards {
        match outcome {
            ShardOutcome::Failed(reason) => {
                assert!(shard == &victim && reason == "not served here")
            }
            ShardOutcome::Ok(hits) => assert!(shard != &victim && !hits.hits.is_empty()),
        }
    }
}
