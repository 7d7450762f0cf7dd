//! The cluster secret of the test clusters, and signing raw RPC requests with it (tests
//! that hand-craft node requests must authenticate like the front-end does).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use shard_proto::auth::ClusterKey;

/// The secret every test cluster shares.
pub const TEST_SECRET: &str = "integration test secret, 0123456789";
/// What a cluster file needs to name it (with [`write_secret`] run in its directory).
pub const AUTH_TABLE: &str = "\n[auth]\nsecret_file = \"cluster.secret\"\n";

/// Writes [`TEST_SECRET`] to `dir/cluster.secret`.
pub fn write_secret(dir: &Path) -> PathBuf {
    let path = dir.join("cluster.secret");
    std::fs::write(&path, TEST_SECRET).expect("write the cluster secret");
    path
}

/// The key of [`TEST_SECRET`].
pub fn test_key() -> ClusterKey {
    ClusterKey::from_secret(TEST_SECRET.as_bytes()).expect("a valid test secret")
}

/// A nonce no other request of this process used: the process id and a counter.
pub fn fresh_nonce() -> u128 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    (u128::from(std::process::id()) << 64) | u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The `x-wikisearch-auth` value for a request sent now.
pub fn auth_value(method: &str, path: &str, body: &[u8]) -> String {
    test_key().sign(method, path, body, fresh_nonce())
}
