//! Tests of a node following index generations: real shards in a temporary store, a
//! generation published beside the base one, the node's watch installing it (linking the
//! files it already holds), requests pinned to a generation, retirement, and the scrub
//! of a named generation's copies.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;

use shard_proto::generation::{self, GENERATIONS_DIR};
use shard_proto::manifest::ShardManifest;
use shard_proto::query::Syntax;
use shard_proto::store::ShardStore;
use shard_proto::wire::{SearchRequest, ShardOutcome};
use shard_proto::WikiSchema;

use super::generations::Watch;
use super::leaf::Leaf;
use super::replicas;
use super::scrub::{self, ScrubConfig};
use super::stop::Stop;
use super::tests::{all_shards, articles, build_shard, global_stats, one_node_cluster, shard};

/// Copies every live shard of `store` into generation `id` (the same files: a rebuild
/// that changed nothing).
fn copy_into_generation(store: &Path, id: &str) {
    for (shard, dir) in shard_proto::store::live_shard_dirs(store).unwrap() {
        let to = store.join(GENERATIONS_DIR).join(id).join(shard.to_string());
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Builds generation `id` of `store` from half the articles (its own files: nothing in
/// common with the base shards), in 3 shards.
fn build_half_generation(store: &Path, id: &str) {
    let half: Vec<_> = articles().into_iter().filter(|a| a.0 % 2 == 0).collect();
    for i in 0..3 {
        let part: Vec<_> = (half.iter())
            .filter(|a| shard_proto::ShardId::route(a.0, 3) == i)
            .cloned()
            .collect();
        build_shard(&store.join(GENERATIONS_DIR).join(id), shard(i, 3), &part);
    }
}

/// Total hits of `query` over every shard, in `generation`; the failures' reasons.
fn total(leaf: &Leaf, generation: Option<&str>, query: &str) -> (u64, Vec<String>) {
    let shards = all_shards(3);
    let request = SearchRequest {
        query: query.into(),
        syntax: Syntax::Lenient,
        shards: shards.clone(),
        top_k: 10,
        stats: global_stats(leaf, query, &shards),
        fetch: None,
        generation: generation.map(String::from),
    };
    let answer = leaf.search(&request, &Stop::never()).unwrap();
    let mut hits = 0;
    let mut failures = Vec::new();
    for (_, outcome) in answer.shards {
        match outcome {
            ShardOutcome::Ok(found) => hits += found.total,
            ShardOutcome::Failed(reason) => failures.push(reason),
        }
    }
    (hits, failures)
}

#[test]
fn a_node_installs_a_generation_beside_its_replicas_linking_common_files_and_retires_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = one_node_cluster(tmp.path(), 3);
    config.generations.retire_after_ms = 0;
    let schema = WikiSchema::new();
    let store_dir = config.shard_store.as_dir().unwrap().to_path_buf();
    let store = ShardStore::Dir(store_dir.clone());
    let installed = replicas::install_assigned(&config, "a", &schema).unwrap();
    let base: Vec<_> = installed.serving.values().cloned().collect();
    let leaf = Arc::new(Leaf::new("a".into(), schema.clone(), installed.serving));
    let mut watch = Watch::new(&config, "a", schema.clone(), Arc::clone(&leaf)).unwrap();

    // g1: the same files as the base; g2: half the articles.
    copy_into_generation(&store_dir, "g1");
    build_half_generation(&store_dir, "g2");

    let (base_total, failures) = total(&leaf, None, "apple");
    assert!(base_total > 0 && failures.is_empty(), "{failures:?}");
    let (_, failures) = total(&leaf, Some("g1"), "apple");
    assert!(
        failures.iter().all(|f| f.contains("not held here")),
        "{failures:?}"
    );

    generation::switch(&store, "g1").unwrap();
    assert!(watch.poll());
    assert!(leaf.generations.holds("g1"));
    assert_eq!(total(&leaf, Some("g1"), "apple"), (base_total, Vec::new()));
    // Every file of g1 is the base replica's file, linked: no byte copied twice.
    let data = config.node("a").unwrap().data_dir().to_path_buf();
    for replica in &base {
        let linked = data.join("generations/g1").join(replica.shard.to_string());
        let manifest = ShardManifest::read(&linked).unwrap();
        for file in &manifest.files {
            let inode = |dir: &Path| std::fs::metadata(dir.join(&file.name)).unwrap().ino();
            assert_eq!(inode(&linked), inode(&replica.dir), "{}", file.name);
        }
    }

    generation::switch(&store, "g2").unwrap();
    assert!(watch.poll());
    let (g2_total, failures) = total(&leaf, Some("g2"), "apple");
    assert!(failures.is_empty(), "{failures:?}");
    assert!(g2_total < base_total, "g2 holds half the articles");
    // g1 is neither live nor asked for (retire_after 0): retired, its files deleted; the
    // base replicas, which shared its inodes, still serve.
    assert!(!leaf.generations.holds("g1"));
    assert!(!data.join("generations/g1").exists());
    assert_eq!(total(&leaf, None, "apple"), (base_total, Vec::new()));
    for replica in &base {
        ShardManifest::read_verified(&replica.dir, &schema).unwrap();
    }
    let report = leaf.generations.report(Vec::new(), &Default::default());
    let named: Vec<&str> = report.iter().map(|g| g.generation.as_str()).collect();
    assert_eq!(named, ["base", "g2"]);
}

#[test]
fn the_scrub_drops_a_corrupted_copy_of_a_named_generation_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 3);
    let schema = WikiSchema::new();
    let store_dir = config.shard_store.as_dir().unwrap().to_path_buf();
    let installed = replicas::install_assigned(&config, "a", &schema).unwrap();
    let leaf = Arc::new(Leaf::new("a".into(), schema.clone(), installed.serving));
    let mut watch = Watch::new(&config, "a", schema.clone(), Arc::clone(&leaf)).unwrap();
    // g2 has files of its own (half the articles), so nothing is linked from the base.
    build_half_generation(&store_dir, "g2");
    generation::switch(&ShardStore::Dir(store_dir), "g2").unwrap();
    assert!(watch.poll());
    let scrubbing = ScrubConfig {
        mib_per_s: 64,
        pass_every_s: 1,
    };
    scrub::spawn(&leaf, &scrubbing).unwrap();

    // Bit rot in g2's copy of shard 0, in place (the replica maps the file).
    let data = config.node("a").unwrap().data_dir().to_path_buf();
    let copy = data.join("generations/g2").join(shard(0, 3).to_string());
    let manifest = ShardManifest::read(&copy).unwrap();
    let file = manifest.files.iter().max_by_key(|f| f.bytes).unwrap();
    let path = copy.join(&file.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    let mut handle = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut handle, &bytes).unwrap();
    drop(handle);

    let g2_serving = || {
        let report = leaf.generations.report(Vec::new(), &Default::default());
        let g2 = report.into_iter().find(|g| g.generation == "g2").unwrap();
        g2.shards
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while g2_serving().contains(&shard(0, 3)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the scrub never dropped it"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(g2_serving(), [shard(1, 3), shard(2, 3)]);
    let (_, failures) = total(&leaf, Some("g2"), "apple");
    assert!(
        failures
            .iter()
            .any(|f| f.contains("dropped") && f.contains(&file.name)),
        "{failures:?}"
    );
    // The base generation's copies are other files: still served.
    assert_eq!(total(&leaf, None, "apple").1, Vec::<String>::new());
}
