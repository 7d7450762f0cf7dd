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
    /// Too many articles were skipped for an unexpected reason (`--max-unexpected-skips-percent`).
    #[error(
        "{skipped} of {articles} articles were skipped because the cleaner panicked on them, \
         over the {max_percent}% threshold (--max-unexpected-skips-percent): nothing was published"
    )]
    TooManySkips {
        skipped: u64,
        articles: u64,
        max_percent: f64,
    },
    /// The disk (or the file size limit) ran out while writing the shards.
    #[error("no space left to write the shards in {out}: nothing was published ({cause})", out = out.display())]
    DiskFull { out: PathBuf, cause: String },
    /// A link table is missing, corrupt or of another slice.
    #[error("link pass: {0}")]
    Links(String),
    /// A count that must balance did not: a bug, reported rather than published.
    #[error("internal check failed, nothing was published: {0}")]
    Invariant(String),
}

/// Writes and removes a 1 MiB file in `dir`; the error of that write, if any.
fn probe_write(dir: &std::path::Path) -> Option<std::io::Error> {
    use std::io::Write as _;
    let path = dir.join(format!(".tmp-probe-{}", std::process::id()));
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&vec![0u8; 1 << 20])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    written.err()
}

/// Result with the indexer's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The same error, or [`Error::DiskFull`] if it came from a full disk (ENOSPC), an
    /// exhausted quota (EDQUOT) or the file size limit (EFBIG): said plainly, since
    /// tantivy reports those as generic I/O errors deep in a merge or a commit.
    pub fn explain_disk_full(self, out: &std::path::Path) -> Self {
        use nix::errno::Errno;
        const ERRNOS: [i32; 3] = [
            Errno::ENOSPC as i32,
            Errno::EDQUOT as i32,
            Errno::EFBIG as i32,
        ];
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&self);
        let mut full = false;
        while let (Some(error), false) = (cause, full) {
            let errno = error
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::raw_os_error);
            // tantivy wraps I/O errors in `Arc`s and strings, out of reach of a downcast;
            // an `io::Error` always shows its errno as "(os error N)".
            let text = error.to_string();
            full = errno.is_some_and(|n| ERRNOS.contains(&n))
                || ERRNOS
                    .iter()
                    .any(|n| text.contains(&format!("(os error {n})")));
            cause = error.source();
        }
        if full {
            return Error::DiskFull {
                out: out.to_path_buf(),
                cause: self.to_string(),
            };
        }
        // A tantivy writer thread that failed on a full disk reports only "index writer
        // was killed": the errno stays in that thread. Writing a probe file where the
        // shards were being written (before their temporary files are removed) says
        // whether the disk is the reason.
        match probe_write(out) {
            Some(probe) if probe.raw_os_error().is_some_and(|n| ERRNOS.contains(&n)) => {
                Error::DiskFull {
                    out: out.to_path_buf(),
                    cause: format!("{self}; a probe write there failed: {probe}"),
                }
            }
            _ => self,
        }
    }

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
