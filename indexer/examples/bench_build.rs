//! Benchmark of `indexer build` against its upper bound, all measured in one run on a
//! generated corpus, with the same thread count and memory budget:
//!
//! - (a) raw tantivy: one `IndexWriter` fed already-clean documents from memory (loaded
//!   and cleaned before the clock starts), committed and merged to one segment. They are
//!   the documents the build writes (`shard_writer::to_tantivy`: the same fields,
//!   title key included, under the dump's text analysis; (b) runs without a link
//!   pass, so both have no redirects or anchors), so b/a measures the build's own work
//!   (reading, parsing, cleaning, routing, spooling), not the schema, whose cost against
//!   plain BM25 is `wikisearch eval --cost`'s;
//! - (b) `indexer build` end to end from the uncompressed XML, once per shard count of
//!   `--shards` (default 1, 2 and 6: a node's build must not slow down with its shards);
//! - (c) `indexer build` from the multistream `.xml.bz2` (with `--index`, its index
//!   file), once per shard count;
//! - (d) bzip2 decompression alone: the dump's streams (from its index) decompressed into
//!   a sink by the same number of threads; (d1) the same on one thread, for reference
//!   (on a 2-core VM two busy threads each run slower, so CPU seconds depend on it).
//!
//! Each phase runs in a child process (this example re-executed with `--phase`) so that
//! its CPU time and peak RSS (getrusage) are its own. Prints docs/s, MB/s, CPU seconds and
//! peak RSS per phase and, per shard count, the ratios b/a (throughput; goal ≥ 0.8),
//! b/b(1 shard) (goal ≥ 0.9) and c_cpu / (a_cpu + d_cpu) (goal ≤ 1.15).
//!
//! `--markup dense` generates articles heavier in markup than real enwiki (templates,
//! citations, tables, navboxes: `corpus::Markup::Dense`, 79% of the wikitext bytes vs
//! 49% in the real sample) instead of the generator's lighter default (37%), so the
//! cleaner's cost is at least the real one in the figures.
//!
//! `--scale 10000,100000,1000000` instead builds (c) at each size and shows how time grows.
//!
//! ```text
//! cargo run --release -p indexer --example bench_build -- --pages 220000 --threads 2
//! cargo run --release -p indexer --example bench_build -- --pages 100000 --threads 2 \
//!     --memory-mb 512 --markup dense --shards 1,2,6
//! cargo run --release -p indexer --example bench_build -- --scale 10000,100000,1000000
//! ```

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use corpus::{classify, Markup, OpenOptions, PageEvent, PageKind, SynthOptions};
use indexer::build::shard_writer::to_tantivy;
use indexer::build::{build, AnalysisChoice, BuildOptions, Plan, ProgressMode, ResourceUsage};
use indexer::links::ArticleSignals;
use serde::{Deserialize, Serialize};
use shard_proto::WikiSchema;
use tantivy::{doc, Index, IndexWriter};

#[derive(Debug, Parser)]
#[command(about = "Benchmark indexer build against raw tantivy and bzip2 alone")]
struct Args {
    /// Pages of the generated dump (~90% are articles).
    #[arg(long, default_value_t = 220_000)]
    pages: u64,
    /// Threads for every phase; 0 = one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Memory budget (MiB) of the builds and of the raw writer's arenas.
    #[arg(long, default_value_t = 1024)]
    memory_mb: u64,
    /// Shard counts: builds (b) and (c) run once for each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,6")]
    shards: Vec<u32>,
    /// Markup of the generated dump: `normal` or `dense` (more than real enwiki has).
    #[arg(long, default_value = "normal", value_parser = parse_markup)]
    markup: Markup,
    /// Skip the .xml.bz2 builds and decompression (c, d, d1).
    #[arg(long)]
    xml_only: bool,
    /// Where dumps are generated (and kept for the next run) and indexes written.
    #[arg(long, default_value = "target/bench-build")]
    dir: PathBuf,
    /// Scaling mode: build (c) at each of these page counts.
    #[arg(long, value_delimiter = ',')]
    scale: Vec<u64>,
    /// Internal: run one phase in this process and print its measurement.
    #[arg(long, hide = true)]
    phase: Option<Phase>,
    #[arg(long, hide = true)]
    input: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Phase {
    Raw,
    Build,
    Decompress,
    Decompress1,
}

/// One phase's figures, as printed by a child process.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Measure {
    docs: u64,
    /// Bytes of the phase's input file.
    input_bytes: u64,
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mb: f64,
    /// Build phases: peak anonymous RSS (what the budget bounds).
    peak_anon_rss_mb: f64,
    /// Raw phase only: memory held by the pre-cleaned documents.
    preload_mb: f64,
    /// Raw phase only: share of the articles' wikitext bytes that cleaning removed.
    markup_share: f64,
}

fn parse_markup(s: &str) -> std::result::Result<Markup, String> {
    s.parse().map_err(|e: corpus::Error| e.to_string())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(phase) = args.phase {
        let input = args.input.clone().context("--phase needs --input")?;
        let measure = run_phase(phase, &input, &args)?;
        println!("{}", serde_json::to_string(&measure)?);
        return Ok(());
    }
    fs::create_dir_all(&args.dir)?;
    if args.shards.is_empty() || args.shards.contains(&0) {
        bail!("--shards needs shard counts of at least 1");
    }
    let threads = Plan::new(args.shards[0], args.threads, args.memory_mb)?.threads;
    println!(
        "threads {threads}, memory budget {} MiB, shard counts {:?}, markup {:?}",
        args.memory_mb, args.shards, args.markup
    );
    if args.scale.is_empty() {
        compare(&args)
    } else {
        scale(&args)
    }
}

/// Phases a–d on one dump, (b) and (c) per shard count, and the ratios.
fn compare(args: &Args) -> Result<()> {
    let (bz2, xml) = dumps(&args.dir, args.pages, args.markup)?;
    let xml_mb = fs::metadata(&xml)?.len() as f64 / 1e6;
    let a = child(args, Phase::Raw, &xml, 1)?;
    let mut rows = vec![("(a) raw tantivy, same docs in memory".to_string(), a)];
    let mut builds = Vec::new();
    for &shards in &args.shards {
        let b = child(args, Phase::Build, &xml, shards)?;
        let c = match args.xml_only {
            true => None,
            false => Some(child(args, Phase::Build, &bz2, shards)?),
        };
        builds.push((shards, b, c));
    }
    let (d, d1) = match args.xml_only {
        true => (None, None),
        false => (
            Some(child(args, Phase::Decompress, &bz2, 1)?),
            Some(child(args, Phase::Decompress1, &bz2, 1)?),
        ),
    };
    for (shards, b, c) in &builds {
        rows.push((format!("(b) indexer build, .xml, {shards} sh"), b.clone()));
        if let Some(c) = c {
            rows.push((
                format!("(c) indexer build, .xml.bz2, {shards} sh"),
                c.clone(),
            ));
        }
    }
    if let (Some(d), Some(d1)) = (&d, &d1) {
        rows.push(("(d) bzip2 decompression, T threads".into(), d.clone()));
        rows.push(("(d1) bzip2 decompression, 1 thread".into(), d1.clone()));
    }
    print_rows(&rows, xml_mb);
    let a = &rows[0].1;
    println!(
        "(a) peak RSS includes {:.0} MiB of pre-cleaned documents held in memory; cleaning \
         removed {:.1}% of the articles' wikitext bytes (markup)",
        a.preload_mb,
        a.markup_share * 100.0
    );
    print_ratios(a, &builds, d.as_ref(), d1.as_ref());
    Ok(())
}

fn print_rows(rows: &[(String, Measure)], xml_mb: f64) {
    println!(
        "\n{:<38} {:>8} {:>8} {:>10} {:>9} {:>7} {:>8} {:>8}",
        "phase", "docs", "docs/s", "MB/s(xml)", "MB/s(in)", "CPU s", "RSS MiB", "anon MiB"
    );
    for (name, m) in rows {
        println!(
            "{name:<38} {:>8} {:>8.0} {:>10.1} {:>9.1} {:>7.1} {:>8.0} {:>8.0}",
            m.docs,
            m.docs as f64 / m.seconds,
            xml_mb / m.seconds,
            m.input_bytes as f64 / 1e6 / m.seconds,
            m.cpu_seconds,
            m.peak_rss_mb,
            m.peak_anon_rss_mb
        );
    }
}

type BuildRow = (u32, Measure, Option<Measure>);

/// Per shard count: b/a, b/b(first shard count), and the CPU ratio of the .bz2 build.
fn print_ratios(a: &Measure, builds: &[BuildRow], d: Option<&Measure>, d1: Option<&Measure>) {
    let rate = |m: &Measure| m.docs as f64 / m.seconds;
    let (first_shards, first, _) = &builds[0];
    println!(
        "\n{:>6} {:>12} {:>14} {:>24} {:>24}",
        "shards",
        "b/a docs/s",
        format!("b/b({first_shards} sh)"),
        "c_cpu/(a_cpu+d_cpu)",
        "c_cpu/(a_cpu+d1_cpu)"
    );
    for (shards, b, c) in builds {
        let cpu_ratio = |d: Option<&Measure>| match (c, d) {
            (Some(c), Some(d)) => format!("{:.3}", c.cpu_seconds / (a.cpu_seconds + d.cpu_seconds)),
            _ => "-".into(),
        };
        println!(
            "{shards:>6} {:>12.3} {:>14.3} {:>24} {:>24}",
            rate(b) / rate(a),
            rate(b) / rate(first),
            cpu_ratio(d),
            cpu_ratio(d1)
        );
    }
    println!(
        "goals: b/a >= 0.8; b/b(1 sh) >= 0.9; c_cpu/(a_cpu+d_cpu) <= 1.15 (a_cpu {:.1} s, \
         d_cpu {})",
        a.cpu_seconds,
        d.map_or("-".into(), |d| format!("{:.1} s", d.cpu_seconds))
    );
    for (shards, b, c) in builds {
        println!(
            "peak RSS of the {shards}-shard builds (b, c): {:.0} / {} MiB, anonymous {:.0} / {} \
             MiB (RSS includes the pages of the memory-mapped input read so far)",
            b.peak_rss_mb,
            c.as_ref()
                .map_or("-".into(), |c| format!("{:.0}", c.peak_rss_mb)),
            b.peak_anon_rss_mb,
            c.as_ref()
                .map_or("-".into(), |c| format!("{:.0}", c.peak_anon_rss_mb)),
        );
    }
}

/// Build (c) at several sizes: time should grow linearly.
fn scale(args: &Args) -> Result<()> {
    println!(
        "\n{:>9} {:>9} {:>9} {:>10} {:>9} {:>8} {:>8} {:>8}",
        "pages", "docs", "seconds", "docs/s", "µs/doc", "CPU s", "RSS MiB", "anon MiB"
    );
    for &pages in &args.scale {
        let bz2 = compressed_dump(&args.dir, pages, args.markup)?;
        let m = child(args, Phase::Build, &bz2, args.shards[0])?;
        println!(
            "{pages:>9} {:>9} {:>9.1} {:>10.0} {:>9.1} {:>8.1} {:>8.0} {:>8.0}",
            m.docs,
            m.seconds,
            m.docs as f64 / m.seconds,
            m.seconds * 1e6 / m.docs.max(1) as f64,
            m.cpu_seconds,
            m.peak_rss_mb,
            m.peak_anon_rss_mb
        );
    }
    Ok(())
}

/// Re-executes this example for one phase and parses its measurement.
fn child(args: &Args, phase: Phase, input: &Path, shards: u32) -> Result<Measure> {
    let exe = std::env::current_exe()?;
    let phase_name = format!("{phase:?}").to_lowercase();
    eprintln!(
        "running phase {phase_name} ({shards} shards) on {}",
        input.display()
    );
    let output = Command::new(exe)
        .args(["--phase", &phase_name, "--input"])
        .arg(input)
        .args(["--threads", &args.threads.to_string()])
        .args(["--memory-mb", &args.memory_mb.to_string()])
        .args(["--shards", &shards.to_string()])
        .arg("--dir")
        .arg(&args.dir)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("phase {phase_name} failed: {}", output.status);
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn run_phase(phase: Phase, input: &Path, args: &Args) -> Result<Measure> {
    let input_bytes = fs::metadata(input)?.len();
    let mut m = match phase {
        Phase::Raw => raw_tantivy(input, args)?,
        Phase::Build => {
            let out = args.dir.join("build-out");
            let summary = build(&BuildOptions {
                input: input.to_path_buf(),
                out: out.clone(),
                shards: args.shards[0],
                split: corpus::Split::whole(),
                // A multistream dump comes with its index (the synthetic one too): use it,
                // as an operator would, instead of scanning for stream boundaries.
                index: Some(corpus::synth::index_path(input)).filter(|i| i.exists()),
                threads: args.threads,
                memory_mb: args.memory_mb,
                progress: ProgressMode::Quiet,
                max_unexpected_skips_percent: indexer::build::DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT,
                links: None,
                analysis: indexer::build::AnalysisChoice::Auto,
                spool: None,
                aliases: true,
            })?;
            fs::remove_dir_all(&out)?;
            Measure {
                docs: summary.docs,
                seconds: summary.seconds,
                cpu_seconds: summary.cpu_seconds,
                peak_anon_rss_mb: summary.peak_anon_rss_mb,
                ..Measure::default()
            }
        }
        Phase::Decompress => {
            let threads = Plan::new(1, args.threads, args.memory_mb)?.threads;
            decompress_streams(input, threads)?
        }
        Phase::Decompress1 => decompress_streams(input, 1)?,
    };
    m.input_bytes = input_bytes;
    m.peak_rss_mb = ResourceUsage::now().peak_rss_mb;
    Ok(m)
}

/// (a): clean every article into memory first, then time a plain tantivy writer with the
/// builds' thread count and writer arena (60% of the budget), commit and merge.
fn raw_tantivy(input: &Path, args: &Args) -> Result<Measure> {
    let reader = corpus::open(input, &OpenOptions::default())?;
    let site = reader.siteinfo().clone();
    let mut docs = Vec::new();
    let mut wikitext_bytes = 0usize;
    for event in reader {
        if let PageEvent::Page(page) = event? {
            if classify(&page) == PageKind::Article {
                wikitext_bytes += page.wikitext.len();
                docs.push(corpus::to_document(&page, &site));
            }
        }
    }
    let text_bytes: usize = docs.iter().map(|d| d.body.len()).sum();
    let markup_share = 1.0 - text_bytes as f64 / wikitext_bytes.max(1) as f64;
    let preload_mb = docs
        .iter()
        .map(|d| d.body.len() + d.title.len() + d.url.len())
        .sum::<usize>() as f64
        / (1 << 20) as f64;
    let plan = Plan::new(1, args.threads, args.memory_mb)?;
    let writer_threads = plan.threads.min(8);
    let arena = (args.memory_mb as usize * (1 << 20)) / 10 * 6;
    let dir = args.dir.join("raw-out");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;

    let before = ResourceUsage::now();
    let start = Instant::now();
    let analysis = AnalysisChoice::Auto.resolve(site.lang.as_deref());
    let schema = WikiSchema::with_analysis(analysis);
    let index = Index::create_in_dir(&dir, schema.schema.clone())?;
    shard_proto::analysis::register(&index);
    let writer: IndexWriter = index.writer_with_num_threads(writer_threads, arena)?;
    writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
    let count = docs.len() as u64;
    for d in docs {
        let (doc, _) = to_tantivy(&schema, d, ArticleSignals::default());
        writer.add_document(doc)?;
    }
    shard_proto::commit_as_one_segment(&index, writer)?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = ResourceUsage::now().cpu_seconds - before.cpu_seconds;
    fs::remove_dir_all(&dir)?;
    Ok(Measure {
        docs: count,
        seconds,
        cpu_seconds,
        preload_mb,
        markup_share,
        ..Measure::default()
    })
}

/// (d): decompresses every stream of a multistream dump (boundaries from its index) into
/// a sink, `threads` streams at a time, each read with `pread` (no mapping, no copy of
/// the whole file).
fn decompress_streams(input: &Path, threads: usize) -> Result<Measure> {
    use rayon::prelude::*;
    use std::io::Read;
    use std::os::unix::fs::FileExt;

    let len = fs::metadata(input)?.len();
    let mut starts = vec![0u64];
    let index = corpus::synth::index_path(input);
    let mut text = String::new();
    bzip2::read::MultiBzDecoder::new(BufReader::new(File::open(&index)?))
        .read_to_string(&mut text)?;
    for line in text.lines() {
        let offset = line.split(':').next().unwrap_or_default();
        starts.push(
            offset
                .parse()
                .with_context(|| format!("index line {line:?}"))?,
        );
    }
    starts.push(len);
    starts.sort_unstable();
    starts.dedup();
    let ranges: Vec<(u64, u64)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    let file = File::open(input)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let start = Instant::now();
    pool.install(|| {
        ranges.par_iter().try_for_each(|&(a, b)| -> io::Result<()> {
            let mut compressed = vec![0u8; (b - a) as usize];
            file.read_exact_at(&mut compressed, a)?;
            let mut decoder = bzip2::read::MultiBzDecoder::new(&compressed[..]);
            io::copy(&mut decoder, &mut io::sink())?;
            Ok(())
        })
    })?;
    Ok(Measure {
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: ResourceUsage::now().cpu_seconds,
        ..Measure::default()
    })
}

/// The generated `.xml.bz2` of `pages` pages and its uncompressed `.xml`, made once and
/// kept in `dir` (written under a temporary name, so an interrupted run leaves no
/// half-written dump behind to be reused).
fn dumps(dir: &Path, pages: u64, markup: Markup) -> Result<(PathBuf, PathBuf)> {
    let bz2 = compressed_dump(dir, pages, markup)?;
    let xml = bz2.with_extension("");
    if !xml.exists() {
        eprintln!("decompressing to {}", xml.display());
        let tmp = xml.with_extension("xml.tmp");
        let mut src = bzip2::read::MultiBzDecoder::new(BufReader::new(File::open(&bz2)?));
        io::copy(&mut src, &mut BufWriter::new(File::create(&tmp)?))?;
        fs::rename(&tmp, &xml)?;
    }
    Ok((bz2, xml))
}

/// The generated `.xml.bz2` of `pages` pages (and its index), made once.
fn compressed_dump(dir: &Path, pages: u64, markup: Markup) -> Result<PathBuf> {
    let name = match markup {
        Markup::Normal => format!("synth-{pages}"),
        Markup::Dense => format!("synth-{pages}-dense"),
    };
    let bz2 = dir.join(format!("{name}.xml.bz2"));
    if !bz2.exists() {
        eprintln!("generating {}", bz2.display());
        let tmp = dir.join(format!("{name}.tmp.xml.bz2"));
        let opts = SynthOptions {
            pages,
            markup,
            ..SynthOptions::default()
        };
        let summary = corpus::write_synthetic_dump(&tmp, &opts)?;
        fs::rename(&summary.index, corpus::synth::index_path(&bz2))?;
        fs::rename(&tmp, &bz2)?;
    }
    Ok(bz2)
}
