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
use indexer::build::{build, AnalysisChoice, BuildOptions, Plan, ProgressMode, WriterConfig};

use super::cost::process_cpu;

/// Indexing memory of one build (the samples are small; a full dump wants more).
const MEMORY_MB: u64 = 256;
/// Threads of the link pass and of every build here.
const THREADS: usize = 2;

/// The tantivy writer every build here sizes itself to: what the plain-BM25 baseline is
/// given, so that both sides of `eval --cost` index with the same threads and arenas.
pub fn writer_config() -> anyhow::Result<WriterConfig> {
    Ok(Plan::new(1, THREADS, MEMORY_MB)?.writer)
}

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
    let (link_cpu_s, build_cpu_s) = build_engine(dump, dir, shards, analysis)?;
    let stores = Stores {
        aliases: dir.join("aliases"),
        held_out: dir.join("held-out"),
        link_cpu_s,
        build_cpu_s,
    };
    build_store(dump, dir, &stores.held_out, shards, analysis, false)?;
    Ok(stores)
}

/// The link pass and the build of the store the engine serves (`dir/aliases`): the
/// CPU seconds of each (what `eval --cost` charges the engine's indexing).
pub fn build_engine(
    dump: &Path,
    dir: &Path,
    shards: u32,
    analysis: AnalysisChoice,
) -> anyhow::Result<(f64, f64)> {
    let open = OpenOptions {
        split: Split::whole(),
        index: None,
        threads: THREADS,
    };
    let (links, spool) = (dir.join("links"), dir.join("spool"));
    let (linked, link_cpu_s) = process_cpu(|| {
        indexer::links::collect(dump, &open, Some(&spool)).and_then(|table| table.write(&links))
    });
    linked.with_context(|| format!("link pass over {}", dump.display()))?;
    let build_cpu_s = build_store(dump, dir, &dir.join("aliases"), shards, analysis, true)?;
    Ok((link_cpu_s, build_cpu_s))
}

/// Builds `out` from the link pass and page spool in `dir`; its CPU seconds.
fn build_store(
    dump: &Path,
    dir: &Path,
    out: &Path,
    shards: u32,
    analysis: AnalysisChoice,
    aliases: bool,
) -> anyhow::Result<f64> {
    let (built, cpu_s) = process_cpu(|| {
        build(&BuildOptions {
            input: dump.to_path_buf(),
            out: out.to_path_buf(),
            shards,
            split: Split::whole(),
            index: None,
            threads: THREADS,
            memory_mb: MEMORY_MB,
            progress: ProgressMode::Quiet,
            max_unexpected_skips_percent: indexer::build::DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT,
            links: Some(dir.join("links")),
            aliases,
            analysis,
            spool: Some(dir.join("spool")),
        })
    });
    built.with_context(|| format!("build {}", out.display()))?;
    Ok(cpu_s)
}
