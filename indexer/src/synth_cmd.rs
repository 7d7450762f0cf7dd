//! `indexer synth --pages N --seed S --out FILE.xml.bz2`: writes a deterministic synthetic
//! multistream dump and its index (`FILE-index.txt.bz2`) for benchmarks at scale.

use std::path::PathBuf;
use std::time::Instant;

use corpus::{write_synthetic_dump, SynthOptions};

/// Write a deterministic synthetic multistream dump (.xml.bz2) and its index.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Number of pages to generate.
    #[arg(long)]
    pub pages: u64,
    /// Seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output dump; the index is written beside it as NAME-index.txt.bz2.
    #[arg(long)]
    pub out: PathBuf,
    /// Pages per bzip2 stream.
    #[arg(long, default_value_t = 100)]
    pub pages_per_stream: u32,
}

/// Generates the dump and prints a summary.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let opts = SynthOptions {
        pages: args.pages,
        seed: args.seed,
        pages_per_stream: args.pages_per_stream,
    };
    let summary = write_synthetic_dump(&args.out, &opts)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} bytes, {} streams)",
        summary.path.display(),
        summary.compressed_bytes,
        summary.streams
    );
    println!("index {}", summary.index.display());
    println!(
        "pages {} (articles {}, redirects {}, other namespaces {}), {:.1} MB of XML",
        summary.pages,
        summary.articles,
        summary.redirects,
        summary.other_namespaces,
        summary.xml_bytes as f64 / 1e6
    );
    println!(
        "{seconds:.1} s: {:.0} pages/s, {:.1} MB/s of XML",
        summary.pages as f64 / seconds,
        summary.xml_bytes as f64 / 1e6 / seconds
    );
    Ok(())
}
