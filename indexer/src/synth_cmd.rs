//! `indexer synth --pages N --seed S --out FILE.xml.bz2 [--query-terms QUERIES]
//! [--markup dense]`: writes a deterministic synthetic multistream dump and its index
//! (`FILE-index.txt.bz2`) for benchmarks at scale; with a query file, its terms and
//! phrases are woven into the text so that those queries find documents; with `--markup
//! dense`, articles carry more markup than real enwiki articles (79% of the wikitext vs
//! 49% in the real sample).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use corpus::{write_synthetic_dump_with, Markup, QueryTerms, SynthOptions};

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
    /// Benchmark queries (JSON lines with a "query" field, or one query a line) whose
    /// terms take realistic Zipf ranks and whose phrases appear in the text.
    #[arg(long, value_name = "FILE")]
    pub query_terms: Option<PathBuf>,
    /// `normal`, or `dense`: templates, citations, tables and navboxes in about real
    /// enwiki's share of the wikitext.
    #[arg(long, default_value = "normal", value_parser = parse_markup)]
    pub markup: Markup,
}

fn parse_markup(s: &str) -> Result<Markup, String> {
    s.parse().map_err(|e: corpus::Error| e.to_string())
}

/// Generates the dump and prints a summary.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let query_terms = match &args.query_terms {
        Some(path) => Some(QueryTerms::read(path).context("cannot use --query-terms")?),
        None => None,
    };
    let started = Instant::now();
    let opts = SynthOptions {
        pages: args.pages,
        seed: args.seed,
        pages_per_stream: args.pages_per_stream,
        markup: args.markup,
    };
    let summary = write_synthetic_dump_with(&args.out, &opts, query_terms.as_ref())?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} bytes, {} streams)",
        summary.path.display(),
        summary.compressed_bytes,
        summary.streams
    );
    println!("index {}", summary.index.display());
    if let Some(terms) = &query_terms {
        println!(
            "query terms: {} terms in the vocabulary, {} phrases in the text",
            terms.terms().len(),
            terms.phrases().len()
        );
    }
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
