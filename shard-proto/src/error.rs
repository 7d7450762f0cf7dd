//! The crate's one error type: what can go wrong when reading a manifest, verifying a
//! shard, decoding a wire frame, or parsing a strict query.

use std::path::PathBuf;

/// Errors of the shared protocol layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid manifest: {reason}")]
    InvalidManifest { path: PathBuf, reason: String },
    #[error("shard {shard}: {reason}")]
    Verification { shard: String, reason: String },
    #[error("schema mismatch: shard was built with schema {found}, this binary uses {expected}")]
    SchemaMismatch { expected: String, found: String },
    #[error("invalid shard id {0:?}: expected n<node>of<nodes>-s<shard>of<shards>")]
    InvalidShardId(String),
    /// A query that cannot be searched: strict syntax that does not parse.
    #[error("{0}")]
    BadQuery(String),
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// A query refused by [`crate::limits::QueryLimits`] (answered with 400).
    #[error("{what}: {found}, over the limit {limit} = {max}")]
    QueryLimit {
        limit: &'static str,
        max: u64,
        found: u64,
        what: String,
    },
    /// `field:*` on a field that is not a fast field: it would fail on every shard.
    #[error("{0}:* needs a fast field; only id:* can match every document with a field")]
    ExistsNeedsFastField(String),
    /// A shard store that cannot be opened (a malformed `s3://` URL, a bad `[s3]` table).
    #[error("shard store: {0}")]
    Store(String),
    /// A request to the object store failed for good (after its retries).
    #[error("{object}: {source}")]
    ObjectStore {
        object: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// A downloaded object does not match its manifest entry.
    #[error("{object} is corrupted: {reason}")]
    Corrupt { object: String, reason: String },
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it happened on, so messages always name the file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
