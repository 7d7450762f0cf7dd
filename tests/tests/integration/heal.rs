//! Self-healing, proven with real processes under load from the real load generator: the
//! failover suite's 3-node cluster (R = 2, 6 shards of the English sample) with `[heal]`
//! set to seconds.
//!
//! - A node killed for good (by `wikisearch drill --fault kill --no-restart`, which reports
//!   the restore): its shards, and only its shards, get new holders that copy them from the
//!   store, until every shard has 2 serving copies again, with no failed or partial
//!   answer; the drill's bytes moved are the dead node's replica bytes. Restarted (same data directory), it serves again without copying a
//!   byte, and the temporary copies are dropped after the cool-down.
//! - Both holders of a shard killed: answers are partial (flagged) until the survivor has
//!   installed it, then full again, without any command.
//! - A fourth node added to the cluster file under load: it takes its rendezvous share
//!   (about a quarter of the replicas), the holders it displaces drop their copies only
//!   once it serves them, and no shard ever has fewer than 2 serving copies, as the
//!   nodes' own health answers say, polled all along; the front-end, which follows the
//!   file too, routes n4's shards to it.
//!
//! Conditions are waited for with generous deadlines; timings are printed, never asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Instant;

use searcher::cluster::ClusterConfig;
use searcher::placement::Placement;
use serde_json::Value;
use shard_proto::auth::AUTH_HEADER;
use shard_proto::manifest::{ShardManifest, MANIFEST_FILE};
use shard_proto::wire::{self, HealthResponse};
use shard_proto::ShardId;
use tests::cluster_secret::auth_value;
use tests::{free_port, get_json, wait_for, Signal};

use crate::failover::{
    assert_clean, drill_summary, first_shard_and_holders, seconds, serial, shard_docs, shard_store,
    Cluster, Load, PATIENCE,
};

/// Heal after 3 s unreachable; drop temporary copies 3 s after the lost node serves.
pub(crate) const HEAL: &str = "\n[heal]\nafter_ms = 3000\ncool_down_ms = 3000\n";

/// Shard → the nodes `/cluster` says serve it (or the placement's target).
fn per_shard(cluster: &Cluster, field: &str) -> BTreeMap<String, BTreeSet<String>> {
    let doc = cluster.cluster().expect("GET /cluster");
    let mut map = BTreeMap::new();
    for shard in doc["shards"].as_array().expect("shards") {
        let nodes = shard[field].as_array().expect(field);
        let nodes = nodes.iter().filter_map(|n| n.as_str().map(String::from));
        map.insert(
            shard["id"].as_str().expect("id").to_string(),
            nodes.collect(),
        );
    }
    map
}

/// The replica directories in a node's data directory: shard → its manifest's inode (a
/// copied replica gets a new one; a reused one keeps it).
fn replica_dirs(cluster: &Cluster, node: &str) -> BTreeMap<String, u64> {
    let dir = cluster.dir.path().join("nodes").join(node);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| {
            let inode = std::fs::metadata(e.path().join(MANIFEST_FILE)).ok()?.ino();
            Some((e.file_name().to_string_lossy().into_owned(), inode))
        })
        .collect()
}

/// Bytes of each shard (its manifest's files), from the store.
fn shard_bytes() -> BTreeMap<String, u64> {
    shard_proto::store::live_shard_dirs(shard_store())
        .expect("read the store")
        .into_iter()
        .map(|(id, dir)| {
            let manifest = ShardManifest::read(Path::new(&dir)).expect("manifest");
            (id.to_string(), manifest.files.iter().map(|f| f.bytes).sum())
        })
        .collect()
}

fn every_shard(
    map: &BTreeMap<String, BTreeSet<String>>,
    ok: impl Fn(&BTreeSet<String>) -> bool,
) -> bool {
    !map.is_empty() && map.values().all(ok)
}

#[test]
fn a_node_lost_for_good_is_replaced_and_comes_back_without_copying() {
    let _serial = serial();
    let mut cluster = Cluster::start_with("heal-kill", HEAL);
    let before = per_shard(&cluster, "serving");
    assert!(every_shard(&before, |n| n.len() == 2), "{before:?}");
    let lost: BTreeSet<String> = before
        .iter()
        .filter(|(_, nodes)| nodes.contains("n2"))
        .map(|(shard, _)| shard.clone())
        .collect();
    let dirs_before: BTreeMap<&str, BTreeMap<String, u64>> = ["n1", "n2", "n3"]
        .into_iter()
        .map(|n| (n, replica_dirs(&cluster, n)))
        .collect();

    // The permanent loss is the drill's: it SIGKILLs n2 under its own load, never starts
    // it again, and waits until /cluster shows 2 serving copies of every shard.
    let drill = drill_summary(
        &cluster,
        &[
            "--fault",
            "kill",
            "--no-restart",
            "--node",
            "n2",
            "--at",
            "1",
            "--duration",
            "8",
        ],
    );
    let restored = &drill["restored"];
    let serving = per_shard(&cluster, "serving");
    assert!(
        every_shard(&serving, |n| n.len() == 2 && !n.contains("n2")),
        "{serving:?}"
    );
    // Exactly the lost node's shards were copied, once each.
    let mut copied: Vec<String> = Vec::new();
    for node in ["n1", "n3"] {
        let now = replica_dirs(&cluster, node);
        copied.extend(
            now.keys()
                .filter(|s| !dirs_before[node].contains_key(*s))
                .cloned(),
        );
    }
    copied.sort();
    assert_eq!(copied, lost.iter().cloned().collect::<Vec<_>>());
    let bytes = shard_bytes();
    let moved: u64 = copied.iter().map(|s| bytes[s]).sum();
    let n2_bytes: u64 = lost.iter().map(|s| bytes[s]).sum();
    assert_eq!(
        moved, n2_bytes,
        "bytes moved = the dead node's replica bytes"
    );
    assert_eq!(restored["bytes"], n2_bytes, "the drill's bytes: {drill}");
    assert_eq!(
        restored["installed"].as_array().map(Vec::len),
        Some(lost.len())
    );
    assert_eq!(restored["copies"], 2);
    let after = restored["after_s"].as_f64().expect("restored in time");
    assert_eq!(drill["failed"], 0, "{}", drill["error_samples"]);
    assert_eq!(
        drill["partial"], 0,
        "partial answers during the loss: {}",
        drill["partial_samples"]
    );

    let load = Load::start(&cluster.url, &[]);
    let restarted = Instant::now();
    let pid = cluster.start_node("n2");
    cluster.wait_up("n2", Some(pid));
    let settled = wait_for(
        "every shard served by its target only",
        PATIENCE * 2,
        || {
            let serving = per_shard(&cluster, "serving");
            let target = per_shard(&cluster, "target");
            let back = serving == target
                && ["n1", "n3"]
                    .iter()
                    .all(|n| replica_dirs(&cluster, n) == dirs_before[n]);
            back.then(Instant::now)
        },
    );
    let figures = load.finish();
    println!(
        "heal: n2 ({} shards, {n2_bytes} bytes) killed for good by the drill ({} searches, \
         p99 before {} / during {} ms); 2 copies of every shard again after {after:.2} s \
         (heal_after 3 s); n2 restarted, temporary copies dropped {:.2} s later",
        lost.len(),
        drill["requests"],
        drill["p99_before_ms"],
        drill["p99_during_ms"],
        seconds(restarted, settled)
    );
    assert_eq!(
        replica_dirs(&cluster, "n2"),
        dirs_before["n2"],
        "the returning node reused its copies: zero bytes"
    );
    assert_clean("node lost for good, then back", &figures);
}

#[test]
fn both_holders_of_a_shard_lost_the_survivor_installs_it_and_answers_are_full_again() {
    let _serial = serial();
    let cluster = Cluster::start_with("heal-kill-shard", HEAL);
    let holders = cluster.holders();
    let (shard, victims) = first_shard_and_holders(&holders);
    let killed = Instant::now();
    for id in &victims {
        cluster.signal(id, Signal::SIGKILL);
    }
    let query = format!("{}/search?q=the&size=10", cluster.url);
    let load = Load::start(&cluster.url, &[]);
    let explained = wait_for(
        "a partial answer naming the shard, explained in /cluster",
        PATIENCE,
        || {
            let (_, body) = get_json(&query).filter(|(_, b)| b["partial"] == true)?;
            let failures = body["shards"]["failures"].as_array()?;
            failures
                .iter()
                .any(|f| f["shard"] == shard.as_str())
                .then_some(())?;
            let doc = cluster.cluster()?;
            let view: &Value = doc["shards"]
                .as_array()?
                .iter()
                .find(|s| s["id"] == shard.as_str())?;
            view["under_replicated"].as_str().map(String::from)
        },
    );
    let full = wait_for("full answers again", PATIENCE * 2, || {
        let (status, body) = get_json(&query)?;
        assert_eq!(status, 200, "{body}");
        (body["partial"] == false && body["coverage"] == 1.0).then(Instant::now)
    });
    for _ in 0..10 {
        let (status, body) = get_json(&query).expect("search answers");
        assert_eq!(
            (status, &body["partial"]),
            (200, &Value::Bool(false)),
            "{body}"
        );
    }
    let figures = load.finish();
    println!(
        "heal: both holders of {shard} killed ({victims:?}); /cluster said {explained:?}; full \
         answers again after {:.2} s; {} requests, {} partial, {} failed",
        seconds(killed, full),
        figures.requests,
        figures.partial,
        figures.errors
    );
    assert!(explained.contains("0 of 2"), "{explained}");
    assert_eq!(
        figures.errors, 0,
        "answers must be 200: {:?}",
        figures.error_samples
    );
}

/// A node's own health answer (`None` if it does not answer).
pub(crate) fn node_health(rpc: &str) -> Option<HealthResponse> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(2)))
        .build()
        .into();
    let mut response = agent
        .get(format!("http://{rpc}{}", wire::paths::HEALTH))
        .header(AUTH_HEADER, auth_value("GET", wire::paths::HEALTH, b""))
        .call()
        .ok()?;
    let body = response.body_mut().read_to_vec().ok()?;
    wire::decode(&body).ok()
}

/// Shard → the nodes whose health answer reports it serving, polled one node at a time.
fn serving_by_health(config: &ClusterConfig) -> BTreeMap<ShardId, BTreeSet<String>> {
    let mut map: BTreeMap<ShardId, BTreeSet<String>> = BTreeMap::new();
    for node in &config.nodes {
        let Some(health) = node_health(&node.rpc.to_string()) else {
            continue;
        };
        for shard in health.serving() {
            map.entry(shard).or_default().insert(node.id.clone());
        }
    }
    map
}

#[test]
fn a_fourth_node_joins_under_load_and_takes_a_quarter_of_the_replicas() {
    let _serial = serial();
    let mut cluster = Cluster::start_with("heal-grow", HEAL);
    let file = cluster.dir.path().join("cluster.toml");
    let shards: Vec<ShardId> = shard_docs()
        .keys()
        .map(|s| s.parse().expect("shard id"))
        .collect();
    let load = Load::start(&cluster.url, &[]);
    // The file is replaced whole (write, then rename), as an operator's tool would.
    let mut text = std::fs::read_to_string(&file).expect("read cluster.toml");
    text.push_str(&format!(
        "\n[[node]]\nid = \"n4\"\nrpc = \"127.0.0.1:{}\"\n",
        free_port()
    ));
    let edited = file.with_extension("toml.new");
    std::fs::write(&edited, text).expect("write the new cluster file");
    let joined = Instant::now();
    std::fs::rename(&edited, &file).expect("replace cluster.toml");
    let config = ClusterConfig::load(&file).expect("the new cluster file");
    let target = Placement::for_cluster(&config, shards.iter().copied());
    let share = target.shards_of("n4");
    cluster.start_node("n4");

    let mut fewest = usize::MAX;
    let mut polls = 0u32;
    let settled = wait_for(
        "every node serving exactly its share of the 4-node placement",
        PATIENCE * 2,
        || {
            let serving = serving_by_health(&config);
            polls += 1;
            let copies = shards.iter().map(|s| serving.get(s).map_or(0, |n| n.len()));
            fewest = fewest.min(copies.min().unwrap_or(0));
            let done = shards.iter().all(|s| {
                let wanted: BTreeSet<String> = target.replicas[s].iter().cloned().collect();
                serving.get(s) == Some(&wanted)
            });
            done.then(Instant::now)
        },
    );
    // The front-end follows the file too: it lists n4 and routes n4's shards to it.
    let routed = wait_for("the front-end routing n4's shards to it", PATIENCE, || {
        let (_, view) = get_json(&format!("{}/cluster", cluster.url))?;
        let n4_up = view["nodes"]
            .as_array()?
            .iter()
            .any(|n| n["id"] == "n4" && n["state"] == "up");
        let routed = view["shards"].as_array()?.iter().all(|s| {
            let id: ShardId = s["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("shard id");
            let serving = s["serving"].as_array().expect("serving");
            share.contains(&id) == serving.iter().any(|n| n == "n4")
        });
        (n4_up && routed).then(Instant::now)
    });
    let figures = load.finish();
    let replicas = shards.len() * 2;
    println!(
        "grow: n4 joined; it took {} of {replicas} replicas ({:.0}%), the displaced copies \
         were dropped, all within {:.2} s; fewest serving copies of any shard over {polls} \
         polls of the nodes' health: {fewest}; the front-end routed to n4 after {:.2} s",
        share.len(),
        100.0 * share.len() as f64 / replicas as f64,
        seconds(joined, settled),
        seconds(joined, routed)
    );
    assert!(!share.is_empty(), "the placement gives n4 no shard");
    assert!(fewest >= 2, "a shard had {fewest} serving copies");
    assert_clean("a fourth node joins", &figures);
}

#[test]
fn a_corrupted_store_copy_is_refused_and_the_shard_taken_from_a_live_replica() {
    let _serial = serial();
    // A private copy of the store, so the corruption reaches no other test.
    let store_dir = tests::temp_dir("heal-corrupt-store");
    let store = store_dir.path().join("shards");
    tests::run_ok(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(shard_store())
            .arg(&store),
    );
    let cluster = Cluster::start_on("heal-corrupt", &store, HEAL);
    let before = per_shard(&cluster, "serving");
    let (shard, holders) = before
        .iter()
        .find(|(_, nodes)| nodes.contains("n2"))
        .map(|(s, n)| (s.clone(), n.clone()))
        .expect("n2 holds a shard");
    // One flipped byte in the middle of the shard's largest file in the store.
    let (_, dir) = shard_proto::store::live_shard_dirs(&store)
        .expect("read the store")
        .into_iter()
        .find(|(id, _)| id.to_string() == shard)
        .expect("the shard is in the store");
    let manifest = ShardManifest::read(Path::new(&dir)).expect("manifest");
    let file = manifest
        .files
        .iter()
        .max_by_key(|f| f.bytes)
        .expect("files");
    let path = Path::new(&dir).join(&file.name);
    let mut bytes = std::fs::read(&path).expect("read the shard file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&path, bytes).expect("corrupt the shard file");

    let load = Load::start(&cluster.url, &[]);
    let killed = Instant::now();
    cluster.signal("n2", Signal::SIGKILL);
    let healed = wait_for(
        "2 serving copies of every shard without n2",
        PATIENCE * 2,
        || {
            let serving = per_shard(&cluster, "serving");
            every_shard(&serving, |n| n.len() == 2 && !n.contains("n2")).then_some(serving)
        },
    );
    let took = killed.elapsed();
    let figures = load.finish();
    let new_holder = healed[&shard]
        .difference(&holders)
        .next()
        .expect("a new holder of the corrupted shard")
        .clone();
    let log = std::fs::read_to_string(cluster.dir.path().join(format!("{new_holder}.log")))
        .expect("the new holder's log");
    assert!(
        log.contains("the store's copy failed") && log.contains(&file.name),
        "the refusal, naming the file, is not in {new_holder}'s log:\n{log}"
    );
    assert!(
        log.contains("installed from a live replica"),
        "{new_holder} did not copy a live replica:\n{log}"
    );
    println!(
        "heal from a live replica: {shard}'s store copy corrupted ({} of {} bytes flipped once), \
         n2 killed; {new_holder} refused the store's copy and copied a live replica: 2 serving \
         copies of every shard after {:.2} s",
        file.name,
        file.bytes,
        took.as_secs_f64()
    );
    assert_clean("a corrupted store copy", &figures);
}

#[test]
fn a_flapping_node_back_within_the_grace_period_moves_no_byte() {
    let _serial = serial();
    // A grace period longer than each outage.
    let grace = "\n[heal]\nafter_ms = 5000\ncool_down_ms = 3000\n";
    let mut cluster = Cluster::start_with("heal-flap", grace);
    let config = ClusterConfig::load(&cluster.dir.path().join("cluster.toml")).expect("config");
    let rpc = config.node("n2").expect("n2").rpc.to_string();
    let dirs_before: BTreeMap<&str, BTreeMap<String, u64>> = ["n1", "n2", "n3"]
        .into_iter()
        .map(|n| (n, replica_dirs(&cluster, n)))
        .collect();
    let load = Load::start(&cluster.url, &[]);
    let cycles = 4;
    let mut longest = std::time::Duration::ZERO;
    for _ in 0..cycles {
        let killed = Instant::now();
        cluster.signal("n2", Signal::SIGKILL);
        std::thread::sleep(std::time::Duration::from_secs(1));
        cluster.start_node("n2");
        wait_for("n2 answering its health again", PATIENCE, || {
            node_health(&rpc)
        });
        longest = longest.max(killed.elapsed());
        std::thread::sleep(std::time::Duration::from_millis(1500));
    }
    // Longer than the grace period after the last outage: a wrong decision would show.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let figures = load.finish();
    for node in ["n1", "n2", "n3"] {
        assert_eq!(
            replica_dirs(&cluster, node),
            dirs_before[node],
            "{node}'s replicas changed: a flapping node within its grace period moved bytes"
        );
    }
    let serving = per_shard(&cluster, "serving");
    let target = per_shard(&cluster, "target");
    assert_eq!(serving, target, "every shard on its targets only");
    println!(
        "flap: n2 SIGKILLed and restarted {cycles} times (longest outage {:.2} s, grace 5 s): \
         0 replicas copied or dropped; {} searches, {} failed, {} partial",
        longest.as_secs_f64(),
        figures.requests,
        figures.errors,
        figures.partial
    );
    assert_clean("a flapping node", &figures);
}
