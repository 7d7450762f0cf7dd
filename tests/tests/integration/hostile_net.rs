//! Hostile network input against real `searcher` processes: unauthenticated, forged,
//! stale and replayed RPC calls; calls over the shape limits; calls whose budget is spent
//! or whose caller hangs up; slow, idle and too many connections; h2c and garbage on both
//! ports; the operator routes on the public port; a node port taken by a node of another
//! cluster or by a foreign server; SIGTERM while a client is stuck half-way.
//!
//! Every case asserts a clear answer (4xx/503/504, or a correct 200) and that no process
//! died, and a well-behaved client's search through the front-end succeeds between the
//! cases (`Net::assert_search_works`). No sleeps: every wait is on a condition (an answer,
//! a metric, a `/cluster` state, a process exit, a log line) with a generous deadline.

mod net;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use net::{get, http, parse_answer, rpc_post, search_call, signed, Net, PATIENCE};
use serde::Serialize;
use shard_proto::auth::{unix_millis_now, ClusterKey, AUTH_HEADER};
use shard_proto::query::Syntax;
use shard_proto::wire::{
    self, Call, DocRef, FetchRequest, PiggybackFetch, StatsRequest, SuggestRequest,
};
use shard_proto::{GlobalStats, ShardId, WikiSchema};
use tests::cluster_secret::{auth_value, fresh_nonce, test_key};
use tests::{wait_for, ChildGuard, Signal};

/// Sends `request` to `port` and checks the answer's status and that its body says `says`.
struct Expect {
    port: u16,
    tried: usize,
}

impl Expect {
    fn check(&mut self, request: Vec<u8>, status: u16, says: &str) {
        self.tried += 1;
        let (got, body) = http(self.port, &request).expect("the node answers");
        assert_eq!(got, status, "{says}: {body}");
        assert!(body.contains(says), "expected {says:?} in {body:?}");
    }
}

/// Unauthenticated, forged, stale, replayed and malformed credentials: 401 before any
/// work, counted; signed calls over the shape limits: 400 naming the limit; calls whose
/// budget is spent or whose caller hangs up: refused or stopped, and the node idle again.
#[test]
fn node_rpc_refuses_bad_credentials_misshapen_and_late_calls() {
    let net = Net::start("hostile-net-rpc");
    let mut expect = Expect {
        port: net.node_ports[0],
        tried: 0,
    };
    bad_credentials(&net, &mut expect);
    net.assert_search_works();
    misshapen_calls(&net, &mut expect);
    net.assert_search_works();
    late_and_abandoned_calls(&net, &mut expect);
    net.assert_all_alive();
    net.assert_search_works();
    eprintln!(
        "node RPC: {} hostile requests, 0 process deaths",
        expect.tried
    );
}

fn bad_credentials(net: &Net, expect: &mut Expect) {
    let good = search_call(net.shards(), "anarchism", Duration::from_secs(10));
    let frame = wire::encode(&good).unwrap();
    let path = wire::paths::SEARCH;
    // No credentials, on every route.
    let missing = "no x-wikisearch-auth";
    expect.check(rpc_post(path, &frame, None), 401, missing);
    let garbage = rpc_post(wire::paths::STATS, b"\xff\xfe garbage", None);
    expect.check(garbage, 401, missing);
    expect.check(get(wire::paths::HEALTH), 401, missing);
    expect.check(rpc_post("/rpc/../etc/passwd", b"", None), 401, missing);
    // Malformed headers.
    let long = "v1 ".repeat(2000);
    for bad in ["v1", "Bearer hunter2", "v1 1 2 3", "v2 0 00 00", &long] {
        expect.check(rpc_post(path, &frame, Some(bad)), 401, "malformed");
    }
    // Another cluster's secret, a MAC for another path, a tampered body.
    let other = ClusterKey::from_secret(b"some other cluster's secret").unwrap();
    let forged = other.sign("POST", path, &frame, fresh_nonce());
    expect.check(rpc_post(path, &frame, Some(&forged)), 401, "wrong MAC");
    let for_fetch = auth_value("POST", wire::paths::FETCH, &frame);
    expect.check(rpc_post(path, &frame, Some(&for_fetch)), 401, "wrong MAC");
    let mut tampered = frame.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let header = auth_value("POST", path, &frame);
    expect.check(rpc_post(path, &tampered, Some(&header)), 401, "wrong MAC");
    // Validly signed, but two minutes old or in the future.
    for skew in [-120_000i64, 120_000] {
        let at = (unix_millis_now() as i64 + skew) as u64;
        let old = test_key().sign_at("POST", path, &frame, at, fresh_nonce());
        let says = "away from this node's clock";
        expect.check(rpc_post(path, &frame, Some(&old)), 401, says);
    }
    // A replay: the first is served, the same bytes again are refused.
    let once = signed(path, &good);
    expect.check(once.clone(), 200, "");
    expect.check(once, 401, "nonce already used");
    // An unauthenticated 16 MiB body is refused from its head, without reading it.
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        wire::MAX_FRAME_BYTES
    );
    expect.check(head.into_bytes(), 401, missing);
    let refused = |reason: &str| {
        net.node_metric(0, &format!("node_rpc_refused_total{{reason=\"{reason}\"}}"))
    };
    assert!(refused("unauthenticated_missing") >= 5);
    assert!(refused("unauthenticated_bad_mac") >= 3);
    assert!(refused("unauthenticated_replayed") >= 1);
}

fn misshapen_calls(net: &Net, expect: &mut Expect) {
    let shards = net.shards();
    let path = wire::paths::SEARCH;
    let budget = Duration::from_secs(10);
    let repeated = search_call(vec![shards[0]; 1000], "*", budget);
    expect.check(signed(path, &repeated), 400, "listed twice");
    let too_many: Vec<ShardId> = (0..2000)
        .map(|s| ShardId::new(0, 1, s, 2000).unwrap())
        .collect();
    let call = search_call(too_many, "*", budget);
    expect.check(signed(path, &call), 400, "at most 1024");
    let schema = WikiSchema::new();
    let stats = |terms: Vec<tantivy::Term>, fields: Vec<u32>| {
        let request = StatsRequest {
            generation: None,
            shards: shards.clone(),
            fields,
            terms,
        };
        signed(wire::paths::STATS, &Call::new(request, budget))
    };
    let terms: Vec<tantivy::Term> = (0..9000)
        .map(|i| tantivy::Term::from_field_text(schema.fields.body, &format!("t{i}")))
        .collect();
    expect.check(stats(terms, vec![]), 400, "at most 8192");
    let url_term = tantivy::Term::from_field_text(schema.fields.url, "x");
    expect.check(stats(vec![url_term], vec![]), 400, "not indexed");
    let url_field = schema.fields.url.field_id();
    expect.check(stats(vec![], vec![url_field]), 400, "not indexed");
    expect.check(stats(vec![], vec![1, 1]), 400, "listed twice");
    // A term with no bytes at all (tantivy would panic on it), built field by field.
    #[derive(Serialize)]
    struct RawStats {
        shards: Vec<ShardId>,
        fields: Vec<u32>,
        terms: Vec<(u32, Vec<u8>)>,
        generation: Option<String>,
    }
    let raw = RawStats {
        shards: shards.clone(),
        fields: vec![],
        terms: vec![(1, vec![])],
        generation: None,
    };
    let call = signed(wire::paths::STATS, &Call::new(raw, budget));
    expect.check(call, 400, "without a value type");
    let doc = DocRef {
        shard: shards[0],
        segment: 0,
        doc: 0,
    };
    let fetch = |docs: Vec<DocRef>| {
        let request = FetchRequest {
            generation: None,
            query: "*".into(),
            syntax: Syntax::Lenient,
            docs,
            snippet_chars: 2000,
            stats: GlobalStats::default(),
        };
        signed(wire::paths::FETCH, &Call::new(request, budget))
    };
    expect.check(fetch(vec![doc; 2]), 400, "listed twice");
    let docs: Vec<DocRef> = (0..10_001).map(|d| DocRef { doc: d, ..doc }).collect();
    expect.check(fetch(docs), 400, "at most 10000");
    let suggest = |prefix: String, size: u32, shards: Vec<ShardId>| {
        let request = SuggestRequest {
            generation: None,
            prefix,
            shards,
            size,
        };
        signed(wire::paths::SUGGEST, &Call::new(request, budget))
    };
    let long = "a".repeat(wire::MAX_SUGGEST_PREFIX_BYTES + 1);
    expect.check(suggest(long, 8, shards.clone()), 400, "at most 1024");
    expect.check(suggest("a".into(), 101, shards.clone()), 400, "at most 100");
    let twice = vec![shards[0]; 2];
    expect.check(suggest("a".into(), 8, twice), 400, "listed twice");
    // Garbage after valid credentials: a clear 400, not a crash.
    let junk = b"\xff\xff\xff\xff\xff\xff\xff\xff\x0f garbage".to_vec();
    let header = auth_value("POST", path, &junk);
    expect.check(rpc_post(path, &junk, Some(&header)), 400, "");
    // No length: refused before the body.
    let chunked = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{AUTH_HEADER}: {}\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        auth_value("POST", path, b"")
    );
    expect.check(chunked.into_bytes(), 411, "content-length");
}

/// The heaviest call one legitimate caller can make: every hit of every shard with its
/// document and a 2,000-character snippet.
fn heavy(net: &Net, budget: Duration) -> Vec<u8> {
    let mut call = search_call(net.shards(), "*", budget);
    // `*` is every document (in either syntax).
    call.request.syntax = Syntax::Strict;
    call.request.top_k = 10_000;
    call.request.fetch = Some(PiggybackFetch {
        docs: 1000,
        snippet_chars: 2000,
    });
    signed(wire::paths::SEARCH, &call)
}

fn late_and_abandoned_calls(net: &Net, expect: &mut Expect) {
    let path = wire::paths::SEARCH;
    let spent = search_call(net.shards(), "anarchism", Duration::ZERO);
    expect.check(signed(path, &spent), 504, "deadline");
    let metric = |series: &str| net.node_metric(0, series);
    assert!(metric("node_rpc_refused_total{reason=\"expired\"}") >= 1);
    // Heavy calls with a 1 ms budget: each is answered (never served after its
    // deadline: 504) and counted as refused late or stopped half-way.
    let late = || {
        metric("node_rpc_refused_total{reason=\"expired\"}")
            + metric("node_rpc_stopped_total{reason=\"deadline\"}")
    };
    let before = late();
    let mut stopped = 0;
    for _ in 0..50 {
        expect.tried += 1;
        let (status, body) = http(net.node_ports[0], &heavy(net, Duration::from_millis(1)))
            .expect("the node answers");
        assert!(matches!(status, 200 | 504), "{status} {body}");
        stopped += u64::from(status == 504);
    }
    assert_eq!(late() - before, stopped, "every late call counted");
    // Callers that hang up as soon as they have sent: nothing is left running.
    for _ in 0..20 {
        expect.tried += 1;
        let mut stream = TcpStream::connect(("127.0.0.1", net.node_ports[0])).unwrap();
        stream
            .write_all(&heavy(net, Duration::from_secs(30)))
            .unwrap();
    }
    wait_for("the node's search pool to be idle", PATIENCE, || {
        (metric("node_rpc_running") == 0).then_some(())
    });
    eprintln!(
        "late calls: {stopped} of 50 answered 504; abandoned calls cancelled: {}; \
         longest work past a deadline: {} ms",
        metric("node_rpc_stopped_total{reason=\"cancelled\"}"),
        metric("node_rpc_deadline_overrun_max_millis")
    );
}

/// Slow headers, slow bodies, idle and too many connections on both ports, h2c and
/// garbage: each closed or refused within the limits, counted, and nobody else hurt. Then
/// node `n1`'s port is taken by a node of another cluster and by a foreign server: both
/// are ejected and searches succeed on the other replica.
#[test]
fn servers_shed_slow_idle_and_excess_connections_and_eject_impostors() {
    let mut net = Net::start("hostile-net-conns");
    let mut tried = 0;
    for port in [net.fe_port, net.node_ports[1]] {
        tried += slow_and_idle_connections(&net, port);
        tried += excess_connections(port);
        net.assert_search_works();
    }
    let refused_fe = net.frontend_metric("frontend_connections_refused_total");
    assert!(refused_fe >= 16, "{refused_fe}");
    assert!(net.node_metric(1, "node_connections_refused_total") >= 16);
    tried += garbage(&net);
    // The operator routes are only on the admin port.
    assert_eq!(http(net.fe_port, &get("/cluster")).map(|a| a.0), Some(404));
    assert_eq!(http(net.fe_port, &get("/metrics")).map(|a| a.0), Some(404));
    let admin = http(net.admin_port, &get("/cluster")).map(|a| a.0);
    assert_eq!(admin, Some(200));
    net.assert_all_alive();
    net.assert_search_works();
    // n1 may have been ejected while its port was flooded; it is back before it goes.
    net.wait_all_up();
    impostors(&mut net);
    eprintln!("connections: {tried} hostile connections and requests, 0 process deaths");
}

/// A head that never ends, an idle connection and a body that never ends: each closed by
/// the server's timeouts. Returns how many were tried.
fn slow_and_idle_connections(net: &Net, port: u16) -> usize {
    for start in [&b"GET /search?q=a HTTP/1.1\r\nhost: x\r\n"[..], b""] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(start).unwrap();
        let mut rest = Vec::new();
        // Ends when the server closes (a reset counts); a read timeout would mean it did not.
        let closed = stream.read_to_end(&mut rest);
        let timed_out = closed
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
        assert!(!timed_out, "not closed by the server: {closed:?}");
    }
    let path = match port == net.fe_port {
        true => "/search",
        false => wire::paths::SEARCH,
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\ncontent-type: application/json\r\n{AUTH_HEADER}: {}\r\n\r\n{{\"q\":",
        auth_value("POST", path, b""),
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let status = parse_answer(&answer).map(|(s, _)| s);
    // The node says 408; axum reports the body error as a 400.
    assert!(
        matches!(status, Some(400 | 408)),
        "slow body: {:?}",
        String::from_utf8_lossy(&answer)
    );
    3
}

/// 80 idle connections against a cap of 64: the excess get 503 at once.
fn excess_connections(port: u16) -> usize {
    let held: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    // Connections within the cap get no answer until the header timeout closes them;
    // those over it get a 503 first.
    let refused = held
        .iter()
        .filter(|stream| {
            let mut stream = *stream;
            let _ = stream.set_read_timeout(Some(PATIENCE));
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            answer.starts_with(b"HTTP/1.1 503")
        })
        .count();
    assert!(
        refused >= 80 - 64,
        "only {refused} of 80 connections refused over the cap of 64"
    );
    80
}

/// h2c prior knowledge, a TLS hello: refused; a 500 KB header: refused (431) or, if hyper's
/// read buffer took it whole, served; nothing dies.
fn garbage(net: &Net) -> usize {
    let cases = [
        (net.fe_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        (
            net.node_ports[1],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        (
            net.fe_port,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n".to_vec(),
        ),
        (
            net.fe_port,
            format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(500_000)).into_bytes(),
        ),
        (
            net.node_ports[1],
            format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(500_000)).into_bytes(),
        ),
    ];
    for (port, request) in &cases {
        let answer = http(*port, request);
        let huge_header = request.len() > 100_000;
        assert!(
            answer.as_ref().is_none_or(|(status, _)| {
                (400..=505).contains(status) || (huge_header && *status == 200)
            }),
            "{:?}",
            answer.map(|(status, body)| (status, body.chars().take(200).collect::<String>()))
        );
    }
    cases.len()
}

/// Node `n1` replaced by a node of another cluster (401 to every call), then by a foreign
/// server (404 to everything): ejected both times; searches keep succeeding on `n0`.
fn impostors(net: &mut Net) {
    net.nodes[1].signal(Signal::SIGKILL);
    let _ = net.nodes[1].child.wait();
    let log = std::fs::File::create(net.path("logs/n1-foreign.log")).unwrap();
    let mut foreign = std::process::Command::new(tests::bin("searcher"));
    foreign
        .args(["node", "--id", "n1", "--config"])
        .arg(net.path("cluster.toml"))
        .env(
            "WIKISEARCH_CLUSTER_SECRET",
            "a secret of another cluster entirely",
        )
        .stdout(std::process::Stdio::null())
        .stderr(log);
    net.nodes[1] = ChildGuard::spawn("n1-foreign", &mut foreign);
    net.wait_for_node("n1", "down", "status 401");
    for _ in 0..10 {
        net.assert_search_works();
    }
    net.nodes[1].signal(Signal::SIGKILL);
    let _ = net.nodes[1].child.wait();
    let impostor = Impostor::start(net.node_ports[1]);
    net.wait_for_node("n1", "down", "status 404");
    for _ in 0..10 {
        net.assert_search_works();
    }
    drop(impostor);
    net.nodes.truncate(1);
    net.assert_all_alive();
}

/// SIGTERM to a front-end and a node while a client is stuck half-way through a request
/// body: each stops after its drain time (500 ms), not at the body timeout (4 s), says so
/// in its log and exits 0.
#[test]
fn shutdown_with_a_stuck_client_ends_within_the_drain_time() {
    let mut net = Net::start("hostile-net-drain");
    let mut stuck = Vec::new();
    for (port, path) in [
        (net.fe_port, "/search"),
        (net.node_ports[1], wire::paths::SEARCH),
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n{AUTH_HEADER}: {}\r\n\r\n{{\"q\": \"ana",
            auth_value("POST", path, b"")
        );
        stream.write_all(head.as_bytes()).unwrap();
        stuck.push(stream);
    }
    // Both servers are reading the stuck bodies: the front-end's metrics request and the
    // stuck one are in progress; the node works on one call (nothing else calls it now).
    wait_for("the front-end reads the stuck body", PATIENCE, || {
        (net.frontend_metric("frontend_http_requests_in_progress") >= 2).then_some(())
    });
    wait_for("the node reads the stuck body", PATIENCE, || {
        (net.node_in_flight(1)? >= 1).then_some(())
    });
    let logs = [net.path("logs/frontend.log"), net.path("logs/n1.log")];
    let [frontend, node] = [&mut net.frontend, &mut net.nodes[1]];
    for (guard, log) in [frontend, node].into_iter().zip(logs) {
        guard.signal(Signal::SIGTERM);
        let status = wait_for("exit after SIGTERM", PATIENCE, || {
            guard.child.try_wait().unwrap()
        });
        assert!(status.success(), "{}: {status:?}", guard.name);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("still busy after 500ms"),
            "{}: no drain timeout in its log:\n{text}",
            guard.name
        );
    }
    drop(stuck);
}

/// Answers 404 to every request on a port, like a foreign service would.
struct Impostor {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Impostor {
    fn start(port: u16) -> Impostor {
        let listener = wait_for("the impostor binds the port", PATIENCE, || {
            std::net::TcpListener::bind(("127.0.0.1", port)).ok()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 7\r\nconnection: close\r\n\r\ngo away",
                );
            }
        });
        Impostor {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // Wake the blocking accept so the thread sees the flag.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = thread.join();
        }
    }
}
