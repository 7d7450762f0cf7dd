//! The searcher crate's error type: configuration, replica, RPC and serving failures.

use std::path::PathBuf;

/// Errors of searcher nodes and front-ends.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: bad cluster file: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("no node {0:?} in the cluster file")]
    UnknownNode(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("rpc to {node}: {reason}")]
    Rpc { node: String, reason: String },
    #[error(transparent)]
    Proto(#[from] shard_proto::Error),
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("{0}")]
    Other(String),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
