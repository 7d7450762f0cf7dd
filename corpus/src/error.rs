//! The crate's single error type. Every variant names the input file and, where it makes
//! sense, the byte offset (of the file, or of the decompressed XML for compressed input)
//! or the page id, so that an operator can find the fault in a 25 GB dump.

use std::path::PathBuf;

/// Result alias of the corpus crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a corpus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: no such file", path = path.display())]
    NotFound { path: PathBuf },

    #[error("{path}: is a directory, expected a dump file", path = path.display())]
    IsDirectory { path: PathBuf },

    #[error("{path}: empty file (0 bytes), expected a dump", path = path.display())]
    Empty { path: PathBuf },

    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{path}: unrecognized input format (first bytes {head:02x?}): expected MediaWiki XML \
         (plain, bzip2 or gzip) or JSON lines",
        path = path.display()
    )]
    UnknownFormat { path: PathBuf, head: Vec<u8> },

    /// Corrupt or truncated compressed data; `offset` is in the compressed file.
    #[error("{path}: corrupt or truncated compressed data at byte offset {offset}: {detail}",
        path = path.display())]
    Decompress {
        path: PathBuf,
        offset: u64,
        detail: String,
    },

    /// Text that is not UTF-8 / UTF-16 with BOM.
    #[error("{path}: undecodable text at {offset_kind} {offset}: {detail}", path = path.display())]
    Encoding {
        path: PathBuf,
        offset: u64,
        offset_kind: String,
        detail: String,
    },

    /// Ill-formed XML outside any recoverable page, or input that ends inside a page.
    #[error("{path}: malformed XML at {offset_kind} {offset}{after}: {detail}",
        path = path.display(),
        after = last_page.map(|id| format!(" (after page id {id})")).unwrap_or_default())]
    Xml {
        path: PathBuf,
        offset: u64,
        offset_kind: String,
        last_page: Option<u64>,
        detail: String,
    },

    #[error("{path}: line {line}: bad multistream index entry: {detail}", path = path.display())]
    Index {
        path: PathBuf,
        line: u64,
        detail: String,
    },

    #[error("invalid split: {0}")]
    Split(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
