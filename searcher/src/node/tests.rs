//! Tests of the node: real tantivy shards with real manifests in a temporary shard store,
//! a real server on 127.0.0.1:0, and the real [`NodeClient`](crate::rpc::NodeClient).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shard_proto::manifest::{InputInfo, ShardManifest, MANIFEST_FORMAT};
use shard_proto::query::Syntax;
use shard_proto::stats::ShardTermStats;
use shard_proto::wire::{
    self, Call, DocRef, FetchRequest, ReplicaState, SearchRequest, ShardHits, ShardOutcome,
    StatsRequest,
};
use shard_proto::{query_parser, GlobalStats, ShardId, WikiSchema};
use tantivy::collector::TopDocs;
use tantivy::schema::Value;
use tantivy::{doc, Index, IndexWriter, TantivyDocument};

use super::leaf::{Leaf, NOT_SERVED};
use super::replicas;
use super::stop::Stop;
use crate::cluster::ClusterConfig;
use crate::rpc::{NodeClient, RpcError};
use crate::test_support::{test_key, write_secret};

/// What the tests' calls give a node to answer.
const BUDGET: Duration = Duration::from_secs(30);

/// A small article set with skewed term frequencies, so global and local statistics
/// really differ between shards.
pub(super) fn articles() -> Vec<(u64, String, String)> {
    let words = [
        "apple", "banana", "cherry", "delta", "echo", "fjord", "<tag>",
    ];
    (1..=60u64)
        .map(|id| {
            let w = |k: u64| words[((id * k + id / 7) % words.len() as u64) as usize];
            let title = format!("{} {}", w(3), w(5));
            let mut body = format!("Article {id} is about {} and {}. ", w(1), w(2));
            body.push_str(&"filler text ".repeat((id % 9) as usize));
            if id % 4 == 0 {
                body.push_str("apple apple orchard");
            }
            (id, title, body)
        })
        .collect()
}

pub(super) fn shard(i: u32, n: u32) -> ShardId {
    ShardId::new(0, 1, i, n).unwrap()
}

/// Writes `docs` as shard `id` into `store/<id>` with its manifest, as the indexer does.
pub(super) fn build_shard(store: &Path, id: ShardId, docs: &[(u64, String, String)]) {
    let dir = store.join(id.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let schema = WikiSchema::new();
    let f = schema.fields;
    let index = Index::create_in_dir(&dir, schema.schema.clone()).unwrap();
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
    for (page, title, body) in docs {
        writer
            .add_document(
                doc!(f.id => *page, f.title => title.as_str(), f.body => body.as_str(),
                f.url => format!("https://en.wikipedia.org/wiki/{page}"), f.categories => "Fruit"),
            )
            .unwrap();
    }
    writer.commit().unwrap();
    writer.wait_merging_threads().unwrap();
    let mut manifest = ShardManifest {
        format: MANIFEST_FORMAT,
        shard: id,
        schema: schema.fingerprint(),
        tantivy_version: tantivy::version_string().to_string(),
        input: InputInfo {
            path: "test".into(),
            bytes: 0,
            format: "xml".into(),
        },
        docs: docs.len() as u64,
        skipped: BTreeMap::new(),
        files: ShardManifest::describe_files(&dir).unwrap(),
        created_unix: 0,
        checksum: String::new(),
    };
    manifest.write(&dir).unwrap();
}

/// A store of `n` shards (articles routed by id) and a one-node cluster file over it.
pub(super) fn one_node_cluster(root: &Path, n: u32) -> ClusterConfig {
    let store = root.join("store");
    let all = articles();
    for i in 0..n {
        let part: Vec<_> = all
            .iter()
            .filter(|a| ShardId::route(a.0, n) == i)
            .cloned()
            .collect();
        build_shard(&store, shard(i, n), &part);
    }
    let path = root.join("cluster.toml");
    write_secret(root);
    std::fs::write(
        &path,
        "shard_store = \"store\"\nreplication = 1\n[auth]\nsecret_file = \"secret\"\n\
         [[node]]\nid = \"a\"\nrpc = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    ClusterConfig::load(&path).unwrap()
}

pub(super) fn all_shards(n: u32) -> Vec<ShardId> {
    (0..n).map(|i| shard(i, n)).collect()
}

/// Global statistics gathered through the leaf's own statistics phase, as the front-end
/// would.
pub(super) fn global_stats(leaf: &Leaf, query: &str, shards: &[ShardId]) -> GlobalStats {
    let schema = WikiSchema::new();
    let parsed = query_parser(&schema).parse_query(query).unwrap();
    let parsed = shard_proto::rank(&schema, parsed, query);
    let terms = GlobalStats::query_terms(parsed.as_ref());
    let fields = schema.scored_fields();
    let request = StatsRequest {
        generation: None,
        shards: shards.to_vec(),
        fields: fields.iter().map(|f| f.field_id()).collect(),
        terms: terms.clone(),
    };
    let answer = leaf.stats(&request, &Stop::never()).unwrap();
    let per_shard: Vec<ShardTermStats> = answer
        .shards
        .into_iter()
        .map(|(_, outcome)| match outcome {
            ShardOutcome::Ok(stats) => stats,
            ShardOutcome::Failed(reason) => panic!("stats failed: {reason}"),
        })
        .collect();
    GlobalStats::merge(&fields, &terms, &per_shard)
}

/// Top `k` (id, score) of one index holding every article: what sharded search must equal.
fn single_index_top(query: &str, k: usize) -> Vec<(u64, f32)> {
    let schema = WikiSchema::new();
    let f = schema.fields;
    let index = Index::create_in_ram(schema.schema.clone());
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
    for (page, title, body) in articles() {
        writer
            .add_document(doc!(f.id => page, f.title => title, f.body => body,
                f.url => format!("https://en.wikipedia.org/wiki/{page}"), f.categories => "Fruit"))
            .unwrap();
    }
    writer.commit().unwrap();
    let searcher = index.reader().unwrap().searcher();
    let parsed = query_parser(&schema).parse_query(query).unwrap();
    let parsed = shard_proto::rank(&schema, parsed, query);
    let top = searcher
        .search(&parsed, &TopDocs::with_limit(k).order_by_score())
        .unwrap();
    top.into_iter()
        .map(|(score, address)| {
            let doc: TantivyDocument = searcher.doc(address).unwrap();
            (doc.get_first(f.id).and_then(|v| v.as_u64()).unwrap(), score)
        })
        .collect()
}

fn installed_leaf(config: &ClusterConfig) -> (Leaf, Vec<(ShardId, ReplicaState)>) {
    let schema = WikiSchema::new();
    let replicas = replicas::install_assigned(config, "a", &schema).unwrap();
    (
        Leaf::new("a".into(), schema, replicas.serving),
        replicas.states,
    )
}

/// Merges per-shard hits by descending score (ties by id), as a front-end does.
fn merged(response: &wire::SearchResponse, k: usize) -> Vec<(u64, f32)> {
    let mut hits: Vec<(u64, f32)> = response
        .shards
        .iter()
        .flat_map(|(_, outcome)| match outcome {
            ShardOutcome::Ok(hits) => hits
                .hits
                .iter()
                .map(|h| (h.id, h.score))
                .collect::<Vec<_>>(),
            ShardOutcome::Failed(reason) => panic!("shard failed: {reason}"),
        })
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits
}

#[test]
fn sharded_leaf_search_with_global_stats_equals_one_index() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 3);
    let (leaf, states) = installed_leaf(&config);
    assert_eq!(states.len(), 3);
    assert!(
        states
            .iter()
            .all(|(_, s)| matches!(s, ReplicaState::Serving { .. })),
        "{states:?}"
    );
    for query in [
        "apple",
        "banana cherry",
        "+apple +orchard",
        "\"apple orchard\"",
        "title:delta echo",
    ] {
        let shards = all_shards(3);
        let request = SearchRequest {
            generation: None,
            query: query.into(),
            syntax: Syntax::Lenient,
            shards: shards.clone(),
            top_k: 10,
            fetch: None,
            stats: global_stats(&leaf, query, &shards),
        };
        let response = leaf.search(&request, &Stop::never()).unwrap();
        let expected = single_index_top(query, 10);
        let got = merged(&response, 10);
        assert!(!expected.is_empty(), "{query} matches nothing");
        assert_eq!(got.len(), expected.len(), "{query}");
        for ((gid, gscore), (eid, escore)) in got.iter().zip(&expected) {
            assert!(
                (gscore - escore).abs() < 1e-4,
                "{query}: {got:?} vs {expected:?}"
            );
            // Equal scores may legitimately tie-break differently; distinct ones may not.
            if got.iter().filter(|h| (h.1 - gscore).abs() < 1e-6).count() == 1 {
                assert_eq!(gid, eid, "{query}: {got:?} vs {expected:?}");
            }
        }
        let total: u64 = response
            .shards
            .iter()
            .map(|(_, o)| match o {
                ShardOutcome::Ok(h) => h.total,
                ShardOutcome::Failed(_) => 0,
            })
            .sum();
        assert!(total >= expected.len() as u64);
    }
}

#[test]
fn fetch_returns_stored_fields_and_escaped_highlighted_snippets() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 2);
    let (leaf, _) = installed_leaf(&config);
    let shards = all_shards(2);
    let query = "body:tag";
    let request = SearchRequest {
        generation: None,
        query: query.into(),
        syntax: Syntax::Lenient,
        shards: shards.clone(),
        top_k: 5,
        fetch: None,
        stats: GlobalStats::default(),
    };
    let response = leaf.search(&request, &Stop::never()).unwrap();
    let mut refs = Vec::new();
    let mut ids = Vec::new();
    for (shard, outcome) in &response.shards {
        let ShardOutcome::Ok(hits) = outcome else {
            panic!("{outcome:?}")
        };
        for hit in &hits.hits {
            refs.push(DocRef {
                shard: *shard,
                segment: hit.segment,
                doc: hit.doc,
            });
            ids.push(hit.id);
        }
    }
    refs.push(DocRef {
        shard: shards[0],
        segment: 9,
        doc: 0,
    }); // no such segment
    refs.push(DocRef {
        shard: shard(5, 9),
        segment: 0,
        doc: 0,
    }); // not held here
    let fetched = leaf
        .fetch(
            &FetchRequest {
                generation: None,
                query: query.into(),
                syntax: Syntax::Lenient,
                docs: refs.clone(),
                snippet_chars: 80,
                stats: request.stats.clone(),
            },
            &Stop::never(),
        )
        .unwrap();
    assert_eq!(fetched.docs.len(), refs.len());
    let n = ids.len();
    assert!(n >= 2);
    for (outcome, id) in fetched.docs[..n].iter().zip(&ids) {
        let ShardOutcome::Ok(doc) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(doc.id, *id);
        assert_eq!(doc.url, format!("https://en.wikipedia.org/wiki/{id}"));
        assert!(!doc.title.is_empty());
        assert!(doc.snippet_html.contains("&lt;<b>tag</b>&gt;"), "{doc:?}");
        assert!(doc.snippet_html.chars().count() < 200, "{doc:?}");
    }
    assert!(matches!(&fetched.docs[n], ShardOutcome::Failed(r) if r.contains("no document")));
    assert_eq!(fetched.docs[n + 1], ShardOutcome::Failed(NOT_SERVED.into()));
}

#[test]
fn bad_requests_are_refused_as_a_whole_and_unknown_shards_fail_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 1);
    let (leaf, _) = installed_leaf(&config);
    let mut request = SearchRequest {
        generation: None,
        query: "title:(".into(),
        syntax: Syntax::Strict,
        shards: vec![shard(0, 1), shard(1, 2)],
        top_k: 10,
        fetch: None,
        stats: GlobalStats::default(),
    };
    assert!(leaf
        .search(&request, &Stop::never())
        .unwrap_err()
        .0
        .contains("does not parse"));
    request.query = "apple".into();
    request.top_k = 1_000_000;
    assert!(leaf
        .search(&request, &Stop::never())
        .unwrap_err()
        .0
        .contains("top_k"));
    request.top_k = 0;
    let response = leaf.search(&request, &Stop::never()).unwrap();
    let ShardOutcome::Ok(hits) = &response.shards[0].1 else {
        panic!()
    };
    assert!(hits.hits.is_empty() && hits.total > 0);
    assert_eq!(
        response.shards[1].1,
        ShardOutcome::Failed(NOT_SERVED.into())
    );
    let stats = StatsRequest {
        generation: None,
        shards: vec![shard(0, 1)],
        fields: vec![99],
        terms: vec![],
    };
    assert!(leaf
        .stats(&stats, &Stop::never())
        .unwrap_err()
        .0
        .contains("field id 99"));
}

/// The live directory of `id` in `store` (a generation directory named by its slice
/// record).
fn store_dir(store: &Path, id: ShardId) -> std::path::PathBuf {
    shard_proto::store::live_shard_dirs(store)
        .unwrap()
        .into_iter()
        .find(|(live, _)| *live == id)
        .expect("shard in the store")
        .1
}

#[test]
fn corrupted_replica_is_refused_and_the_others_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 3);
    let store = config.shard_store.as_dir().expect("a directory store");
    let victim = store_dir(store, shard(1, 3));
    let manifest = ShardManifest::read(&victim).unwrap();
    let file = manifest.files.iter().max_by_key(|f| f.bytes).unwrap();
    let path = victim.join(&file.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();

    let schema = WikiSchema::new();
    let replicas = replicas::install_assigned(&config, "a", &schema).unwrap();
    let state = |i| {
        replicas
            .states
            .iter()
            .find(|(s, _)| *s == shard(i, 3))
            .unwrap()
            .1
            .clone()
    };
    assert!(matches!(state(0), ReplicaState::Serving { .. }));
    assert!(matches!(state(2), ReplicaState::Serving { .. }));
    match state(1) {
        ReplicaState::Failed(reason) => assert!(reason.contains("corrupted"), "{reason}"),
        other => panic!("corrupted replica was accepted: {other:?}"),
    }
    // Refused replicas never reach the data directory, and nothing half-built is left.
    let data_dir = config.node("a").unwrap().data_dir();
    let mut entries: Vec<String> = std::fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        vec![shard(0, 3).to_string(), shard(2, 3).to_string()]
    );
    let leaf = Leaf::new("a".into(), schema, replicas.serving);
    let request = SearchRequest {
        generation: None,
        query: "apple".into(),
        syntax: Syntax::Lenient,
        shards: all_shards(3),
        top_k: 3,
        fetch: None,
        stats: GlobalStats::default(),
    };
    let response = leaf.search(&request, &Stop::never()).unwrap();
    assert!(matches!(response.shards[0].1, ShardOutcome::Ok(_)));
    assert_eq!(
        response.shards[1].1,
        ShardOutcome::Failed(NOT_SERVED.into())
    );
    assert!(matches!(response.shards[2].1, ShardOutcome::Ok(_)));
}

#[test]
fn installed_copy_is_reused_and_a_damaged_one_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 1);
    let schema = WikiSchema::new();
    let first = replicas::install_assigned(&config, "a", &schema).unwrap();
    assert_eq!(first.serving.len(), 1);
    drop(first);
    let installed = config
        .node("a")
        .unwrap()
        .data_dir()
        .join(shard(0, 1).to_string());
    let marker = installed.join(".tantivy-meta.lock");
    std::fs::write(&marker, b"").unwrap(); // lock files do not make a copy unverified
    let again = replicas::install_assigned(&config, "a", &schema).unwrap();
    assert_eq!(again.serving.len(), 1);
    assert!(
        marker.exists(),
        "a verified copy was reinstalled instead of reused"
    );
    drop(again);
    // A stray file makes the installed copy unverifiable: it is rebuilt from the store.
    std::fs::write(installed.join("stray.idx"), b"x").unwrap();
    let rebuilt = replicas::install_assigned(&config, "a", &schema).unwrap();
    assert_eq!(rebuilt.serving.len(), 1, "{:?}", rebuilt.states);
    assert!(!installed.join("stray.idx").exists());
}

/// A node server on 127.0.0.1:0 over `config`, stopped by the returned sender.
async fn start_node(
    config: ClusterConfig,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        super::run(config, "a".into(), listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, task)
}

/// Sends raw bytes on a fresh connection and returns the status code of the answer.
fn raw_status(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).unwrap();
    std::str::from_utf8(&answer[9..12])
        .unwrap()
        .parse()
        .unwrap()
}

/// The credentials header line of a request signed with the tests' key.
fn auth_line(method: &str, path: &str, body: &[u8]) -> String {
    let value = test_key().sign(method, path, body, rand::random());
    format!("{}: {value}\r\n", shard_proto::auth::AUTH_HEADER)
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{}connection: close\r\n\r\n",
        body.len(),
        auth_line("POST", path, body)
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_round_trip_and_survive_bad_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 2);
    let (addr, stop, task) = start_node(config).await;
    let client = NodeClient::new("a", addr.into(), Duration::from_secs(5), test_key());
    let health = client.health().await.unwrap();
    assert_eq!(health.node, "a");
    // A host name is resolved when connecting.
    let name = format!("localhost:{}", addr.port()).parse().unwrap();
    let by_name = NodeClient::new("a", name, Duration::from_secs(5), test_key());
    assert_eq!(by_name.health().await.unwrap().node, "a");
    assert_eq!(health.pid, std::process::id());
    assert_eq!(health.schema, WikiSchema::new().fingerprint());
    assert_eq!(health.replicas.len(), 2);

    let search = SearchRequest {
        generation: None,
        query: "apple".into(),
        syntax: Syntax::Lenient,
        shards: all_shards(2),
        top_k: 5,
        fetch: None,
        stats: GlobalStats::default(),
    };
    let response = client.search(&search, BUDGET).await.unwrap();
    assert_eq!(response.node, "a");
    assert!(response
        .shards
        .iter()
        .all(|(_, o)| matches!(o, ShardOutcome::Ok(h) if !h.hits.is_empty())));

    let bad = SearchRequest {
        generation: None,
        query: "title:(".into(),
        syntax: Syntax::Strict,
        ..search.clone()
    };
    match client.search(&bad, BUDGET).await {
        Err(RpcError::Status(400, message)) => {
            assert!(message.contains("does not parse"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    let frame = wire::encode(&Call::new(&search, BUDGET)).unwrap();
    let cases: Vec<(u16, Vec<u8>)> = vec![
        (400, post(wire::paths::SEARCH, b"\xff\xff\xff garbage")),
        (400, post(wire::paths::SEARCH, &frame[..frame.len() / 2])),
        (
            400,
            post(wire::paths::SEARCH, &[frame.as_slice(), &[0]].concat()),
        ), // trailing byte
        (
            413,
            format!(
                "POST {} HTTP/1.1\r\nhost: x\r\ncontent-length: 999999999\r\n{}\r\n",
                wire::paths::SEARCH,
                auth_line("POST", wire::paths::SEARCH, b"")
            )
            .into_bytes(),
        ),
        (404, post("/rpc/nope", &frame)),
        (
            405,
            format!(
                "GET {} HTTP/1.1\r\nhost: x\r\n{}\r\n",
                wire::paths::SEARCH,
                auth_line("GET", wire::paths::SEARCH, b"")
            )
            .into_bytes(),
        ),
        (405, post(wire::paths::HEALTH, b"")),
    ];
    for (expected, request) in cases {
        let status = tokio::task::spawn_blocking(move || raw_status(addr, &request))
            .await
            .unwrap();
        assert_eq!(status, expected);
    }
    // A chunked body that grows past the limit without declaring its length: refused for
    // the missing length before a byte of it is read.
    let oversized = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{}\r\n",
            wire::paths::SEARCH,
            auth_line("POST", wire::paths::SEARCH, b"")
        );
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0;
        while sent <= wire::MAX_FRAME_BYTES {
            if stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .is_err()
                || stream.write_all(&chunk).is_err()
                || stream.write_all(b"\r\n").is_err()
            {
                break; // the server may answer and close before reading it all
            }
            sent += chunk.len();
        }
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).unwrap();
        String::from_utf8_lossy(&answer[9..12]).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(oversized, "411");
    // Still answering after all of that: the same top 5 and count (a shard's own hits
    // may differ, as the shards of one request share a bar raised as they run).
    let again = client.search(&search, BUDGET).await.unwrap();
    assert_eq!(
        merged_top(&again.shards, 5),
        merged_top(&response.shards, 5)
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_then_stops_accepting() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 1);
    let (addr, stop, task) = start_node(config).await;
    let client = NodeClient::new("a", addr.into(), Duration::from_secs(5), test_key());
    client.health().await.unwrap();
    let search = SearchRequest {
        generation: None,
        query: "apple".into(),
        syntax: Syntax::Lenient,
        shards: all_shards(1),
        top_k: 3,
        fetch: None,
        stats: GlobalStats::default(),
    };
    let frame = wire::encode(&Call::new(&search, BUDGET)).unwrap();
    // A request whose body is half sent when the shutdown starts: it is in flight.
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = post(wire::paths::SEARCH, &frame);
    let split = request.len() - frame.len() / 2;
    stream.write_all(&request[..split]).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // let the server read the head
    stop.send(()).unwrap();
    // New connections are refused once the listener is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !task.is_finished(),
        "the server quit with a request in flight"
    );
    let answer = tokio::task::spawn_blocking(move || {
        stream.write_all(&request[split..]).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn query_and_fetch_attaches_the_nodes_best_hits_with_their_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 3);
    let (leaf, _) = installed_leaf(&config);
    let shards = all_shards(3);
    let query = "apple orchard";
    let top_k = 4;
    let plain = SearchRequest {
        generation: None,
        query: query.into(),
        syntax: Syntax::Lenient,
        shards: shards.clone(),
        top_k,
        fetch: None,
        stats: global_stats(&leaf, query, &shards),
    };
    let with_docs = SearchRequest {
        generation: None,
        fetch: Some(wire::PiggybackFetch {
            docs: top_k,
            snippet_chars: 80,
        }),
        ..plain.clone()
    };
    let (without, with) = (
        leaf.search(&plain, &Stop::never()).unwrap(),
        leaf.search(&with_docs, &Stop::never()).unwrap(),
    );
    // The node's best `top_k` over all its shards, by score then id.
    let expected = merged(&without, top_k as usize);
    let mut attached = Vec::new();
    for (_, outcome) in &with.shards {
        let ShardOutcome::Ok(found) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(found.hits.len() >= found.docs.len());
        for (hit, doc) in found.hits.iter().zip(&found.docs) {
            assert_eq!(doc.id, hit.id, "a document belongs to its hit");
            assert!(
                !doc.title.is_empty() && !doc.snippet_html.is_empty(),
                "{doc:?}"
            );
            attached.push(hit.id);
        }
    }
    attached.sort_unstable();
    let mut expected_ids: Vec<u64> = expected.iter().map(|(id, _)| *id).collect();
    expected_ids.sort_unstable();
    assert_eq!(attached, expected_ids);
    assert!(without.shards.iter().all(|(_, o)| match o {
        ShardOutcome::Ok(found) => found.docs.is_empty(),
        ShardOutcome::Failed(_) => true,
    }));
}

/// The best `k` (score, page id) over every shard's hits, best first, and the total count.
fn merged_top(shards: &[(ShardId, ShardOutcome<ShardHits>)], k: usize) -> (Vec<(u32, u64)>, u64) {
    let mut hits = Vec::new();
    let mut total = 0;
    for (_, outcome) in shards {
        let ShardOutcome::Ok(shard) = outcome else {
            panic!("a shard failed: {outcome:?}");
        };
        total += shard.total;
        hits.extend(shard.hits.iter().map(|h| (h.score, h.id)));
    }
    hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    hits.truncate(k);
    (
        hits.into_iter().map(|(s, id)| (s.to_bits(), id)).collect(),
        total,
    )
}
