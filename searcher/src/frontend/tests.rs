//! Front-end tests against real searcher nodes run in-process (`node::run` on
//! 127.0.0.1:0) over shards the real indexer builds from the English sample, plus the two
//! faults a front-end must survive without a node's help: a replica whose port accepts
//! connections but never answers (a hung process), and a port nobody listens on.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::cluster::{AuthConfig, ClusterConfig, FrontendConfig, NodeConfig, Timeouts};
use crate::frontend::Frontend;
use crate::model::NodeHealth;
use crate::model::{SearchAnswer, SearchParams, SearchType};
use crate::placement::Placement;
use crate::test_support::{build_store, write_secret};

const PROBE_INTERVAL: Duration = Duration::from_millis(500);

fn config(dir: &Path, nodes: &[(&str, std::net::SocketAddr)], replication: usize) -> ClusterConfig {
    ClusterConfig {
        shard_store: dir.join("store").into(),
        s3: Default::default(),
        replication,
        frontend: FrontendConfig::default(),
        auth: AuthConfig {
            secret_file: Some(write_secret(dir)),
        },
        server: Default::default(),
        timeouts: Timeouts {
            attempt_ms: 300,
            deadline_ms: 5_000,
            probe_interval_ms: PROBE_INTERVAL.as_millis() as u64,
            connect_ms: 250,
            eject_after_failures: 2,
        },
        limits: Default::default(),
        scrub: Default::default(),
        heal: Default::default(),
        generations: Default::default(),
        nodes: nodes
            .iter()
            .map(|(id, addr)| NodeConfig {
                id: id.to_string(),
                rpc: (*addr).into(),
                listen: None,
                data_dir: Some(dir.join("nodes").join(id)),
                http: None,
                http_listen: None,
                drain: false,
            })
            .collect(),
        node_sets: Vec::new(),
        coordinators: Vec::new(),
        source: Default::default(),
    }
}

/// Starts a real node on `listener`; dropping the sender stops it.
fn spawn_node(config: &ClusterConfig, id: &str, listener: TcpListener) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (config, id) = (config.clone(), id.to_string());
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) = crate::node::run(config, id, listener, shutdown).await {
            panic!("node failed: {error}");
        }
    });
    stop
}

/// A port that accepts connections and never answers, counting the connections.
async fn black_hole() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (addr, accepted)
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..600 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn params(q: &str) -> SearchParams {
    SearchParams {
        q: q.to_string(),
        syntax: shard_proto::query::Syntax::Lenient,
        from: 0,
        size: 10,
        search_type: None,
        generation: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_replica_is_failed_over_then_ejected_and_costs_no_more_attempts() {
    let dir = tempfile::tempdir().unwrap();
    build_store(&dir.path().join("store"), 3);
    let live_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (hung_addr, hung_connections) = black_hole().await;
    let config = config(
        dir.path(),
        &[
            ("live", live_listener.local_addr().unwrap()),
            ("hung", hung_addr),
        ],
        2,
    );
    let _stop = spawn_node(&config, "live", live_listener);
    let frontend = Frontend::new(&config).unwrap();
    let root = &frontend.state.root;
    let set = root.fanout.replicas.current();
    let nodes = &set.nodes;
    wait_until("live node probed", || nodes[0].pid().is_some()).await;

    for _ in 0..6 {
        let answer = root.search(&params("anarchism")).await.unwrap();
        assert!(!answer.partial, "{answer:?}");
        assert_eq!(answer.hits[0].title, "Anarchism");
        assert!(answer.hits.iter().all(|h| h.node == "live"), "{answer:?}");
    }
    wait_until("hung node ejected", || nodes[1].state() == NodeHealth::Down).await;
    // Let in-flight attempts to the hung node finish timing out, then count.
    wait_until("attempts to the hung node over", || {
        nodes[1].in_flight() == 0
    })
    .await;
    let before = hung_connections.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    // Only probers may still knock, none per query. Two probe the hung node: the
    // front-end's and the live node's own watch of its peers (node::heal::peers), each at
    // most one connection per interval begun in the window, plus one begun before `before`
    // was read and accepted just after. Queries go on until they outnumber twice what the
    // probers may make, so a knock per query could not hide among the probes.
    const PROBERS: usize = 2;
    let allowed = || {
        let intervals = started.elapsed().as_millis() / PROBE_INTERVAL.as_millis();
        PROBERS * (intervals as usize + 2)
    };
    let mut queries = 0;
    while queries < 20 || (queries <= 2 * allowed() && queries < 400) {
        let answer = root.search(&params("autism")).await.unwrap();
        assert!(!answer.partial, "{answer:?}");
        queries += 1;
    }
    let (knocks, allowed) = (hung_connections.load(Ordering::SeqCst) - before, allowed());
    assert!(
        knocks <= allowed,
        "{knocks} connections to an ejected node during {queries} queries \
         ({PROBERS} probers may make {allowed})"
    );
    let text = frontend.state.metrics.render();
    assert!(text.contains("frontend_ejections_total 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_without_a_live_replica_are_reported_with_coverage_and_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    build_store(&dir.path().join("store"), 4);
    let live_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // A port nobody listens on: connections are refused at once.
    let dead_addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let config = config(
        dir.path(),
        &[
            ("live", live_listener.local_addr().unwrap()),
            ("dead", dead_addr),
        ],
        1,
    );
    let shards: Vec<_> = config
        .shard_manifests()
        .unwrap()
        .into_iter()
        .map(|m| m.unwrap().shard)
        .collect();
    let placement = Placement::for_cluster(&config, shards);
    let lost = placement.shards_of("dead");
    assert!(
        !lost.is_empty() && !placement.shards_of("live").is_empty(),
        "{placement:?}"
    );
    let _stop = spawn_node(&config, "live", live_listener);
    let frontend = Frontend::new(&config).unwrap();
    let root = &frontend.state.root;
    wait_until("live node probed", || {
        root.fanout.replicas.current().nodes[0].pid().is_some()
    })
    .await;

    let answer = root.search(&params("the")).await.unwrap();
    assert!(answer.partial);
    assert_eq!(answer.shards.failed, lost.len(), "{answer:?}");
    for shard in &lost {
        let failure = answer
            .shards
            .failures
            .iter()
            .find(|f| f.shard == shard.to_string());
        let reason = &failure
            .unwrap_or_else(|| panic!("{shard} not reported: {answer:?}"))
            .reason;
        assert!(reason.contains("dead"), "{reason}");
    }
    assert!(
        answer.coverage > 0.0 && answer.coverage < 1.0,
        "{}",
        answer.coverage
    );
    assert!(answer
        .hits
        .iter()
        .all(|h| h.node == "live" && !h.title.is_empty()));
    assert_eq!(
        root.cached_terms(),
        0,
        "statistics missing a shard must not be cached"
    );
}

/// Forwards connections to `target`, holding each chunk the client sends for `delay`: a
/// node that answers, but slower than the attempt timeout.
async fn slow_proxy(target: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                    tokio::time::sleep(delay).await;
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_last_replica_gets_the_rest_of_the_deadline_not_a_partial_answer() {
    let dir = tempfile::tempdir().unwrap();
    build_store(&dir.path().join("store"), 2);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Twice the attempt timeout (300 ms) per exchange, well within the 5 s deadline.
    let slow = slow_proxy(listener.local_addr().unwrap(), Duration::from_millis(600)).await;
    let config = config(dir.path(), &[("slow", slow)], 1);
    let _stop = spawn_node(&config, "slow", listener);
    let frontend = Frontend::new(&config).unwrap();
    let root = &frontend.state.root;
    for query in ["anarchism", "autism"] {
        let answer = root.search(&params(query)).await.unwrap();
        assert!(!answer.partial, "{answer:?}");
        assert_eq!(answer.shards.failed, 0, "{answer:?}");
        assert!(
            answer.hits.iter().all(|h| !h.title.is_empty()),
            "{answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_search_type_fetches_in_the_query_phase_only_when_alone() {
    let dir = tempfile::tempdir().unwrap();
    build_store(&dir.path().join("store"), 2);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = config(dir.path(), &[("live", listener.local_addr().unwrap())], 1);
    let _stop = spawn_node(&config, "live", listener);
    let frontend = Frontend::new(&config).unwrap();
    let root = &frontend.state.root;
    let fetch_rounds = || frontend.state.metrics.fetch_round_trips.get();

    // Alone: query-and-fetch; the only node holds every shard, so it attaches the whole
    // page and no fetch round follows.
    let alone = root.search(&params("anarchism")).await.unwrap();
    assert_eq!(fetch_rounds(), 0);
    let mut then_fetch = params("anarchism");
    then_fetch.search_type = Some(SearchType::QueryThenFetch);
    let fetched = root.search(&then_fetch).await.unwrap();
    assert_eq!(fetch_rounds(), 1);
    let page = |a: &SearchAnswer| {
        a.hits
            .iter()
            .map(|h| (h.id, h.title.clone(), h.snippet.clone()))
            .collect::<Vec<_>>()
    };
    assert!(!alone.hits.is_empty());
    assert_eq!(page(&alone), page(&fetched));

    // Two at once: the second starts while the first is in flight, so it fetches in a
    // fetch phase; the first (alone when it started) does not.
    let autism = params("autism");
    let (first, second) = tokio::join!(root.search(&autism), root.search(&autism));
    assert_eq!(page(&first.unwrap()), page(&second.unwrap()));
    assert_eq!(fetch_rounds(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_to_the_cluster_file_gets_searches_and_a_removed_one_none() {
    let dir = tempfile::tempdir().unwrap();
    build_store(&dir.path().join("store"), 2);
    let (first, second) = (
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
    let path = dir.path().join("cluster.toml");
    // A coordinator beside each node, listed in /cluster (nothing serves there).
    let write = |nodes: &[(&str, std::net::SocketAddr)], replication| {
        let mut file = config(dir.path(), nodes, replication);
        file.coordinators = (nodes.iter().enumerate())
            .map(|(i, (id, _))| crate::cluster::CoordinatorConfig {
                id: format!("coord-{id}"),
                http: std::net::SocketAddr::from(([127, 0, 0, 1], 1 + i as u16)).into(),
                http_listen: None,
            })
            .collect();
        file.save(&path).unwrap();
        ClusterConfig::load(&path).unwrap()
    };
    let coordinators = |frontend: &Frontend| -> Vec<String> {
        let listed = frontend.state.coordinators.read();
        listed.iter().map(|c| c.id.clone()).collect()
    };
    let alone = write(&[("a", a)], 1);
    let _stop_a = spawn_node(&alone, "a", first);
    let frontend = Frontend::new(&alone).unwrap();
    let root = &frontend.state.root;
    let served_by = |answer: &SearchAnswer| -> Vec<String> {
        assert!(!answer.partial, "{answer:?}");
        answer.hits.iter().map(|h| h.node.clone()).collect()
    };

    // b joins (both nodes hold both shards): the front-end probes it and sends it work.
    let both = write(&[("a", a), ("b", b)], 2);
    let _stop_b = spawn_node(&both, "b", second);
    let mut answered_by_b = false;
    for _ in 0..200 {
        let answer = root.search(&params("anarchism")).await.unwrap();
        if served_by(&answer).iter().any(|n| n == "b") {
            answered_by_b = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered_by_b, "the node added to the file never answered");
    let view = crate::frontend::api::cluster_view(root);
    assert_eq!(view.nodes.len(), 2, "{view:?}");
    assert_eq!(coordinators(&frontend), ["coord-a", "coord-b"]);

    // a leaves the file while still running: it is retired and gets no more searches.
    write(&[("b", b)], 1);
    wait_until("a retired", || {
        let view = crate::frontend::api::cluster_view(root);
        view.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>() == ["b"]
    })
    .await;
    assert_eq!(coordinators(&frontend), ["coord-b"]);
    for q in ["anarchism", "autism", "albedo", "alabama", "the"] {
        let answer = root.search(&params(q)).await.unwrap();
        assert!(served_by(&answer).iter().all(|n| n == "b"), "{answer:?}");
    }
}
