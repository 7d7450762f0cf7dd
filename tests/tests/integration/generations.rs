//! Index generations, proven with real processes under load from the real load
//! generator: the failover suite's 3-node cluster (R = 2) over a store whose base
//! generation is the Greek Wikivoyage sample (6 shards), and a generation `g2` built
//! beside it from the English Wikipedia sample with `indexer build --generation g2`.
//!
//! - `indexer generations switch g2` under load: no failed and no partial answer, and no
//!   answer mixing generations: every hit's URL belongs to the input of the generation the
//!   answer names (`en.wikipedia.org` for g2, the Wikivoyage sample's `localhost` for the
//!   base). After the switch the scores equal those of one index built from the English
//!   sample alone. A rerun of the switch, or one after a crash left its temporary file,
//!   changes nothing; an incomplete generation is refused.
//! - `indexer generations rollback` under load: the same promises, and `?generation=g2`
//!   still answers from the retained generation.
//!
//! - A switch to g2 while a node is lost for good (healing on): the survivors install
//!   the lost node's share of g2 (as they do for the base generation), so every shard of
//!   g2 gets its 2 copies and the front-end switches, with no failed and no partial
//!   answer. The node restarted serves its own g2 shards, and the survivors' temporary
//!   copies of g2 are dropped after the cool-down (their directories deleted).
//!
//! Conditions are waited for with generous deadlines; the switch time is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use searcher::cluster::ClusterConfig;
use searcher::placement::Placement;
use serde_json::Value;
use shard_proto::ShardId;
use tests::{bin, get_json, run_ok, shared_corpus, temp_dir, wait_for, Signal};
use tools::bench::loadgen::percent_encode;

use crate::failover::{assert_clean, seconds, serial, Cluster, Load, PATIENCE};
use crate::heal::{node_health, HEAL};
use crate::searcher_cluster::{assert_same_top, queries_from, Reference};

/// Nodes and the front-end read the alias every 300 ms.
const GENERATIONS: &str = "\n[generations]\npoll_ms = 300\nretire_after_ms = 600000\n";

/// Queries with hits in both samples (Latin-script words and numbers).
const MIXED_QUERIES: [&str; 6] = ["2010", "the", "de", "1", "wikipedia", "http"];

fn build(input: &str, out: &Path, shards: u32, generation: Option<&str>) {
    let mut cmd = Command::new(bin("indexer"));
    cmd.args(["build", "--threads", "2", "--memory-mb", "256", "--shards"])
        .arg(shards.to_string())
        .arg("--input")
        .arg(shared_corpus(input))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null());
    if let Some(id) = generation {
        cmd.args(["--generation", id]);
    }
    run_ok(&mut cmd);
}

/// Runs `indexer generations --store STORE ARGS`; its exit status and output.
fn generations(store: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(bin("indexer"))
        .arg("generations")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run indexer generations");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The host every hit of generation `id` must come from.
fn host_of(generation: &str) -> &'static str {
    match generation {
        "g2" => "en.wikipedia.org",
        _ => "localhost",
    }
}

/// Checks answers continuously while the load runs: each is complete, names its
/// generation, and every hit comes from that generation's input.
struct MixCheck {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, Vec<String>, Vec<String>)>,
}

impl MixCheck {
    fn start(url: &str) -> MixCheck {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, url) = (Arc::clone(&stop), url.to_string());
        let thread = std::thread::spawn(move || {
            let (mut checked, mut bad, mut seen) = (0u64, Vec::new(), Vec::<String>::new());
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                let q = MIXED_QUERIES[n % MIXED_QUERIES.len()];
                n += 1;
                let Some((status, body)) = get_json(&format!("{url}/search?q={q}&size=20")) else {
                    bad.push(format!("{q}: no answer"));
                    continue;
                };
                checked += 1;
                if let Some(problem) = mixing(status, &body) {
                    bad.push(format!("{q}: {problem}"));
                }
                let generation = body["generation"].as_str().unwrap_or("").to_string();
                if seen.last() != Some(&generation) {
                    seen.push(generation);
                }
            }
            (checked, bad, seen)
        });
        MixCheck { stop, thread }
    }

    /// Answers checked, and the sequence of generations seen.
    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (checked, bad, seen) = self.thread.join().expect("checker thread");
        assert!(
            bad.is_empty(),
            "answers failed or mixed generations: {bad:?}"
        );
        (checked, seen)
    }
}

/// What is wrong with one answer, if anything.
fn mixing(status: u16, body: &Value) -> Option<String> {
    if status != 200 || body["partial"] != false {
        return Some(format!("status {status}, {body}"));
    }
    let generation = body["generation"].as_str()?;
    let hits = body["hits"].as_array()?;
    let foreign: Vec<&str> = hits
        .iter()
        .filter_map(|hit| hit["url"].as_str())
        .filter(|url| !url.contains(host_of(generation)))
        .collect();
    (!foreign.is_empty()).then(|| format!("generation {generation} answered with {foreign:?}"))
}

/// Waits until the front-end answers from `generation`; when it first did.
fn wait_generation(cluster: &Cluster, generation: &str) -> Instant {
    let url = format!("{}/search?q=the&size=1", cluster.url);
    wait_for(&format!("answers from {generation}"), PATIENCE, || {
        let (_, body) = get_json(&url)?;
        (body["generation"] == generation).then(Instant::now)
    })
}

#[test]
fn a_generation_switch_and_a_rollback_under_load_never_mix_generations() {
    let _serial = serial();
    let work = temp_dir("generations-store");
    let store = work.path().join("store");
    build("elwikivoyage-sample.xml.bz2", &store, 6, None);
    build("enwiki-sample.xml.bz2", &store, 6, Some("g2"));
    let reference_store = work.path().join("reference");
    build("enwiki-sample.xml.bz2", &reference_store, 1, None);
    let reference = Reference::open(&reference_store);

    // An incomplete generation is refused, and leaves the alias alone.
    std::fs::create_dir_all(store.join("generations/g3")).expect("mkdir g3");
    let (ok, text) = generations(&store, &["switch", "g3"]);
    assert!(!ok && text.contains("g3"), "{text}");
    let (ok, listed) = generations(&store, &["list"]);
    assert!(
        ok && listed.contains("* base") && listed.contains("g2"),
        "{listed}"
    );

    let cluster = Cluster::start_on("generations", &store, GENERATIONS);
    let (_, first) = get_json(&format!("{}/search?q=the", cluster.url)).expect("search");
    assert_eq!(first["generation"], "base", "{first}");

    let load = Load::start(&cluster.url, &[]);
    let check = MixCheck::start(&cluster.url);
    let asked = Instant::now();
    let (ok, text) = generations(&store, &["switch", "g2"]);
    assert!(ok, "{text}");
    let switched = wait_generation(&cluster, "g2");
    // A rerun, and a rerun after a crash that left the temporary alias behind: harmless.
    std::fs::write(store.join(".LIVE_GENERATION.999999"), "base\n").expect("crash leftover");
    for _ in 0..2 {
        let (ok, text) = generations(&store, &["switch", "g2"]);
        assert!(ok && text.contains("already live"), "{text}");
    }
    let on_g2 = load.finish();
    let (checked, seen) = check.finish();
    println!(
        "generation switch: answers from g2 {:.2} s after the switch command; \
         {checked} answers checked, generations seen in order {seen:?}",
        seconds(asked, switched)
    );
    assert_clean("generation switch", &on_g2);
    assert_eq!(seen.last().map(String::as_str), Some("g2"), "{seen:?}");

    // Scores after the switch are those of one index of the new input.
    for q in queries_from(&reference.articles()) {
        let url = format!("{}/search?q={}&size=10", cluster.url, percent_encode(&q));
        let (status, answer) = get_json(&url).expect("search");
        assert_eq!(status, 200, "{q}: {answer}");
        assert_eq!(answer["generation"], "g2", "{q}");
        assert_same_top(&q, &answer, &reference, 10);
    }

    let load = Load::start(&cluster.url, &[]);
    let check = MixCheck::start(&cluster.url);
    let asked = Instant::now();
    let (ok, text) = generations(&store, &["rollback"]);
    assert!(ok && text.contains("live generation: base"), "{text}");
    let rolled_back = wait_generation(&cluster, "base");
    let on_base = load.finish();
    let (checked, seen) = check.finish();
    println!(
        "generation rollback: answers from base {:.2} s after the command; {checked} answers \
         checked, generations seen in order {seen:?}",
        seconds(asked, rolled_back)
    );
    assert_clean("generation rollback", &on_base);
    assert_eq!(seen.last().map(String::as_str), Some("base"), "{seen:?}");

    // The retained generation still answers when asked for.
    let (status, pinned) =
        get_json(&format!("{}/search?q=the&generation=g2", cluster.url)).expect("search");
    assert_eq!(status, 200, "{pinned}");
    assert_eq!(pinned["generation"], "g2");
    assert!(mixing(status, &pinned).is_none(), "{pinned}");
    let (status, unknown) =
        get_json(&format!("{}/search?q=the&generation=nope", cluster.url)).expect("search");
    assert_eq!(status, 400, "{unknown}");
}

/// Shard -> the nodes whose health answer reports it serving in `generation`.
fn serving_in(config: &ClusterConfig, generation: &str) -> BTreeMap<ShardId, BTreeSet<String>> {
    let mut map: BTreeMap<ShardId, BTreeSet<String>> = BTreeMap::new();
    for node in &config.nodes {
        let Some(health) = node_health(&node.rpc.to_string()) else {
            continue;
        };
        let held = health
            .generations
            .iter()
            .find(|g| g.generation == generation);
        for shard in held.map(|g| g.shards.clone()).unwrap_or_default() {
            map.entry(shard).or_default().insert(node.id.clone());
        }
    }
    map
}

/// The replica directories of `generation` in a node's data directory.
fn generation_dirs(cluster: &Cluster, node: &str, generation: &str) -> BTreeSet<String> {
    let dir = cluster
        .dir
        .path()
        .join("nodes")
        .join(node)
        .join("generations")
        .join(generation);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect()
}

#[test]
fn a_generation_switched_to_while_a_node_is_lost_is_healed_and_its_copies_dropped_on_return() {
    let _serial = serial();
    let work = temp_dir("generations-heal-store");
    let store = work.path().join("store");
    build("elwikivoyage-sample.xml.bz2", &store, 6, None);
    build("enwiki-sample.xml.bz2", &store, 6, Some("g2"));
    let g2_shards: Vec<ShardId> =
        shard_proto::store::live_shard_dirs(&store.join("generations/g2"))
            .expect("read g2")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
    let mut cluster =
        Cluster::start_on("generations-heal", &store, &format!("{GENERATIONS}{HEAL}"));
    let config = ClusterConfig::load(&cluster.dir.path().join("cluster.toml")).expect("config");

    let load = Load::start(&cluster.url, &[]);
    let check = MixCheck::start(&cluster.url);
    cluster.signal("n2", Signal::SIGKILL);
    let asked = Instant::now();
    let (ok, text) = generations(&store, &["switch", "g2"]);
    assert!(ok, "{text}");
    let switched = wait_generation(&cluster, "g2");
    let serving = serving_in(&config, "g2");
    let both: BTreeSet<String> = ["n1", "n3"].into_iter().map(String::from).collect();
    assert!(
        g2_shards.iter().all(|s| serving.get(s) == Some(&both)),
        "every shard of g2 on both survivors: {serving:?}"
    );
    let during = load.finish();
    let (checked, seen) = check.finish();
    println!(
        "generation switch with n2 lost: answers from g2 {:.2} s after the switch command \
         (heal_after 3 s); {checked} answers checked, generations seen in order {seen:?}",
        seconds(asked, switched)
    );
    assert_clean("generation switch with a node lost", &during);

    // n2 comes back: it installs its own share of g2, and the survivors drop the copies
    // they took for it once it serves them and the cool-down has passed.
    let target = Placement::for_cluster(&config, g2_shards.iter().copied());
    let load = Load::start(&cluster.url, &[]);
    let restarted = Instant::now();
    let pid = cluster.start_node("n2");
    cluster.wait_up("n2", Some(pid));
    let settled = wait_for("g2 served by its target only", PATIENCE * 2, || {
        let serving = serving_in(&config, "g2");
        let on_target = g2_shards.iter().all(|s| {
            let wanted: BTreeSet<String> = target.replicas[s].iter().cloned().collect();
            serving.get(s) == Some(&wanted)
        });
        let dirs_gone = ["n1", "n2", "n3"].iter().all(|n| {
            let wanted: BTreeSet<String> =
                target.shards_of(n).iter().map(ShardId::to_string).collect();
            generation_dirs(&cluster, n, "g2") == wanted
        });
        (on_target && dirs_gone).then(Instant::now)
    });
    let after = load.finish();
    println!(
        "n2 back: g2 served by its target only, temporary copies deleted, {:.2} s after the restart",
        seconds(restarted, settled)
    );
    assert_clean("the lost node back", &after);
}
