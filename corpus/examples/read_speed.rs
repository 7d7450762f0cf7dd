//! Dump-reading throughput, in MB/s of XML, on a generated multistream dump: decompress
//! only, parse only, parse+clean, each on 1 thread and on all cores (parallel runs use
//! the crate's own input splits: K slices read concurrently), plus end to end from the
//! `.xml.bz2`. Prints figures; asserts nothing about speed.
//!
//! cargo run --release -p corpus --example read_speed -- --pages 100000 --dir /tmp/corpus-bench

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use corpus::{
    open, to_document, write_synthetic_dump, OpenOptions, PageEvent, Split, SynthOptions,
};
use rayon::prelude::*;

struct Args {
    pages: u64,
    seed: u64,
    dir: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        pages: 100_000,
        seed: 1,
        dir: std::env::temp_dir().join("corpus-bench"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--pages" => args.pages = value.parse()?,
            "--seed" => args.seed = value.parse()?,
            "--dir" => args.dir = value.into(),
            _ => bail!("unknown flag {flag} (--pages N --seed S --dir DIR)"),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.dir)?;
    let dump = args
        .dir
        .join(format!("synth-{}-{}.xml.bz2", args.pages, args.seed));
    let index = corpus::synth::index_path(&dump);
    let xml = args
        .dir
        .join(format!("synth-{}-{}.xml", args.pages, args.seed));
    if !dump.exists() || !index.exists() {
        let started = Instant::now();
        let opts = SynthOptions {
            pages: args.pages,
            seed: args.seed,
            ..SynthOptions::default()
        };
        let summary = write_synthetic_dump(&dump, &opts)?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "generated {} pages ({:.0} MB XML, {:.0} MB bz2) in {secs:.1} s: {:.1} MB/s of XML",
            summary.pages,
            mb(summary.xml_bytes),
            mb(summary.compressed_bytes),
            mb(summary.xml_bytes) / secs
        );
    }
    if !xml.exists() {
        let mut decoder =
            bzip2::read::MultiBzDecoder::new(BufReader::new(std::fs::File::open(&dump)?));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&xml)?);
        std::io::copy(&mut decoder, &mut out)?;
        out.flush()?;
    }
    let xml_bytes = std::fs::metadata(&xml)?.len();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "dump {} ({:.0} MB of XML), {cores} cores",
        dump.display(),
        mb(xml_bytes)
    );
    println!("{:<44}{:>10}{:>14}", "stage", "MB/s", "MB/s per core");

    let report = |stage: &str, threads: usize, secs: f64| {
        let rate = mb(xml_bytes) / secs;
        println!("{stage:<44}{rate:>10.1}{:>14.1}", rate / threads as f64);
    };
    report(
        "decompress only, 1 thread",
        1,
        time(|| decompress_sequential(&dump))?,
    );
    report(
        &format!("decompress only, {cores} threads"),
        cores,
        time(|| decompress_parallel(&dump, &index))?,
    );
    for clean in [false, true] {
        let what = if clean { "parse+clean" } else { "parse only" };
        report(
            &format!("{what} (plain XML), 1 thread"),
            1,
            time(|| read_slices(&xml, 1, clean))?,
        );
        report(
            &format!("{what} (plain XML), {cores} slices"),
            cores,
            time(|| read_slices(&xml, cores as u32, clean))?,
        );
    }
    report(
        &format!("end to end .xml.bz2, {cores} decode threads"),
        cores,
        time(|| read_slices(&dump, 1, true))?,
    );
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn time(run: impl FnOnce() -> anyhow::Result<u64>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let bytes = run()?;
    std::hint::black_box(bytes);
    Ok(started.elapsed().as_secs_f64())
}

fn decompress_sequential(dump: &Path) -> anyhow::Result<u64> {
    let mut decoder = bzip2::read::MultiBzDecoder::new(BufReader::new(std::fs::File::open(dump)?));
    Ok(std::io::copy(&mut decoder, &mut std::io::sink())?)
}

/// Decodes every stream on the rayon pool, boundaries from the index.
fn decompress_parallel(dump: &Path, index: &Path) -> anyhow::Result<u64> {
    let data = std::fs::read(dump)?;
    let lines = BufReader::new(bzip2::read::BzDecoder::new(std::fs::File::open(index)?));
    let mut offsets = vec![0usize];
    for line in lines.lines() {
        let line = line?;
        let offset = line.split(':').next().unwrap_or_default().parse()?;
        if offsets.last() != Some(&offset) {
            offsets.push(offset);
        }
    }
    offsets.push(data.len());
    let total = offsets
        .par_windows(2)
        .map(|w| {
            let mut decoder = bzip2::read::MultiBzDecoder::new(&data[w[0]..w[1]]);
            let mut out = Vec::new();
            decoder.read_to_end(&mut out).map(|n| n as u64)
        })
        .collect::<std::io::Result<Vec<u64>>>()?;
    Ok(total.iter().sum())
}

/// Reads all `nodes` slices concurrently (one thread each); returns wikitext bytes seen.
fn read_slices(path: &Path, nodes: u32, clean: bool) -> anyhow::Result<u64> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..nodes)
            .map(|node| scope.spawn(move || read_slice(path, Split::new(node, nodes)?, clean)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .sum()
    })
}

fn read_slice(path: &Path, split: Split, clean: bool) -> anyhow::Result<u64> {
    let reader = open(
        path,
        &OpenOptions {
            split,
            ..OpenOptions::default()
        },
    )?;
    let site = reader.siteinfo().clone();
    let mut bytes = 0u64;
    for event in reader {
        if let PageEvent::Page(page) = event? {
            bytes += page.wikitext.len() as u64;
            if clean {
                bytes += to_document(&page, &site).body.len() as u64;
            }
        }
    }
    Ok(bytes)
}
