//! The searcher cluster as a user runs it: shards built by the real `indexer` from the
//! English sample dump, `searcher node` processes and a `searcher frontend` on loopback
//! ports, driven over HTTP.
//!
//! - exactness: the front-end's top 10 over 1, 3 and 8 shards is what one tantivy index
//!   over the same articles returns (same ids, same order up to ties, scores within 1e-4),
//!   for 70 queries made from the articles themselves and their redirect titles, over
//!   every scored field (the link pass fills redirects and anchors) with the ranking's
//!   exact-match, phrase and link-prior signals; pages concatenate to the top N;
//! - failover with R = 2 on 3 nodes: SIGKILL, restart (rejoin), SIGSTOP, and every replica
//!   of one shard killed (partial answer naming the shard, coverage < 1, 503 on request);
//! - bad requests get a 4xx with a message and leave every process up.
//!
//! Waits are generous and conditions, never timings.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shard_proto::{query_parser, WikiSchema};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::QueryParser;
use tantivy::schema::Value as _;
use tantivy::{Index, ReloadPolicy, Searcher, TantivyDocument};
use tests::cluster_secret::{write_secret, AUTH_TABLE};
use tests::Signal;
use tests::{
    bin, free_port, get_json, process_alive, raw_http, run_ok, shared_corpus, temp_dir, wait_for,
    ChildGuard,
};
use tools::bench::loadgen::percent_encode;

const PATIENCE: Duration = Duration::from_secs(60);
/// Scores of the same document computed by two processes may differ in the last bits.
const SCORE_TOLERANCE: f32 = 1e-4;

/// Builds `shards` shards of the English sample into `out` with the real indexer, link
/// pass included (so every scored field, redirects and anchors too, holds text).
pub(crate) fn build_shards(out: &Path, shards: u32) {
    let input = shared_corpus("enwiki-sample.xml.bz2");
    let links = out.join("links");
    run_ok(
        Command::new(bin("indexer"))
            .args(["links", "--threads", "2", "--input"])
            .arg(&input)
            .arg("--out")
            .arg(&links)
            .stdout(Stdio::null()),
    );
    run_ok(
        Command::new(bin("indexer"))
            .args(["build", "--threads", "2", "--memory-mb", "256", "--shards"])
            .arg(shards.to_string())
            .arg("--input")
            .arg(&input)
            .arg("--links")
            .arg(&links)
            .arg("--out")
            .arg(out)
            .stdout(Stdio::null()),
    );
}

/// A running cluster: nodes (restartable) and one front-end, logs in the test directory.
pub(crate) struct Cluster {
    dir: PathBuf,
    config: PathBuf,
    node_ids: Vec<String>,
    node_ports: Vec<u16>,
    nodes: Vec<Option<ChildGuard>>,
    starts: usize,
    _frontend: ChildGuard,
    pub(crate) url: String,
}

impl Cluster {
    pub(crate) fn start(dir: &Path, store: &Path, nodes: usize, replication: usize) -> Cluster {
        let node_ids: Vec<String> = (0..nodes).map(|i| format!("node{i}")).collect();
        let node_ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let frontend_port = free_port();
        let mut toml = format!(
            "shard_store = {store:?}\nreplication = {replication}\n\n[frontend]\nlisten = \"127.0.0.1:{frontend_port}\"\n\n\
             [timeouts]\nattempt_ms = 700\ndeadline_ms = 5000\nprobe_interval_ms = 200\nconnect_ms = 250\neject_after_failures = 2\n{AUTH_TABLE}"
        );
        write_secret(dir);
        for (id, port) in node_ids.iter().zip(&node_ports) {
            toml.push_str(&format!(
                "\n[[node]]\nid = \"{id}\"\nrpc = \"127.0.0.1:{port}\"\n"
            ));
        }
        let config = dir.join("cluster.toml");
        std::fs::write(&config, toml).expect("write cluster file");
        std::fs::create_dir_all(dir.join("logs")).expect("log dir");
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            config: config.clone(),
            node_ids,
            node_ports,
            nodes: (0..nodes).map(|_| None).collect(),
            starts: 0,
            _frontend: spawn_logged(dir, "frontend", &["frontend", "--config"], &config),
            url: format!("http://127.0.0.1:{frontend_port}"),
        };
        for i in 0..nodes {
            cluster.start_node(i);
        }
        cluster.wait_all_up();
        cluster
    }

    pub(crate) fn start_node(&mut self, i: usize) {
        self.starts += 1;
        let name = format!("{}-start{}", self.node_ids[i], self.starts);
        let args = ["node", "--id", &self.node_ids[i], "--config"];
        self.nodes[i] = Some(spawn_logged(&self.dir, &name, &args, &self.config));
    }

    fn node(&self, i: usize) -> &ChildGuard {
        self.nodes[i].as_ref().expect("node running")
    }

    pub(crate) fn kill_node(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.signal(Signal::SIGKILL);
            let _ = node.child.wait();
        }
    }

    fn cluster_view(&self) -> Value {
        get_json(&format!("{}/cluster", self.url))
            .expect("/cluster answers")
            .1
    }

    /// Until every node is up with the pid of the process we started.
    pub(crate) fn wait_all_up(&self) {
        wait_for("every node up in /cluster", PATIENCE, || {
            let (_, view) = get_json(&format!("{}/cluster", self.url))?;
            let nodes = view["nodes"].as_array()?;
            let ready = nodes.iter().enumerate().all(|(i, n)| match &self.nodes[i] {
                Some(child) => n["state"] == "up" && n["pid"].as_u64() == Some(child.pid() as u64),
                None => true,
            });
            ready.then_some(())
        });
    }

    /// Retries, hedges and ejections so far, from `/metrics` (printed, never asserted on).
    fn failover_counters(&self) -> String {
        let port: u16 = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let (_, text) = raw_http(
            port,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(30),
        );
        text.lines()
            .filter(|l| {
                [
                    "_retries_total",
                    "_hedges_total",
                    "_hedges_won_total",
                    "_ejections_total",
                ]
                .iter()
                .any(|k| l.contains(k))
            })
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn search(&self, params: &str) -> (u16, Value) {
        get_json(&format!("{}/search?{params}", self.url)).expect("front-end answers")
    }

    fn search_q(&self, q: &str, extra: &str) -> (u16, Value) {
        self.search(&format!("q={}{extra}", percent_encode(q)))
    }
}

fn spawn_logged(dir: &Path, name: &str, args: &[&str], config: &Path) -> ChildGuard {
    let log =
        std::fs::File::create(dir.join("logs").join(format!("{name}.log"))).expect("log file");
    let mut cmd = Command::new(bin("searcher"));
    cmd.args(args)
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    ChildGuard::spawn(name, &mut cmd)
}

/// The single-index reference: one shard holding every article, searched in-process.
pub(crate) struct Reference {
    searcher: Searcher,
    parser: QueryParser,
    schema: WikiSchema,
}

impl Reference {
    pub(crate) fn open(store: &Path) -> Reference {
        let shard_dir = std::fs::read_dir(store)
            .expect("reference store")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.join("manifest.json").exists())
            .expect("one published shard");
        let index = Index::open_in_dir(&shard_dir).expect("open reference index");
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .expect("reader");
        let schema = WikiSchema::of_index(&index).expect("a known schema");
        Reference {
            searcher: reader.searcher(),
            parser: query_parser(&schema),
            schema,
        }
    }

    /// Top `k` (id, score) and the hit count.
    fn top(&self, q: &str, k: usize) -> (Vec<(u64, f32)>, usize) {
        let parsed = self.parser.parse_query(q).expect("reference parses");
        let query = shard_proto::rank(&self.schema, parsed, q);
        let (top, count) = self
            .searcher
            .search(&query, &(TopDocs::with_limit(k).order_by_score(), Count))
            .expect("reference search");
        let hits = top
            .into_iter()
            .map(|(score, addr)| {
                let doc: TantivyDocument = self.searcher.doc(addr).expect("stored doc");
                let id = doc
                    .get_first(self.schema.fields.id)
                    .and_then(|v| v.as_u64())
                    .expect("id");
                (id, score)
            })
            .collect();
        (hits, count)
    }

    /// Up to `n` redirect titles attached to articles by the link pass, as typed queries.
    fn redirect_queries(&self, n: usize) -> Vec<String> {
        let f = self.schema.fields;
        let mut out = Vec::new();
        for (ord, segment) in self.searcher.segment_readers().iter().enumerate() {
            for doc in segment.doc_ids_alive() {
                let doc: TantivyDocument = self
                    .searcher
                    .doc(tantivy::DocAddress::new(ord as u32, doc))
                    .expect("stored doc");
                let first = doc.get_first(f.redirects).and_then(|v| v.as_str());
                out.extend(first.map(shard_proto::title_key));
            }
        }
        out.sort();
        out.truncate(n);
        out
    }

    /// Every article's title and body, by id.
    pub(crate) fn articles(&self) -> Vec<(u64, String, String)> {
        let f = self.schema.fields;
        let mut out = Vec::new();
        for (ord, segment) in self.searcher.segment_readers().iter().enumerate() {
            for doc in segment.doc_ids_alive() {
                let doc: TantivyDocument = self
                    .searcher
                    .doc(tantivy::DocAddress::new(ord as u32, doc))
                    .expect("stored doc");
                let text = |field| {
                    doc.get_first(field)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                let id = doc.get_first(f.id).and_then(|v| v.as_u64()).expect("id");
                out.push((id, text(f.title), text(f.body)));
            }
        }
        out.sort_by_key(|a| a.0);
        out
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn plain(word: &str) -> bool {
    word.len() >= 4 && word.len() <= 14 && word.bytes().all(|b| b.is_ascii_lowercase())
}

/// 60 queries made from the articles: single title terms, `+a +b` from one body, two-word
/// phrases from a body, and unions of words from different articles.
pub(crate) fn queries_from(articles: &[(u64, String, String)]) -> Vec<String> {
    let mut queries = Vec::new();
    let step = (articles.len() / 15).max(1);
    for (n, (_, title, body)) in articles.iter().step_by(step).take(15).enumerate() {
        let title_words: Vec<String> = words(title).into_iter().filter(|w| plain(w)).collect();
        let body_words = words(body);
        let plain_body: Vec<&String> = body_words.iter().filter(|w| plain(w)).collect();
        if let Some(w) = title_words.first().or(plain_body.first().copied()) {
            queries.push(w.clone());
        }
        if plain_body.len() > 40 {
            queries.push(format!("+{} +{}", plain_body[10 + n], plain_body[30 + n]));
        }
        if let Some(pair) = body_words
            .windows(2)
            .skip(20 + n * 3)
            .find(|p| plain(&p[0]) && plain(&p[1]))
        {
            queries.push(format!("\"{} {}\"", pair[0], pair[1]));
        }
        let other = &articles[(n * step + articles.len() / 2) % articles.len()];
        let other_words: Vec<String> = words(&other.2).into_iter().filter(|w| plain(w)).collect();
        if let (Some(a), Some(b)) = (plain_body.get(5 + n), other_words.get(7 + n)) {
            queries.push(format!("{a} {b}"));
        }
    }
    queries
}

/// The front-end's hits equal the reference's: same scores position by position, and at
/// each position an id the reference ranks with that very score (ties may permute).
pub(crate) fn assert_same_top(q: &str, answer: &Value, reference: &Reference, size: usize) {
    let (expected, count) = reference.top(q, 100);
    let hits = answer["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: no hits array: {answer}"));
    assert_eq!(answer["total"].as_u64(), Some(count as u64), "{q}: total");
    assert_eq!(answer["partial"], false, "{q}: {answer}");
    assert_eq!(hits.len(), expected.len().min(size), "{q}: hit count");
    let mut seen = BTreeSet::new();
    for (i, hit) in hits.iter().enumerate() {
        let id = hit["id"].as_u64().expect("id");
        let score = hit["score"].as_f64().expect("score") as f32;
        assert!(seen.insert(id), "{q}: id {id} twice");
        let (_, expected_score) = expected[i];
        assert!(
            (score - expected_score).abs() <= SCORE_TOLERANCE,
            "{q}: position {i}: score {score} vs reference {expected_score}"
        );
        let ties: Vec<u64> = expected
            .iter()
            .filter(|(_, s)| (s - expected_score).abs() <= 1e-6)
            .map(|(id, _)| *id)
            .collect();
        assert!(
            ties.contains(&id),
            "{q}: position {i}: id {id}, reference has {ties:?}"
        );
        assert!(
            !hit["title"].as_str().unwrap_or("").is_empty(),
            "{q}: hit {id} without title"
        );
    }
}

#[test]
fn top_10_over_1_3_and_8_shards_equals_one_index_and_pages_concatenate() {
    let dir = temp_dir("exact");
    build_shards(&dir.path().join("reference"), 1);
    let reference = Reference::open(&dir.path().join("reference"));
    let mut queries = queries_from(&reference.articles());
    // Redirect titles score on every field and get the exact-match bonus.
    let redirects = reference.redirect_queries(10);
    assert_eq!(redirects.len(), 10, "the link pass attached redirects");
    queries.extend(redirects);
    assert!(
        queries.len() >= 60,
        "only {} queries: {queries:?}",
        queries.len()
    );
    // Query → its page's (id, snippet) over 1 shard: snippets weigh terms by global
    // statistics, so more shards must show the very same fragments.
    let mut one_shard_snippets: std::collections::HashMap<String, Vec<(Value, Value)>> =
        Default::default();
    for shards in [1u32, 3, 8] {
        let cluster_dir = dir.path().join(format!("s{shards}"));
        std::fs::create_dir_all(&cluster_dir).unwrap();
        build_shards(&cluster_dir.join("store"), shards);
        let cluster = Cluster::start(&cluster_dir, &cluster_dir.join("store"), 3, 2);
        let mut matched = 0;
        for q in &queries {
            let (status, answer) = cluster.search_q(q, "&size=10&search_type=query_then_fetch");
            assert_eq!(status, 200, "{q}: {answer}");
            assert_same_top(q, &answer, &reference, 10);
            let snippets: Vec<(Value, Value)> = answer["hits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| (h["id"].clone(), h["snippet"].clone()))
                .collect();
            let first = one_shard_snippets
                .entry(q.clone())
                .or_insert(snippets.clone());
            assert_eq!(
                *first, snippets,
                "{q}: snippets differ over {shards} shards"
            );
            matched += answer["hits"].as_array().map_or(0, |h| h.len().min(1));
            // Query-and-fetch: the same page, with documents fetched in the query phase.
            let (status, piggybacked) = cluster.search_q(q, "&size=10&search_type=query_and_fetch");
            assert_eq!(status, 200, "{q}: {piggybacked}");
            assert_eq!(
                without_timing(&piggybacked),
                without_timing(&answer),
                "{q}: query_and_fetch differs from query_then_fetch"
            );
        }
        assert!(
            matched >= 50,
            "{shards} shards: only {matched} queries had hits"
        );
        if shards == 3 {
            assert_pages_concatenate(&cluster);
        }
    }
}

/// An answer without `took_ms` and the answering node of each hit (either replica may
/// serve a shard), for comparing two answers to the same query.
fn without_timing(answer: &Value) -> Value {
    let mut answer = answer.clone();
    answer["took_ms"] = Value::Null;
    for hit in answer["hits"].as_array_mut().into_iter().flatten() {
        hit["node"] = Value::Null;
    }
    answer
}

/// `from`/`size` pages of a query with many hits concatenate to its top 60.
fn assert_pages_concatenate(cluster: &Cluster) {
    let q = "the history";
    let (_, all) = cluster.search_q(q, "&size=60");
    let top: Vec<u64> = all["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect();
    assert_eq!(top.len(), 60, "{all}");
    let mut paged = Vec::new();
    for from in (0..60).step_by(7) {
        let (status, page) = cluster.search_q(q, &format!("&from={from}&size=7"));
        assert_eq!(status, 200);
        paged.extend(
            page["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_u64().unwrap()),
        );
    }
    paged.truncate(60);
    assert_eq!(paged, top, "pages must concatenate to the top 60");
    assert_eq!(
        paged.iter().collect::<BTreeSet<_>>().len(),
        60,
        "no duplicates"
    );
}

fn ids(answer: &Value) -> Vec<u64> {
    answer["hits"].as_array().map_or_else(Vec::new, |h| {
        h.iter().filter_map(|h| h["id"].as_u64()).collect()
    })
}

const FAILOVER_QUERIES: [&str; 5] = [
    "anarchism",
    "the history",
    "+science +theory",
    "\"united states\"",
    "language",
];

/// Every failover query answers in full with the same hits as before the fault.
fn assert_full_answers(cluster: &Cluster, baseline: &[Vec<u64>], rounds: usize, when: &str) {
    for _ in 0..rounds {
        for (q, expected) in FAILOVER_QUERIES.iter().zip(baseline) {
            let (status, answer) = cluster.search_q(q, "");
            assert_eq!(status, 200, "{when}: {q}: {answer}");
            assert_eq!(answer["partial"], false, "{when}: {q}: {answer}");
            assert_eq!(&ids(&answer), expected, "{when}: {q}");
        }
    }
}

#[test]
fn failover_kill_restart_stop_and_lost_shard() {
    let dir = temp_dir("failover-cluster");
    let store = dir.path().join("store");
    build_shards(&store, 6);
    let mut cluster = Cluster::start(dir.path(), &store, 3, 2);
    let baseline: Vec<Vec<u64>> = FAILOVER_QUERIES
        .iter()
        .map(|q| {
            let (status, answer) = cluster.search_q(q, "");
            assert_eq!(
                (status, &answer["partial"]),
                (200, &Value::Bool(false)),
                "{answer}"
            );
            ids(&answer)
        })
        .collect();

    // SIGKILL: every later query is still answered in full, by the other replicas.
    cluster.kill_node(0);
    assert_full_answers(&cluster, &baseline, 4, "node0 killed");
    wait_for("node0 ejected", PATIENCE, || {
        (cluster.cluster_view()["nodes"][0]["state"] == "down").then_some(())
    });

    // Restart: the prober brings it back.
    cluster.start_node(0);
    cluster.wait_all_up();
    assert_full_answers(&cluster, &baseline, 2, "node0 restarted");

    // SIGSTOP: queries complete (attempt timeout, then another replica) and stay full.
    cluster.node(1).signal(Signal::SIGSTOP);
    let started = Instant::now();
    assert_full_answers(&cluster, &baseline, 3, "node1 stopped");
    println!(
        "15 queries with node1 stopped took {:?}; {}",
        started.elapsed(),
        cluster.failover_counters()
    );
    cluster.node(1).signal(Signal::SIGCONT);
    cluster.wait_all_up();

    // Every replica of one shard killed: partial answer naming it, coverage < 1.
    let view = cluster.cluster_view();
    let shard = &view["shards"][0];
    let lost = shard["id"].as_str().unwrap().to_string();
    let holders: Vec<usize> = shard["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            cluster
                .node_ids
                .iter()
                .position(|id| r["node"] == id.as_str())
                .unwrap()
        })
        .collect();
    for &i in &holders {
        cluster.kill_node(i);
    }
    let (status, answer) = cluster.search_q("the history", "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
    let failures = answer["shards"]["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f["shard"] == lost.as_str() && !f["reason"].as_str().unwrap().is_empty()),
        "{answer}"
    );
    let coverage = answer["coverage"].as_f64().unwrap();
    assert!(coverage < 1.0 && coverage > 0.0, "{answer}");
    let (status, refused) = cluster.search_q("the history", "&allow_partial=false");
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["partial"], true);

    // Bring them back: full answers again.
    for &i in &holders {
        cluster.start_node(i);
    }
    cluster.wait_all_up();
    wait_for("full answers after restart", PATIENCE, || {
        let (_, answer) = cluster.search_q("the history", "");
        (answer["partial"] == false).then_some(())
    });
    assert_full_answers(&cluster, &baseline, 1, "all restarted");
}

/// What people type (tests/data/awkward-queries.json: apostrophes, colons, unbalanced
/// quotes, operators alone, URLs, emoji, mixed scripts) is read leniently: every one is
/// answered 200, and the words in it are searched.
fn awkward_queries_are_answered_never_refused(cluster: &Cluster) {
    let awkward = awkward_queries();
    assert!(awkward.len() >= 100, "{} queries", awkward.len());
    for q in &awkward {
        let (status, body) = cluster.search_q(q, "");
        assert_eq!(status, 200, "{q:?}: {body}");
        assert!(body["hits"].is_array(), "{q:?}: {body}");
    }
    let top_title = |q: &str| {
        let (status, body) = cluster.search_q(q, "");
        assert_eq!(status, 200, "{q:?}: {body}");
        body["hits"][0]["title"].as_str().unwrap_or("").to_string()
    };
    // The examples find what the person meant.
    assert_eq!(top_title("what is: anarchism?"), "Anarchism");
    assert_eq!(top_title("Anarchism OR"), "Anarchism");
    assert!(!ids(&cluster.search_q("\"natural science", "").1).is_empty());
    // `-word` still excludes, `+word` still requires.
    let with = ids(&cluster.search_q("anarchism", "&size=100").1);
    let without = ids(&cluster.search_q("anarchism -anarchism", "&size=100").1);
    assert!(
        !with.is_empty() && without.is_empty(),
        "{with:?} / {without:?}"
    );
}

pub(crate) fn awkward_queries() -> Vec<String> {
    let path = tests::workspace_root().join("tests/data/awkward-queries.json");
    let text = std::fs::read_to_string(&path).expect("read the awkward queries");
    serde_json::from_str(&text).expect("a JSON array of strings")
}

#[test]
fn bad_requests_get_4xx_with_a_message_and_processes_stay_up() {
    let dir = temp_dir("bad-requests");
    let store = dir.path().join("store");
    build_shards(&store, 2);
    let cluster = Cluster::start(dir.path(), &store, 1, 1);
    let cases = [
        ("q=title%3A%28&syntax=strict", "bad query"),
        ("q=nosuchfield%3Ax&syntax=strict", "bad query"),
        ("q=a&syntax=lucene", "syntax must be"),
        ("q=", "missing query"),
        ("size=10", "missing query"),
        ("q=a&size=101", "size must be at most 100"),
        ("q=a&size=ten", "size must be"),
        ("q=a&from=-3", "from must be"),
        ("q=a&from=9991&size=10", "from + size"),
        ("q=a&allow_partial=perhaps", "allow_partial"),
    ];
    for (params, expected) in cases {
        let (status, body) = cluster.search(params);
        assert_eq!(status, 400, "{params}: {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{params}: {body}"));
        assert!(message.contains(expected), "{params}: {message}");
    }
    awkward_queries_are_answered_never_refused(&cluster);
    // A 10 kB query is refused by the front-end with its own message...
    let (status, body) = cluster.search_q(&"word ".repeat(2_000), "");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("4096"), "{body}");
    // ...and a 100 kB one by the HTTP layer, before any work (URI too long).
    let port: u16 = cluster.url.rsplit(':').next().unwrap().parse().unwrap();
    let huge = format!(
        "GET /search?q={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a+".repeat(50_000)
    );
    let (status, _) = raw_http(port, huge.as_bytes(), Duration::from_secs(30));
    assert!(
        (400..500).contains(&status),
        "100 kB query answered {status}"
    );
    // The same 100 kB query as a POST body gets the front-end's message.
    let body = serde_json::json!({ "q": "a ".repeat(50_000), "size": 10 }).to_string();
    let post = format!(
        "POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, message) = raw_http(port, post.as_bytes(), Duration::from_secs(30));
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("max_query_bytes = 4096"), "{message}");
    let post = "POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"q\":\"a\"}";
    let (status, message) = raw_http(port, post.as_bytes(), Duration::from_secs(30));
    assert_eq!(status, 415, "{message}");
    assert!(message.contains("Content-Type"), "{message}");
    let post = "POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{nope";
    let (status, message) = raw_http(port, post.as_bytes(), Duration::from_secs(30));
    assert_eq!(status, 400, "{message}");
    assert!(
        !message.trim().is_empty(),
        "bad JSON body: 400 without a message"
    );
    // Garbage RPC frames to the node: 400 with a reason.
    let garbage = b"\xff\xfe\xfd garbage frame \x00\x01";
    let request = [
        format!(
            "POST /rpc/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-bincode\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            garbage.len()
        )
        .into_bytes(),
        garbage.to_vec(),
    ]
    .concat();
    let (status, body) = raw_http(cluster.node_ports[0], &request, Duration::from_secs(30));
    assert!(
        (400..500).contains(&status),
        "garbage frame answered {status}: {body}"
    );
    assert!(
        !body.trim().is_empty(),
        "garbage frame: 4xx without a message"
    );
    // Everyone is still up and serving.
    assert!(process_alive(cluster.node(0).pid()));
    let (status, answer) = cluster.search_q("anarchism", "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partial"], false, "{answer}");
    assert!(!ids(&answer).is_empty());
    let (status, _) = raw_http(
        port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(30),
    );
    assert_eq!(status, 200);
    let (status, metrics) = raw_http(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(30),
    );
    assert_eq!(status, 200);
    assert!(
        metrics.contains("frontend_requests_total{outcome=\"bad_request\"}"),
        "{metrics}"
    );
}
