//! `indexer scan INPUT [--node I --nodes K] [--index FILE] [--json]`: reads a dump (or one
//! slice of it) and prints what it holds — pages, articles, redirects, other namespaces,
//! skipped pages by reason — and how fast it was read. A fatal input error still prints
//! the counts of everything read before it, then fails naming the file and offset.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use corpus::{open, ScanStats};
use serde::Serialize;

use crate::slice_args::SliceArgs;

/// Read a dump (or one slice of it) and print page counts and read speed.
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// Dump to read: MediaWiki XML (plain, .bz2 single or multistream, .gz) or JSON lines.
    pub input: PathBuf,
    #[command(flatten)]
    pub slice: SliceArgs,
    /// Decompression threads for multistream bzip2 (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ScanReport<'a> {
    input: String,
    format: String,
    node: u32,
    nodes: u32,
    #[serde(flatten)]
    stats: &'a ScanStats,
}

/// Runs the scan and prints its report.
pub fn run(args: &ScanArgs) -> anyhow::Result<()> {
    let opts = args.slice.open_options(args.threads)?;
    let split = opts.split;
    let started = Instant::now();
    let reader = open(&args.input, &opts)?;
    let format = reader.format().to_string();
    let progress = reader.progress();
    let mut stats = ScanStats::default();
    let mut fault = None;
    for event in reader {
        match event {
            Ok(event) => stats.record(&event),
            Err(err) => fault = Some(err),
        }
    }
    stats.finish(progress.bytes_read(), started.elapsed().as_secs_f64());
    let report = ScanReport {
        input: args.input.display().to_string(),
        format,
        node: split.node,
        nodes: split.nodes,
        stats: &stats,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    match fault {
        Some(err) => Err(err).context(format!("scan stopped after {} pages", stats.pages)),
        None => Ok(()),
    }
}

fn print_table(report: &ScanReport<'_>) {
    let stats = report.stats;
    println!("input             {} ({})", report.input, report.format);
    println!("slice             {} of {}", report.node, report.nodes);
    println!("pages             {}", stats.pages);
    println!("articles          {}", stats.articles);
    println!("redirects         {}", stats.redirects);
    println!("other_namespaces  {}", stats.other_namespaces);
    println!("skipped           {}", stats.skipped_total());
    for (reason, count) in &stats.skipped {
        println!("  {reason:<16}{count}");
    }
    println!("bytes_read        {}", stats.bytes_read);
    println!("seconds           {:.3}", stats.seconds);
    println!("mb_per_s          {:.1}", stats.mb_per_s);
}
