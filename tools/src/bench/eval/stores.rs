//! The indexes `eval` measures when it is given none: shard stores built from the dump
//! with the real indexer's link pass (`indexer links`, then `build --links`), once with
//! redirect aliases (what the engine serves) and once without (`--no-aliases`, for the
//! redirect class held out: the alias must not be in the index it is searched in).

use std::path::Path;

use anyhow::Context as _;
use corpus::{OpenOptions, Split};
use indexer::build::{build, BuildOptions, ProgressMode};

/// Indexing memory of one build (the samples are small; a full dump wants more).
const MEMORY_MB: u64 = 256;

/// The two stores of one dump, in `dir`: `dir/aliases` and `dir/held-out`.
pub struct Stores {
    pub aliases: std::path::PathBuf,
    pub held_out: std::path::PathBuf,
}

/// Runs the link pass over `dump` and builds both stores of `shards` shards each.
pub fn build_both(dump: &Path, dir: &Path, shards: u32, threads: usize) -> anyhow::Result<Stores> {
    let links = dir.join("links");
    let open = OpenOptions {
        split: Split::whole(),
        index: None,
        threads,
    };
    indexer::links::collect(dump, &open)
        .and_then(|table| table.write(&links))
        .with_context(|| format!("link pass over {}", dump.display()))?;
    let stores = Stores {
        aliases: dir.join("aliases"),
        held_out: dir.join("held-out"),
    };
    for (out, aliases) in [(&stores.aliases, true), (&stores.held_out, false)] {
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
        })
        .with_context(|| format!("build {}", out.display()))?;
    }
    Ok(stores)
}
