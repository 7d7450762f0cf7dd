//! The indexer library's one error type. Every variant says what failed and where (input
//! file and offset come from the corpus error, shard directories from the I/O paths), so
//! that a failed build tells the operator what to fix. Wrapped errors are part of the
//! message rather than `#[source]`s, so `{:#}` in the binary does not print them twice.

use std::path::PathBuf;

/// Errors of an indexer build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the input failed fatally (truncated or corrupt dump...). Nothing was
    /// published.
    #[error("reading the input failed after {pages} pages, nothing was published: {error}")]
    Read { pages: u64, error: corpus::Error },
    /// Opening the input failed.
    #[error(transparent)]
    Corpus(#[from] corpus::Error),
    #[error(transparent)]
    Proto(#[from] shard_proto::Error),
    #[error("shard {shard}: tantivy: {error}")]
    Tantivy {
        shard: String,
        error: tantivy::TantivyError,
    },
    #[error("{path}: {error}", path = path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Flags that cannot work together (memory budget too small, zero shards...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Another build of the same slice is running in the same output directory.
    #[error("{0}")]
    Busy(String),
    /// A count that must balance did not: a bug, reported rather than published.
    #[error("internal check failed, nothing was published: {0}")]
    Invariant(String),
}

/// Result with the indexer's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// Wraps a tantivy error with the shard it happened in.
    pub fn tantivy(shard: impl ToString, source: tantivy::TantivyError) -> Self {
        Error::Tantivy {
            shard: shard.to_string(),
            error: source,
        }
    }
}
