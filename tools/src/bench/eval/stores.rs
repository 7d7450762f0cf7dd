//! The indexes `eval` measures when it is given none: shard stores built from the dump
//! with the real indexer's link pass (`indexer links`, then `build --links`), once with
//! redirect aliases (what the engine serves) and once without (`--no-aliases`, for the
//! redirect class held out: the alias must not be in the index it is searched in).
//! The link pass keeps the pages it reads in a page spool (`indexer links --spool`) that
//! both builds read, as a node building its own slice does: the dump is decompressed and
//! parsed once.

use std::path::Path;

use anyhow::Context as _;
use corpus::{OpenOptions, Split};
use indexer::build::{build, AnalysisChoice, BuildOptions, ProgressMode};

use super::cost::process_cpu;

/// Indexing memory of one build (the samples are small; a full dump wants more).
const MEMORY_MB: u64 = 256;

/// The two stores of one dump, in `dir`: `dir/aliases` and `dir/held-out`.
pub struct Stores {
    pub aliases: std::path::PathBuf,
    pub held_out: std::path::PathBuf,
    /// CPU seconds of the link pass.
    pub link_cpu_s: f64,
    /// CPU seconds of the build of `aliases` (with the link pass, what the engine's
    /// index costs to make; the held-out build is left out).
    pub build_cpu_s: f64,
}

/// Runs the link pass over `dump` and builds both stores of `shards` shards each, their
/// text analyzed as `analysis` says.
pub fn build_both(
    dump: &Path,
    dir: &Path,
    shards: u32,
    analysis: AnalysisChoice,
) -> anyhow::Result<Stores> {
    let threads = 2;
    let links = dir.join("links");
    let spool = dir.join("spool");
    let open = OpenOptions {
        split: Split::whole(),
        index: None,
        threads,
    };
    let (linked, link_cpu_s) = process_cpu(|| {
        indexer::links::collect(dump, &open, Some(&spool)).and_then(|table| table.write(&links))
    });
    linked.with_context(|| format!("link pass over {}", dump.display()))?;
    let mut stores = Stores {
        aliases: dir.join("aliases"),
        held_out: dir.join("held-out"),
        link_cpu_s,
        build_cpu_s: 0.0,
    };
    for (out, aliases) in [
        (stores.aliases.clone(), true),
        (stores.held_out.clone(), false),
    ] {
        let (built, cpu_s) = process_cpu(|| {
            build(&BuildOptions {
                input: dump.to_path_buf(),
                out: out.clone(),
                shards,
                split: Split::whole(),
                index: None,
                threads,
                memory_mb: MEMORY_MB,
                progress: ProgressMode::Quiet,
                max_unexpected_skips_percent: indexer::build::DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT,
                links: Some(links.clone()),
                aliases,
                analysis,
                spool: Some(spool.clone()),
            })
        });
        built.with_context(|| format!("build {}", out.display()))?;
        if aliases {
            stores.build_cpu_s = cpu_s;
        }
    }
    Ok(stores)
}
