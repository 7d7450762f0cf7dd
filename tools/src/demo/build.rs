//! The demo's index: K `indexer links` processes (the link pass: redirects, incoming links
//! and anchor texts of each slice), then K `indexer build --links` processes run in
//! parallel, each over its slice of the dump (S/K shards each), publishing into one shard
//! store; and the build stamp that lets the next start reuse the index when nothing that
//! shaped it changed.
//!
//! The indexers are real `indexer links ...` and `indexer build ...` processes, exactly
//! what an operator runs on K machines, so the demo ranks with every signal of the
//! engine and suggests redirect titles. The stamp
//! records the input (path, size, modification time), the shard layout and the schema
//! fingerprint; it is written only after every indexer succeeded, and a reuse also checks
//! that the store holds exactly the expected shards, so an interrupted build is rebuilt.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use shard_proto::{ShardId, WikiSchema};

use super::cluster_file::SHARD_STORE;
use super::StopSignals;
use crate::supervisor::{describe_exit, log_tail, Supervisor};
use searcher::cluster::store_manifests;

/// The stamp file inside the data directory.
pub const STAMP_FILE: &str = "build-stamp.json";
/// Where the link pass writes its K tables, inside the data directory.
pub const LINKS_DIR: &str = "links";
/// Where the link pass keeps each slice's pages for its build (`--spool`), removed once
/// the shards are built.
pub const SPOOL_DIR: &str = "spool";

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildPlan {
    /// Absolute path of the dump.
    pub dump: PathBuf,
    /// Shards in total (a multiple of `indexers`).
    pub shards: u32,
    /// Indexer processes.
    pub indexers: u32,
    /// The `indexer` binary they run.
    pub indexer: PathBuf,
}

/// Everything that shapes the index; equal stamps mean the index can be reused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    input: PathBuf,
    input_bytes: u64,
    input_mtime_s: i64,
    input_mtime_ns: i64,
    shards: u32,
    indexers: u32,
    schema: String,
    /// Built with the link pass (a stamp from before it has no such field, does not
    /// parse, and is rebuilt).
    links: bool,
    /// Text analysis chosen from the dump's language (`auto`; likewise absent before).
    analysis: String,
}

impl Stamp {
    fn of(plan: &BuildPlan) -> anyhow::Result<Self> {
        let meta = std::fs::metadata(&plan.dump)
            .with_context(|| format!("cannot read {}", plan.dump.display()))?;
        Ok(Stamp {
            input: plan.dump.clone(),
            input_bytes: meta.len(),
            input_mtime_s: meta.mtime(),
            input_mtime_ns: meta.mtime_nsec(),
            shards: plan.shards,
            indexers: plan.indexers,
            schema: WikiSchema::new().fingerprint(),
            links: true,
            analysis: "auto".into(),
        })
    }
}

impl BuildPlan {
    /// The shard ids the K indexers publish.
    fn expected_shards(&self) -> anyhow::Result<BTreeSet<ShardId>> {
        let per_node = self.shards / self.indexers;
        let mut ids = BTreeSet::new();
        for node in 0..self.indexers {
            for shard in 0..per_node {
                ids.insert(ShardId::new(node, self.indexers, shard, per_node)?);
            }
        }
        Ok(ids)
    }
}

/// How the index came to be.
pub enum Outcome {
    Reused,
    Built,
    /// Ctrl-C or SIGTERM arrived during the build (the indexers are being stopped).
    Interrupted,
}

/// Reuses the index in `data` if its stamp matches `plan` and it is complete, else builds it.
pub async fn ensure_built(
    data: &Path,
    plan: &BuildPlan,
    rebuild: bool,
    procs: &mut Supervisor,
    stop: &mut StopSignals,
) -> anyhow::Result<Outcome> {
    let stamp = Stamp::of(plan)?;
    let stamp_path = data.join(STAMP_FILE);
    if !rebuild {
        match reusable(data, plan, &stamp, &stamp_path) {
            Ok(()) => {
                println!(
                    "Reusing the index in {} (built from {}; pass --rebuild to build it again).",
                    data.join(SHARD_STORE).display(),
                    plan.dump.display()
                );
                return Ok(Outcome::Reused);
            }
            Err(why) => println!("Building the index ({why})."),
        }
    } else {
        println!("Building the index (--rebuild).");
    }
    clear_previous_build(data, &stamp_path)?;
    match run_indexers(data, plan, procs, stop).await? {
        Outcome::Built => {}
        other => return Ok(other),
    }
    reusable_store(data, plan)
        .context("the indexers finished but the shard store is incomplete")?;
    let text = serde_json::to_string_pretty(&stamp)?;
    std::fs::write(&stamp_path, text)
        .with_context(|| format!("cannot write {}", stamp_path.display()))?;
    Ok(Outcome::Built)
}

/// Why the existing build cannot be reused, if it cannot.
fn reusable(data: &Path, plan: &BuildPlan, stamp: &Stamp, stamp_path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(stamp_path).map_err(|_| "no previous build".to_string())?;
    let previous: Stamp =
        serde_json::from_str(&text).map_err(|_| "unreadable build stamp".to_string())?;
    if previous != *stamp {
        return Err("the input or the settings changed since the last build".into());
    }
    reusable_store(data, plan).map_err(|e| format!("the previous build is incomplete: {e:#}"))
}

/// The store holds exactly the expected shards, each with a readable manifest of today's
/// schema (under any analysis).
fn reusable_store(data: &Path, plan: &BuildPlan) -> anyhow::Result<()> {
    let mut found = BTreeSet::new();
    for manifest in store_manifests(&data.join(SHARD_STORE))? {
        let manifest = manifest?; // a `BadShard` error names the shard
        manifest
            .check_schema(&WikiSchema::new())
            .with_context(|| format!("shard {}", manifest.shard))?;
        found.insert(manifest.shard);
    }
    let expected = plan.expected_shards()?;
    if found != expected {
        let show = |s: &BTreeSet<ShardId>| {
            s.iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        bail!(
            "expected shards [{}], found [{}]",
            show(&expected),
            show(&found)
        );
    }
    Ok(())
}

/// Removes the stamp first (so a crash mid-way never leaves a stamp over a partial store),
/// then the old shards and the node copies made from them.
fn clear_previous_build(data: &Path, stamp_path: &Path) -> anyhow::Result<()> {
    remove_if_exists(stamp_path)?;
    for dir in [SHARD_STORE, LINKS_DIR, SPOOL_DIR, "nodes"] {
        remove_if_exists(&data.join(dir))?;
    }
    let store = data.join(SHARD_STORE);
    std::fs::create_dir_all(&store).with_context(|| format!("cannot create {}", store.display()))
}

fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Runs the link pass, then the K indexers (each step: K processes at once, waited for,
/// or a stop signal), and reports each indexer's summary; the first failure stops the
/// others and is reported with its log.
async fn run_indexers(
    data: &Path,
    plan: &BuildPlan,
    procs: &mut Supervisor,
    stop: &mut StopSignals,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let per_node = plan.shards / plan.indexers;
    let links = data.join(LINKS_DIR);
    let spool = data.join(SPOOL_DIR);
    println!(
        "  link pass: {} indexer links processes, then {} indexer processes, {} shards each, from {}",
        plan.indexers,
        plan.indexers,
        per_node,
        plan.dump.display()
    );
    let mut linkers = Vec::new();
    for node in 0..plan.indexers {
        let name = format!("links-{node}");
        let mut command = indexer_command(plan, "links", node);
        command.arg("--out").arg(&links).arg("--spool").arg(&spool);
        procs.spawn(&name, &mut command)?;
        linkers.push(name);
    }
    if !wait_all(&linkers, procs, stop).await? {
        return Ok(Outcome::Interrupted);
    }
    let mut names = Vec::new();
    for node in 0..plan.indexers {
        let name = format!("indexer-{node}");
        let summary = procs.log_path(&format!("{name}.summary"));
        let stdout = std::fs::File::create(&summary)
            .with_context(|| format!("cannot create {}", summary.display()))?;
        let mut command = indexer_command(plan, "build", node);
        command
            .arg("--links")
            .arg(&links)
            .arg("--spool")
            .arg(&spool)
            .arg("--out")
            .arg(data.join(SHARD_STORE))
            .arg("--shards")
            .arg(per_node.to_string())
            .arg("--json")
            .stdout(stdout);
        procs.spawn_keeping_stdout(&name, &mut command)?;
        names.push((name, summary));
    }
    let builders: Vec<String> = names.iter().map(|(name, _)| name.clone()).collect();
    if !wait_all(&builders, procs, stop).await? {
        return Ok(Outcome::Interrupted);
    }
    for (name, summary) in &names {
        println!("  {name}: {}", describe_summary(summary));
    }
    if let Err(e) = std::fs::remove_dir_all(&spool) {
        tracing::warn!("cannot remove {}: {e}", spool.display());
    }
    println!("  built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(Outcome::Built)
}

/// `indexer <step> --input DUMP --node N --nodes K`.
fn indexer_command(plan: &BuildPlan, step: &str, node: u32) -> Command {
    let mut command = Command::new(&plan.indexer);
    command
        .arg(step)
        .arg("--input")
        .arg(&plan.dump)
        .arg("--node")
        .arg(node.to_string())
        .arg("--nodes")
        .arg(plan.indexers.to_string());
    command
}

/// Waits until every process of `names` exited well (true) or a stop signal came (false);
/// the first failure is an error with the end of its log.
async fn wait_all(
    names: &[String],
    procs: &mut Supervisor,
    stop: &mut StopSignals,
) -> anyhow::Result<bool> {
    loop {
        procs.reap_exited();
        let mut all_done = true;
        for name in names {
            let managed = procs.get(name).context("a process spawned above")?;
            match managed.exit() {
                Some(status) if !status.success() => bail!(
                    "{name} failed ({}); the end of {}:\n{}",
                    describe_exit(Some(status)),
                    managed.log.display(),
                    log_tail(&managed.log, 25)
                ),
                Some(_) => {}
                None => all_done = false,
            }
        }
        if all_done {
            return Ok(true);
        }
        tokio::select! {
            _ = stop.recv() => return Ok(false),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// One line from an indexer's `--json` summary.
fn describe_summary(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return format!("(no summary in {})", path.display());
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
        return format!("(unreadable summary in {})", path.display());
    };
    let docs = json["docs"].as_u64().unwrap_or(0);
    let shards = json["shards"].as_array().map_or(0, Vec::len);
    let seconds = json["seconds"].as_f64().unwrap_or(0.0);
    let mb = json["index_bytes"].as_u64().unwrap_or(0) as f64 / 1e6;
    format!("{docs} articles into {shards} shards ({mb:.1} MB) in {seconds:.1} s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path) -> BuildPlan {
        let dump = dir.join("dump.xml");
        std::fs::write(&dump, "<mediawiki/>").unwrap();
        BuildPlan {
            dump,
            shards: 6,
            indexers: 2,
            indexer: PathBuf::from("indexer"),
        }
    }

    #[test]
    fn expected_shards_cover_every_node_slice() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = plan(dir.path())
            .expected_shards()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(ids.len(), 6);
        assert!(ids.contains(&"n0of2-s0of3".to_string()), "{ids:?}");
        assert!(ids.contains(&"n1of2-s2of3".to_string()), "{ids:?}");
    }

    #[test]
    fn stamp_changes_with_input_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let stamp = Stamp::of(&plan).unwrap();
        assert_eq!(stamp, Stamp::of(&plan).unwrap());
        let more_shards = BuildPlan {
            shards: 4,
            ..plan.clone()
        };
        assert_ne!(stamp, Stamp::of(&more_shards).unwrap());
        std::fs::write(&plan.dump, "<mediawiki></mediawiki>").unwrap();
        assert_ne!(stamp, Stamp::of(&plan).unwrap());
    }

    #[test]
    fn missing_or_partial_builds_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let stamp = Stamp::of(&plan).unwrap();
        let stamp_path = dir.path().join(STAMP_FILE);
        let why = reusable(dir.path(), &plan, &stamp, &stamp_path).unwrap_err();
        assert!(why.contains("no previous build"), "{why}");
        std::fs::write(&stamp_path, serde_json::to_string(&stamp).unwrap()).unwrap();
        std::fs::create_dir_all(dir.path().join(SHARD_STORE)).unwrap();
        let why = reusable(dir.path(), &plan, &stamp, &stamp_path).unwrap_err();
        assert!(why.contains("incomplete"), "{why}");
        clear_previous_build(dir.path(), &stamp_path).unwrap();
        assert!(!stamp_path.exists());
    }
}
