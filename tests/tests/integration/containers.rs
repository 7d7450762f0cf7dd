//! The failover promises across containers: the Compose cluster of `deploy/compose/`
//! (Garage, the link pass and 2 indexer jobs uploading to S3, 3 searcher nodes each in its
//! own container on a private network, the front-end), built from this run's binaries,
//! under steady load from the real load generator (`wikisearch bench`, as the failover
//! suite drives it), one cluster for the whole sequence:
//!
//! - `docker kill` of a node, then `docker start`;
//! - `docker pause` (a hung host that keeps its sockets), then `unpause`;
//! - `docker network disconnect` (a real partition, both directions), then reconnect;
//!
//!   these three through `wikisearch drill --compose PROJECT`, as a user drills a Compose
//!   cluster (the drill's own load, timeline and summary);
//! - a rolling restart (`docker stop`: SIGTERM and drain, then `start`) of every node;
//! - a node killed for good: the others restore every shard's 2 copies from the S3 store;
//!
//! each with no failed and no partial answer; then every replica of a shard lost: answers
//! flagged partial with the coverage of what is left, until a survivor has installed the
//! lost shards from S3, without any command; then a new index generation built into S3 by
//! a one-off indexer container, switched to and rolled back under load (no failed and no
//! partial answer).
//!
//! It prints, per fault, the answers failed and partial, the p99 before, during and after,
//! and the time to eject and to rejoin (or heal): the README's "Beyond one machine" table.
//! Skipped, saying why, where Docker is absent or `WIKISEARCH_SKIP_CONTAINERS=1`. Waits
//! are conditions with generous deadlines; timings are printed, never asserted.

mod compose;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::garage::require_garage;
use tests::{free_port, get_json, temp_dir, wait_for, workspace_root};

use crate::failover::{
    assert_clean, drill_json, samples, seconds, serial, wait_for_searches, Load, LoadFigures,
    WARM_UP_SEARCHES,
};
use compose::{build_images, compose_command, Project};

const SKIP: &str = "WIKISEARCH_SKIP_CONTAINERS";
/// Generous: containers start, nodes download from S3, all on 2 shared cores.
const PATIENCE: Duration = Duration::from_secs(180);
/// Healing in seconds for the test (the checked-in file says 30 s).
const HEAL_FROM: &str = "after_ms = 30000";
const HEAL_TO: &str = "after_ms = 10000";
const COOL_DOWN_FROM: &str = "cool_down_ms = 30000";
const COOL_DOWN_TO: &str = "cool_down_ms = 5000";
const NODES: [&str; 3] = ["search-1", "search-2", "search-3"];
/// The drill's open-loop load on the containers, requests per second.
const DRILL_RATE: &str = "40";
/// A Compose override giving the front-end and the nodes an upstream DNS server that never
/// answers (TEST-NET-1), as on a machine without outside network (CI): Docker's DNS then
/// forwards the name of a killed or disconnected container upstream and the lookup hangs
/// (20 s measured) instead of failing at once, the harder case for failover. The cluster's
/// own names still resolve (Docker answers those itself).
const SILENT_DNS: &str = "services:
  frontend: { dns: [192.0.2.1] }
  search-1: { dns: [192.0.2.1] }
  search-2: { dns: [192.0.2.1] }
  search-3: { dns: [192.0.2.1] }
";

/// One fault's figures.
struct Row {
    fault: String,
    during: LoadFigures,
    p99_before: f64,
    p99_after: f64,
    /// `None`: the step ejects no node (a generation switch).
    eject_s: Option<f64>,
    back_s: f64,
}

#[test]
fn container_faults_cost_no_request_and_a_lost_shard_heals_from_s3() {
    if std::env::var(SKIP).as_deref() == Ok("1") {
        println!("skipping the container fault suite: {SKIP}=1");
        return;
    }
    let compose = match compose_command() {
        Ok(compose) => compose,
        Err(why) => {
            println!("skipping the container fault suite: {why} (set {SKIP}=1 to silence)");
            return;
        }
    };
    let Some(garage) = require_garage("container_faults") else {
        return;
    };
    let _serial = serial();
    let suite = Instant::now();
    build_images(&garage);
    println!("images built in {:.1} s", suite.elapsed().as_secs_f64());

    let tmp = temp_dir("containers");
    let cluster_file = tmp.path().join("cluster.toml");
    let text = std::fs::read_to_string(workspace_root().join("deploy/compose/cluster.toml"))
        .expect("deploy/compose/cluster.toml");
    assert!(
        text.contains(HEAL_FROM) && text.contains(COOL_DOWN_FROM),
        "{text}"
    );
    let text = text
        .replace(HEAL_FROM, HEAL_TO)
        .replace(COOL_DOWN_FROM, COOL_DOWN_TO);
    std::fs::write(&cluster_file, text).expect("write the cluster file");
    let dns_override = tmp.path().join("silent-dns.yml");
    std::fs::write(&dns_override, SILENT_DNS).expect("write the Compose override");
    let mut project = Project::new(compose, &cluster_file, free_port()).with_override(dns_override);
    let url = format!("http://127.0.0.1:{}", project.port);

    let up = Instant::now();
    project.up(&NODES);
    let first = first_full_answer(&url);
    println!(
        "compose up -> first full answer: {:.1} s (indexing in containers, uploads, installs)",
        seconds(up, first)
    );
    wait_full(&url);

    let mut rows = Vec::new();
    for fault in ["kill", "stop", "partition"] {
        rows.push(drilled(&project, &cluster_file, &url, fault, "search-2"));
        wait_full(&url);
    }
    let before = steady(&url);
    let (row, after) = rolling_restart(&project, &url, before);
    rows.push(row);
    let (row, after) = killed_for_good(&project, &url, after);
    rows.push(row);
    let (row, after) = shard_lost(&project, &url, after);
    rows.push(row);
    let (switch, rollback) = generation_switch(&project, &url, after);
    rows.extend([switch, rollback]);
    print_table(&rows);
    println!(
        "container suite: {:.1} s in all",
        suite.elapsed().as_secs_f64()
    );
}

/// Load over a quiet stretch: its worst-second p99.
fn steady(url: &str) -> f64 {
    let load = Load::start(url, &[]);
    wait_for_searches(url, WARM_UP_SEARCHES * 3, "steady load");
    let figures = load.finish();
    assert_clean("steady", &figures);
    figures.worst_p99_ms
}

/// A fault on one node that is undone, by `wikisearch drill --compose` (load before,
/// during and after; eject, heal, rejoin): its summary as a row.
fn drilled(
    project: &Project,
    cluster_file: &std::path::Path,
    url: &str,
    fault: &str,
    node: &str,
) -> Row {
    let summary = drill_json(
        cluster_file,
        &[
            "--compose",
            project.name.as_str(),
            "--url",
            url,
            "--fault",
            fault,
            "--node",
            node,
            "--at",
            "4",
            "--heal-after",
            "6",
            "--duration",
            "20",
            "--rate",
            DRILL_RATE,
        ],
    );
    let figure = |key: &str| summary[key].as_f64().unwrap_or(f64::NAN);
    let target = &summary["nodes"][0];
    let during = LoadFigures {
        requests: summary["requests"].as_u64().expect("requests"),
        errors: summary["failed"].as_u64().expect("failed"),
        partial: summary["partial"].as_u64().expect("partial"),
        max_ms: figure("max_ms"),
        worst_p99_ms: figure("p99_during_ms"),
        error_samples: samples(&summary["error_samples"]),
        partial_samples: samples(&summary["partial_samples"]),
    };
    let label = match fault {
        "kill" => "docker kill",
        "stop" => "docker pause",
        _ => "network disconnect",
    };
    assert_clean(label, &during);
    let back_s = target["serving_after_heal_s"].as_f64();
    assert!(
        back_s.is_some(),
        "{node} did not serve again after the drill's {label}: {summary}"
    );
    Row {
        fault: format!("{label} {node} (drill)"),
        during,
        p99_before: figure("p99_before_ms"),
        p99_after: figure("p99_after_ms"),
        eject_s: target["ejected_after_s"].as_f64(),
        back_s: back_s.unwrap_or(f64::NAN),
    }
}

/// `docker stop` (drain) and `start` of every node in turn, each back with its replicas
/// before the next goes; eject and rejoin are the slowest node's.
fn rolling_restart(project: &Project, url: &str, p99_before: f64) -> (Row, f64) {
    let load = Load::start(url, &[]);
    let (mut eject_s, mut back_s) = (0f64, 0f64);
    for node in NODES {
        let begun = Instant::now();
        let code = project.stop(node);
        assert_eq!(code, 0, "{node} did not drain and exit cleanly on SIGTERM");
        let ejected = wait_state(url, node, "down");
        let started = Instant::now();
        project.docker(&["start"], node);
        let back = wait_state(url, node, "up");
        wait_full(url);
        eject_s = eject_s.max(seconds(begun, ejected));
        back_s = back_s.max(seconds(started, back));
    }
    let during = load.finish();
    assert_clean("rolling restart", &during);
    let p99_after = steady(url);
    let row = Row {
        fault: "rolling restart (stop/start x3)".into(),
        during,
        p99_before,
        p99_after,
        eject_s: Some(eject_s),
        back_s,
    };
    (row, p99_after)
}

/// A node killed and left dead: the others copy its shards from S3 until every shard has
/// 2 serving copies again ("back" is that heal); then it is started again.
fn killed_for_good(project: &Project, url: &str, p99_before: f64) -> (Row, f64) {
    let node = "search-3";
    let load = Load::start(url, &[]);
    let begun = Instant::now();
    project.docker(&["kill"], node);
    let ejected = wait_state(url, node, "down");
    let healed = wait_full(url);
    assert!(
        serving(url).values().all(|nodes| !nodes.contains(node)),
        "healed without {node}"
    );
    let during = load.finish();
    assert_clean("killed for good", &during);
    project.docker(&["start"], node);
    wait_state(url, node, "up");
    // Back to the placement: the temporary copies are dropped after the cool-down.
    wait_for("every shard back to exactly 2 copies", PATIENCE, || {
        let copies = serving(url);
        copies.values().all(|nodes| nodes.len() == 2).then_some(())
    });
    wait_full(url);
    let p99_after = steady(url);
    let row = Row {
        fault: format!("{node} killed for good (heal from S3)"),
        during,
        p99_before,
        p99_after,
        eject_s: Some(seconds(begun, ejected)),
        back_s: seconds(begun, healed),
    };
    (row, p99_after)
}

/// Both holders of the first shard killed: partial answers naming exactly what is lost,
/// with its coverage, until the survivor installs the lost shards from S3.
fn shard_lost(project: &Project, url: &str, p99_before: f64) -> (Row, f64) {
    let held = serving(url);
    let (shard, victims) = held
        .iter()
        .next()
        .map(|(s, n)| (s.clone(), n.clone()))
        .expect("a shard");
    let lost: BTreeSet<String> = held
        .iter()
        .filter(|(_, nodes)| nodes.is_subset(&victims))
        .map(|(s, _)| s.clone())
        .collect();
    let (docs, total) = shard_docs(url);
    let load = Load::start(url, &[]);
    let begun = Instant::now();
    for node in &victims {
        project.docker(&["kill"], node);
    }
    let query = format!("{url}/search?q=the&size=10");
    let first = wait_for("a partial answer", PATIENCE, || {
        get_json(&query).filter(|(_, body)| body["partial"] == true)
    });
    let first_partial = Instant::now();
    assert_eq!(failed_shards(&first.1), lost, "{shard}: {}", first.1);
    let expected = 1.0 - lost.iter().map(|s| docs[s]).sum::<u64>() as f64 / total as f64;
    assert_coverage(&first.1, expected);
    // Until healed: every partial answer names only lost shards, with their coverage.
    let healed = wait_for("the lost shards installed again", PATIENCE, || {
        let (status, body) = get_json(&query)?;
        assert_eq!(status, 200, "{body}");
        if body["partial"] == false {
            return Some(Instant::now());
        }
        let failed = failed_shards(&body);
        assert!(failed.is_subset(&lost), "{failed:?} not in {lost:?}");
        let missing = failed.iter().map(|s| docs[s]).sum::<u64>();
        assert_coverage(&body, 1.0 - missing as f64 / total as f64);
        None
    });
    wait_for_searches(url, WARM_UP_SEARCHES, "load after the heal");
    let during = load.finish();
    println!(
        "shard {shard} lost (killed {victims:?}, lost {lost:?}): first partial answer after \
         {:.2} s, coverage {expected:.3}; full again after {:.2} s",
        seconds(begun, first_partial),
        seconds(begun, healed)
    );
    assert_eq!(during.errors, 0, "failed: {:?}", during.error_samples);
    assert!(during.partial > 0, "no partial answer under load");
    for node in &victims {
        project.docker(&["start"], node);
        wait_state(url, node, "up");
    }
    wait_full(url);
    let p99_after = steady(url);
    let row = Row {
        fault: format!("every replica of {shard} killed"),
        during,
        p99_before,
        p99_after,
        eject_s: Some(seconds(begun, first_partial)),
        back_s: seconds(begun, healed),
    };
    (row, p99_after)
}

fn assert_coverage(body: &Value, expected: f64) {
    let coverage = body["coverage"].as_f64().expect("coverage");
    assert!(
        (coverage - expected).abs() < 1e-6,
        "coverage {coverage}, expected {expected}: {body}"
    );
}

fn failed_shards(body: &Value) -> BTreeSet<String> {
    let failures = body["shards"]["failures"].as_array().expect("failures");
    failures
        .iter()
        .filter_map(|f| f["shard"].as_str().map(String::from))
        .collect()
}

/// The first 200, complete, non-empty answer; when it came.
fn first_full_answer(url: &str) -> Instant {
    let query = format!("{url}/search?q=anarchism&size=3");
    wait_for("the first full answer", PATIENCE, || {
        let (status, body) = get_json(&query)?;
        let full = status == 200 && body["partial"] == false;
        let hits = body["hits"].as_array().is_some_and(|h| !h.is_empty());
        (full && hits).then(Instant::now)
    })
}

fn cluster(url: &str) -> Option<Value> {
    get_json(&format!("{url}/cluster"))
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
}

/// Waits until the front-end reports `node` in `state`; when it saw it.
fn wait_state(url: &str, node: &str, state: &str) -> Instant {
    wait_for(&format!("{node} {state} in /cluster"), PATIENCE, || {
        let doc = cluster(url)?;
        let found = doc["nodes"].as_array()?.iter().find(|n| n["id"] == node)?;
        (found["state"] == state).then(Instant::now)
    })
}

/// Shard → the nodes serving it now, as they report.
fn serving(url: &str) -> BTreeMap<String, BTreeSet<String>> {
    let doc = cluster(url).expect("GET /cluster");
    let shards = doc["shards"].as_array().expect("shards");
    shards
        .iter()
        .map(|s| {
            let nodes = s["serving"].as_array().expect("serving");
            let nodes = nodes.iter().filter_map(|n| n.as_str().map(String::from));
            (s["id"].as_str().expect("id").to_string(), nodes.collect())
        })
        .collect()
}

/// Documents per shard and in all, from `/cluster`.
fn shard_docs(url: &str) -> (BTreeMap<String, u64>, u64) {
    let doc = cluster(url).expect("GET /cluster");
    let docs: BTreeMap<String, u64> = doc["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("id").into(),
                s["docs"].as_u64().expect("docs"),
            )
        })
        .collect();
    let total = docs.values().sum();
    (docs, total)
}

/// Waits until all 6 shards have 2 serving copies on nodes that are up; when it saw it.
fn wait_full(url: &str) -> Instant {
    wait_for("every shard served twice", PATIENCE, || {
        let doc = cluster(url)?;
        let up: BTreeSet<&str> = doc["nodes"]
            .as_array()?
            .iter()
            .filter(|n| n["state"] == "up")
            .filter_map(|n| n["id"].as_str())
            .collect();
        let shards = doc["shards"].as_array()?;
        let full = shards.len() == 6
            && shards.iter().all(|s| {
                let serving = s["serving"].as_array().map_or(0, |nodes| {
                    nodes
                        .iter()
                        .filter(|n| n.as_str().is_some_and(|n| up.contains(n)))
                        .count()
                });
                serving >= 2
            });
        full.then(Instant::now)
    })
}

/// A new index generation built by a one-off indexer container into the S3 store beside
/// the live one, then switched to and rolled back under load (`indexer generations` in a
/// container too): no failed and no partial answer; `back` is the time from the command
/// to the first answer from the generation it names.
fn generation_switch(project: &Project, url: &str, p99_before: f64) -> (Row, Row) {
    const STORE: &str = "s3://shards/enwiki";
    let built = Instant::now();
    let build = [
        "indexer",
        "build",
        "--input",
        "/input/dump",
        "--out",
        STORE,
        "--shards",
        "6",
        "--generation",
        "g2",
    ];
    project.run("indexer-0", &build);
    println!(
        "generation g2 built into S3 by a one-off container in {:.1} s",
        built.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    let mut before = p99_before;
    for (what, command, generation) in [
        (
            "generation switch to g2 (6 new shards from S3)",
            "switch",
            "g2",
        ),
        (
            "rollback to base (retained: nothing copied)",
            "rollback",
            "base",
        ),
    ] {
        let load = Load::start(url, &[]);
        let begun = Instant::now();
        let mut args = vec!["indexer", "generations", "--store", STORE, command];
        if command == "switch" {
            args.push(generation);
        }
        project.run("indexer-0", &args);
        let answered = wait_for(
            &format!("answers from generation {generation}"),
            PATIENCE,
            || {
                let (status, body) = get_json(&format!("{url}/search?q=the&size=1"))?;
                (status == 200 && body["generation"] == generation).then(Instant::now)
            },
        );
        let during = load.finish();
        assert_clean(what, &during);
        let after = steady(url);
        rows.push(Row {
            fault: what.to_string(),
            during,
            p99_before: before,
            p99_after: after,
            eject_s: None,
            back_s: seconds(begun, answered),
        });
        before = after;
    }
    let rollback = rows.pop().expect("two rows");
    (rows.pop().expect("two rows"), rollback)
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| fault | requests | failed | partial | p99 before | p99 during | p99 after | \
         eject | back |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.2} s |",
            row.fault,
            row.during.requests,
            row.during.errors,
            row.during.partial,
            row.p99_before,
            row.during.worst_p99_ms,
            row.p99_after,
            row.eject_s.map_or("-".to_string(), |s| format!("{s:.2} s")),
            row.back_s
        );
    }
}
