//! Fuzzes the node's RPC path past the HTTP layer: the first byte picks the route
//! (search, statistics, fetch), the rest is the frame, decoded as the server decodes it
//! and handed to a real leaf over a real shard (built once from a small synthetic dump).
//! Any frame must end in an answer or a `BadRequest`, never a panic, an abort or a hang.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use searcher::node::leaf::Leaf;
use searcher::node::replicas;
use shard_proto::manifest::ShardManifest;
use shard_proto::wire::{self, FetchRequest, SearchRequest, StatsRequest};
use shard_proto::WikiSchema;

/// The leaf, and the directory its shard lives in (kept for the life of the process).
fn leaf() -> &'static Leaf {
    static LEAF: OnceLock<(Leaf, tempfile::TempDir)> = OnceLock::new();
    &LEAF.get_or_init(build_leaf).0
}

fn build_leaf() -> (Leaf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dump = tmp.path().join("synth.xml.bz2");
    let synth = corpus::SynthOptions {
        pages: 200,
        ..corpus::SynthOptions::default()
    };
    corpus::write_synthetic_dump(&dump, &synth).expect("synthetic dump");
    let store = tmp.path().join("store");
    let args = indexer::build::BuildArgs {
        input: dump,
        out: store.clone(),
        shards: 1,
        node: 0,
        nodes: 1,
        index: None,
        threads: 1,
        memory_mb: 128,
        json: false,
        max_unexpected_skips_percent: indexer::build::DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT,
    };
    let mut options = args.options().expect("build options");
    options.progress = indexer::build::ProgressMode::Quiet;
    indexer::build::build(&options).expect("build the shard");
    let schema = WikiSchema::new();
    let mut opened = BTreeMap::new();
    for (shard, dir) in shard_proto::store::live_shard_dirs(&store).expect("store") {
        let manifest = ShardManifest::read(&dir).expect("manifest");
        let replica = replicas::open(&dir, &manifest, &schema).expect("open the shard");
        opened.insert(shard, Arc::new(replica));
    }
    (Leaf::new("fuzz".into(), schema, opened), tmp)
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, frame)) = data.split_first() else {
        return;
    };
    let leaf = leaf();
    match route % 3 {
        0 => {
            if let Ok(request) = wire::decode::<SearchRequest>(frame) {
                let _ = leaf.search(&request).map(|answer| wire::encode(&answer));
            }
        }
        1 => {
            if let Ok(request) = wire::decode::<StatsRequest>(frame) {
                let _ = leaf.stats(&request).map(|answer| wire::encode(&answer));
            }
        }
        _ => {
            if let Ok(request) = wire::decode::<FetchRequest>(frame) {
                let _ = leaf.fetch(&request).map(|answer| wire::encode(&answer));
            }
        }
    }
});
