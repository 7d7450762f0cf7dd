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
//! Conditions are waited for with generous deadlines; the switch time is printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tests::{bin, get_json, run_ok, shared_corpus, temp_dir, wait_for};
use tools::bench::loadgen::percent_encode;

use crate::failover::{assert_clean, seconds, serial, Cluster, Load, PATIENCE};
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
