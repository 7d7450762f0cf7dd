//! Helpers shared by the crate's unit tests: real shards built by the real indexer from
//! the English sample dump (read in place from `../shared`).

use std::path::{Path, PathBuf};

use shard_proto::auth::ClusterKey;

/// The cluster secret of the tests' clusters.
pub const TEST_SECRET: &str = "test cluster secret, 32 bytes ok";

/// Writes [`TEST_SECRET`] to `dir/secret` (what `[auth] secret_file = "secret"` names).
pub fn write_secret(dir: &Path) -> PathBuf {
    let path = dir.join("secret");
    std::fs::write(&path, TEST_SECRET).expect("write the test secret");
    path
}

/// The key of [`TEST_SECRET`].
pub fn test_key() -> ClusterKey {
    ClusterKey::from_secret(TEST_SECRET.as_bytes()).expect("a valid test secret")
}

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
