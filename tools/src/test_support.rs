//! Helpers shared by the tools' unit tests: real shards built by the real indexer from
//! the English sample dump (read in place from `../shared`).

use std::path::{Path, PathBuf};

/// The English `pages-articles` excerpt.
pub fn sample_dump() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/enwiki-sample.xml.bz2")
}

/// Builds `shards` shards of the sample dump into the shard store `out`.
pub fn build_store(out: &Path, shards: u32) {
    let options = indexer::build::BuildOptions {
        threads: 1,
        memory_mb: 256,
        ..indexer::build::BuildOptions::new(sample_dump(), out.to_path_buf(), shards)
    };
    indexer::build::build(&options).expect("build shards");
}
