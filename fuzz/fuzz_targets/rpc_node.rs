//! Fuzzes the node's RPC path past the HTTP layer and the authentication: the first byte
//! picks the route (search, statistics, fetch, suggest, replica chunk), the rest is the frame, decoded as the
//! server decodes it (a `wire::Call` carrying the request and its budget) and handed to a
//! real leaf over a real shard (built once from a small synthetic dump).
//! Any frame must end in an answer or a `BadRequest`, never a panic, an abort or a hang.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use searcher::node::leaf::Leaf;
use searcher::node::replicas;
use searcher::node::stop::Stop;
use shard_proto::manifest::ShardManifest;
use shard_proto::wire::{
    self, Call, ChunkRequest, FetchRequest, SearchRequest, StatsRequest, SuggestRequest,
};
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
    let options = indexer::build::BuildOptions {
        threads: 1,
        memory_mb: 128,
        progress: indexer::build::ProgressMode::Quiet,
        ..indexer::build::BuildOptions::new(dump, store.clone(), 1)
    };
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
    match route % 5 {
        0 => {
            if let Ok(call) = wire::decode::<Call<SearchRequest>>(frame) {
                let stop = Stop::never();
                let _ = leaf.search(&call.request, &stop).map(|answer| wire::encode(&answer));
            }
        }
        1 => {
            if let Ok(call) = wire::decode::<Call<StatsRequest>>(frame) {
                let stop = Stop::never();
                let _ = leaf.stats(&call.request, &stop).map(|answer| wire::encode(&answer));
            }
        }
        2 => {
            if let Ok(call) = wire::decode::<Call<SuggestRequest>>(frame) {
                let stop = Stop::never();
                let _ = leaf.suggest(&call.request, &stop).map(|answer| wire::encode(&answer));
            }
        }
        3 => {
            if let Ok(call) = wire::decode::<Call<ChunkRequest>>(frame) {
                let chunk = searcher::node::replica_chunks::read_chunk(leaf, &call.request);
                let _ = chunk.map(|answer| wire::encode(&answer));
            }
        }
        _ => {
            if let Ok(call) = wire::decode::<Call<FetchRequest>>(frame) {
                let stop = Stop::never();
                let _ = leaf.fetch(&call.request, &stop).map(|answer| wire::encode(&answer));
            }
        }
    }
});
