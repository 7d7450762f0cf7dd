//! `indexer build`: turns slice I of K of an input into M published tantivy shards.
//!
//! Steps: take the slice's lock in the output directory and clear what a dead build of
//! the same slice left; open the input on the slice; stream it through the
//! [`pipeline`], indexing the first shard of each lane with a
//! [`shard_writer::ShardWriter`] in its temporary directory and spooling every other
//! shard's clean documents ([`spool`]); then each lane builds its spooled shards one
//! after the other ([`turns`]), each committed and merged to one segment (a lone lane
//! meanwhile indexes its next shard); fsync and write each manifest; check that nothing was lost and that at most
//! `--max-unexpected-skips-percent` of the articles were skipped for an unexpected reason
//! (the cleaner panicked); then [`publish`] all M shards at once (one atomic switch of
//! the slice's record).
//!
//! Failure policy: any error (a truncated or corrupt dump included: the message names the
//! file and offset; a full disk or file size limit is said as such) fails the whole build. Nothing of it is published, the temporary
//! directories are removed, and shards of an earlier build stay as they were. We do not
//! publish the pages before a fatal read error, because a slice's shards must cover the
//! whole slice or the cluster would silently serve a partial index.
//!
//! Shards in lanes: the writer threads are shared by gcd(M, threads) lanes, each building
//! its shards in turn with the same arena per thread, so a node builds M shards about as
//! fast as one (M writers at once, each with 1/M of the budget, lost a third of the
//! throughput at 6 shards; one writer per shard with every thread made a segment per
//! thread to merge: [`turns`] says why).
//!
//! Memory: `--memory-mb` is split between the tantivy writer's arenas (60%, at least
//! 15 MB per writer thread), documents waiting for the writer (15%) and articles waiting
//! for the cleaners (15%); the rest is headroom for segment flushes and the merge of the
//! previous shard. The shard count does not change the split.

pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod shard_writer;
pub mod spool;
pub mod summary;
pub mod turns;
pub mod upload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use corpus::{OpenOptions, Split};
use shard_proto::manifest::{InputInfo, ShardManifest};
use shard_proto::{Analysis, ShardId, WikiSchema};

use crate::error::{Error, Result};
use crate::links;
use crate::slice_args::SliceArgs;
use pipeline::{PipelineConfig, PipelineOutput, ShardTarget};
pub use progress::ProgressMode;
use progress::{Counters, Reporter};
pub use shard_writer::WriterConfig;
use shard_writer::{InFlight, ManifestInput, ShardWriter};
use spool::SpoolWriter;
pub use summary::{AnonRssPeak, BuildSummary, ResourceUsage};

/// Tantivy's minimum arena per indexing thread.
pub const MIN_BYTES_PER_WRITER_THREAD: usize = 15_000_000;
/// Tantivy's maximum useful indexing threads per writer.
const MAX_WRITER_THREADS: usize = 8;
const MIB: usize = 1 << 20;

/// Flags of `indexer build`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// Input dump: MediaWiki XML (plain, .bz2, multistream .bz2, .gz) or JSON lines.
    #[arg(long)]
    pub input: PathBuf,
    /// The shard store: a directory (shards are published as DIR/<shard id>.g<n>/), or
    /// `s3://bucket/prefix` (built in --staging, then uploaded; endpoint, region and
    /// credentials from the AWS_* environment variables).
    #[arg(long)]
    pub out: PathBuf,
    /// Build into index generation ID of the store (`OUT/generations/ID/`), beside the
    /// live one: nothing serves it until `indexer generations switch ID`.
    #[arg(long, value_name = "ID")]
    pub generation: Option<String>,
    /// With an s3:// --out: the local directory the shards are built in before the
    /// upload (default: a directory of the system's temporary directory, removed after
    /// a successful upload).
    #[arg(long)]
    pub staging: Option<PathBuf>,
    /// Shards this node builds from its slice.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    #[command(flatten)]
    pub slice: SliceArgs,
    /// Worker threads for decompression, cleaning and indexing; 0 = one per core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Memory budget in MiB (peak RSS stays near it plus a fixed overhead).
    #[arg(long, default_value_t = 1024)]
    pub memory_mb: u64,
    /// Print one JSON summary object on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// Fail, publishing nothing, when more than this percentage of the slice's articles
    /// were skipped for an unexpected reason (the cleaner panicked on them).
    #[arg(long, default_value_t = DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT)]
    pub max_unexpected_skips_percent: f64,
    /// Directory holding the K link tables written by `indexer links` (same --nodes):
    /// attaches redirect titles, anchor texts and incoming-link counts to the articles.
    /// Without it the articles get none of these signals.
    #[arg(long)]
    pub links: Option<PathBuf>,
    /// With --links: attach no redirect titles (for evaluating the redirect class on
    /// redirects held out of the index).
    #[arg(long)]
    pub no_aliases: bool,
    /// Directory where `indexer links --spool` kept this slice's pages on this machine:
    /// read them there instead of decompressing and parsing the dump again (the dump is
    /// read when the spool is missing or was made from another input or slice).
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// How the scored text is cut into terms: `auto` (from the dump's language: English
    /// and Greek dumps are stemmed, others not), `plain`, `english` or `greek`.
    #[arg(long, default_value = "auto")]
    pub analysis: AnalysisChoice,
}

/// `--analysis`: a fixed [`Analysis`], or the one of the dump's language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnalysisChoice {
    #[default]
    Auto,
    Fixed(Analysis),
}

impl AnalysisChoice {
    /// The analysis for a dump in `lang`.
    pub fn resolve(self, lang: Option<&str>) -> Analysis {
        match self {
            AnalysisChoice::Auto => Analysis::for_language(lang),
            AnalysisChoice::Fixed(analysis) => analysis,
        }
    }
}

impl std::str::FromStr for AnalysisChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "auto" => Ok(AnalysisChoice::Auto),
            fixed => fixed.parse().map(AnalysisChoice::Fixed),
        }
    }
}

/// Default of `--max-unexpected-skips-percent`: one article in a thousand.
pub const DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT: f64 = 0.1;

/// Everything a build needs (the library entry point's input).
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    pub shards: u32,
    pub split: Split,
    pub index: Option<PathBuf>,
    /// 0 = one per core.
    pub threads: usize,
    pub memory_mb: u64,
    pub progress: ProgressMode,
    /// See `--max-unexpected-skips-percent`.
    pub max_unexpected_skips_percent: f64,
    /// Link tables of the link pass (see [`crate::links`]); `None`: no link signals.
    pub links: Option<PathBuf>,
    /// Attach redirect titles (with `links`).
    pub aliases: bool,
    /// How the scored text is cut into terms.
    pub analysis: AnalysisChoice,
    /// Where the link pass kept this slice's pages (`indexer links --spool`): read from
    /// there instead of the dump when the spool was made from this input and slice.
    pub spool: Option<PathBuf>,
}

impl BuildOptions {
    /// A build of the whole of `input` into `shards` shards published in `out`, with the
    /// command's defaults: one thread per core, 1 GiB, no link signals.
    pub fn new(input: PathBuf, out: PathBuf, shards: u32) -> BuildOptions {
        BuildOptions {
            input,
            out,
            shards,
            split: Split::whole(),
            index: None,
            threads: 0,
            memory_mb: 1024,
            progress: ProgressMode::Auto,
            max_unexpected_skips_percent: DEFAULT_MAX_UNEXPECTED_SKIPS_PERCENT,
            links: None,
            aliases: true,
            analysis: AnalysisChoice::Auto,
            spool: None,
        }
    }
}

impl BuildArgs {
    /// The library options these flags describe.
    pub fn options(&self) -> Result<BuildOptions> {
        Ok(BuildOptions {
            input: self.input.clone(),
            out: self.out.clone(),
            shards: self.shards,
            split: self.slice.split()?,
            index: self.slice.index.clone(),
            threads: self.threads,
            memory_mb: self.memory_mb,
            progress: ProgressMode::Auto,
            max_unexpected_skips_percent: self.max_unexpected_skips_percent,
            links: self.links.clone(),
            aliases: !self.no_aliases,
            analysis: self.analysis,
            spool: self.spool.clone(),
        })
    }
}

/// `indexer build` from the command line: builds (and uploads, for an S3 store), then
/// prints the summary.
pub fn run(args: &BuildArgs) -> anyhow::Result<()> {
    let mut args = args.clone();
    if let Some(id) = &args.generation {
        shard_proto::generation::check_id(id)?;
        args.out = shard_proto::generation::out_path(&args.out, id);
    }
    let args = &args;
    let summary = match args.out.to_str().filter(|out| out.starts_with("s3://")) {
        Some(url) => build_and_upload(args, url)?,
        None => build(&args.options()?)?,
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", summary.human());
    }
    Ok(())
}

/// `indexer build --out s3://...`: builds into the staging directory as into a directory
/// store, then uploads the slice ([`upload`]).
fn build_and_upload(args: &BuildArgs, url: &str) -> anyhow::Result<BuildSummary> {
    let location: shard_proto::remote::S3Location = url.parse()?;
    // Opened before the build: a malformed URL or configuration fails at once.
    let remote = shard_proto::remote::RemoteStore::open(&location, &Default::default())?;
    let default_staging = args.staging.is_none();
    let staging = args.staging.clone().unwrap_or_else(|| {
        // One per store and slice, not per process: the slice lock guards it, and the
        // next build clears what a failed one left there.
        let store: String = url[5..]
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::env::temp_dir().join(format!(
            "wikisearch-build-{store}-n{}of{}",
            args.slice.node, args.slice.nodes
        ))
    });
    let mut opts = args.options()?;
    opts.out = staging.clone();
    let summary = build(&opts)?;
    let start = Instant::now();
    let published = upload::upload_slice(&staging, &remote, args.slice.node, args.slice.nodes)?;
    tracing::info!(
        "uploaded {} shards to {location} in {:.1} s",
        published.len(),
        start.elapsed().as_secs_f64()
    );
    if default_staging {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    Ok(summary)
}

/// How the memory budget and the threads are shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub threads: usize,
    pub writer: WriterConfig,
    pub in_flight_bytes: usize,
    pub batch_bytes: usize,
    pub channel_batches: usize,
}

impl Plan {
    /// Shares `memory_mb` and `threads` (0 = cores) between the writers at work (their
    /// threads and arenas, whatever lanes the shards are built in: `shards` changes
    /// nothing but must be at least 1) and the pipeline; errors if the budget cannot give
    /// a writer thread tantivy's minimum.
    pub fn new(shards: u32, threads: usize, memory_mb: u64) -> Result<Plan> {
        if shards == 0 {
            return Err(Error::Config("--shards must be at least 1".into()));
        }
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let total = usize::try_from(memory_mb)
            .unwrap_or(usize::MAX / MIB)
            .saturating_mul(MIB);
        let writer_bytes = total / 10 * 6;
        let mut writer_threads = threads.clamp(1, MAX_WRITER_THREADS);
        while writer_threads > 1 && writer_bytes / writer_threads < MIN_BYTES_PER_WRITER_THREAD {
            writer_threads -= 1;
        }
        let bytes_per_thread = (writer_bytes / writer_threads).min(u32::MAX as usize / 2);
        if bytes_per_thread < MIN_BYTES_PER_WRITER_THREAD {
            let need = (MIN_BYTES_PER_WRITER_THREAD * 10 / 6).div_ceil(MIB);
            return Err(Error::Config(format!(
                "--memory-mb {memory_mb} is too small: 60% of the budget goes to the shard \
                 writer and it needs at least 15 MB; use --memory-mb {need} or more"
            )));
        }
        let queued = total / 100 * 15;
        let channel_batches = threads.max(2);
        let batch_bytes = (queued / (channel_batches + threads)).clamp(64 << 10, 4 << 20);
        Ok(Plan {
            threads,
            writer: WriterConfig {
                threads: writer_threads,
                bytes_per_thread,
            },
            in_flight_bytes: queued.max(4 * MIB),
            batch_bytes,
            channel_batches,
        })
    }
}

/// The slice's pages: from the link pass's page spool when `--spool` names one made from
/// this input and slice (the dump is then decompressed and parsed once for both passes),
/// else from the dump, saying why.
fn open_pages(opts: &BuildOptions, open: &OpenOptions) -> Result<corpus::PageReader> {
    if let Some(dir) = &opts.spool {
        let path = links::page_spool_path(dir, opts.split);
        let source = corpus::SpoolSource::new(&opts.input, opts.split)?;
        match corpus::open_spool(&path, &source) {
            Ok(pages) => {
                tracing::info!("reading the slice's pages from {}", path.display());
                return Ok(pages);
            }
            Err(error) => tracing::warn!("{error}; reading {} instead", opts.input.display()),
        }
    }
    Ok(corpus::open(&opts.input, open)?)
}

/// Builds and publishes this node's shards (see the module docs).
pub fn build(opts: &BuildOptions) -> Result<BuildSummary> {
    let start = Instant::now();
    let anon_peak = AnonRssPeak::start();
    let plan = Plan::new(opts.shards, opts.threads, opts.memory_mb)?;
    let Split { node, nodes } = opts.split;
    let ids = (0..opts.shards)
        .map(|s| ShardId::new(node, nodes, s, opts.shards))
        .collect::<shard_proto::Result<Vec<_>>>()?;
    let _lock = publish::SliceLock::acquire(&opts.out, node, nodes)?;
    let signals = match &opts.links {
        Some(dir) => links::resolve(dir, opts.split, opts.aliases)?,
        None => links::Signals::default(),
    };
    for stale in publish::remove_stale_temp_dirs(&opts.out, node, nodes)? {
        tracing::info!("removed {} left by an interrupted build", stale.display());
    }
    let open = OpenOptions {
        split: opts.split,
        index: opts.index.clone(),
        threads: plan.threads,
    };
    let reader = open_pages(opts, &open)?;
    let analysis = opts.analysis.resolve(reader.siteinfo().lang.as_deref());
    let input = InputInfo {
        path: opts.input.display().to_string(),
        bytes: std::fs::metadata(&opts.input)
            .map_err(|e| Error::io(&opts.input, e))?
            .len(),
        format: reader.format().to_string(),
    };
    tracing::info!(
        "building {} shards of node {node} of {nodes} from {} ({}, {analysis} analysis) \
         with {} threads: {:?}",
        ids.len(),
        input.path,
        input.format,
        plan.threads,
        plan
    );
    let mut temps = Vec::with_capacity(ids.len());
    for id in &ids {
        temps.push((*id, publish::create_temp_dir(&opts.out, *id)?));
    }
    let built = build_shards(
        reader,
        &temps,
        &input,
        &plan,
        opts.progress,
        &signals,
        analysis,
    )
    .and_then(|built| {
        check_unexpected_skips(&built.0, opts.max_unexpected_skips_percent)?;
        Ok(built)
    });
    let (output, manifests) = match built {
        Ok(built) => built,
        Err(err) => return Err(discard_temps(err, &opts.out, &temps)),
    };
    if let Err(err) = publish::publish(&opts.out, node, nodes, &temps) {
        return Err(discard_temps(err, &opts.out, &temps));
    }
    let mut summary = summarize(opts, &plan, &input, output, &manifests);
    summary.links = opts.links.as_ref().map(|_| signals.report.clone());
    summary.finish(start.elapsed().as_secs_f64(), ResourceUsage::now());
    summary.peak_anon_rss_mb = anon_peak.finish();
    tracing::info!("{}", summary.human());
    Ok(summary)
}

/// The build failed: says whether a full disk was the cause (probed while the temporary
/// shards still take their space), then removes them, so nothing is left half-written.
fn discard_temps(err: Error, out: &std::path::Path, temps: &[(ShardId, PathBuf)]) -> Error {
    let err = err.explain_disk_full(out);
    for (_, temp) in temps {
        let _ = std::fs::remove_dir_all(temp);
    }
    err
}

/// Streams the input into the first shard of every lane and the other shards' spools,
/// builds the spooled shards in their lanes, and seals every shard.
fn build_shards(
    reader: corpus::PageReader,
    temps: &[(ShardId, PathBuf)],
    input: &InputInfo,
    plan: &Plan,
    progress: ProgressMode,
    signals: &links::Signals,
    analysis: Analysis,
) -> Result<(PipelineOutput, Vec<ShardManifest>)> {
    let schema = WikiSchema::with_analysis(analysis);
    if temps.is_empty() {
        return Err(Error::Config("--shards must be at least 1".into()));
    }
    let lanes = turns::Lanes::new(temps.len(), plan.writer);
    let (first, later) = temps.split_at(lanes.lanes);
    let live = first
        .iter()
        .map(|(id, dir)| ShardWriter::create(*id, dir, &schema, lanes.writer))
        .collect::<Result<Vec<_>>>()?;
    let spools = later
        .iter()
        .map(|(_, dir)| SpoolWriter::create(dir).map(Mutex::new))
        .collect::<Result<Vec<_>>>()?;
    let targets: Vec<ShardTarget<'_>> = (live.iter().map(ShardTarget::Live))
        .chain(spools.iter().map(ShardTarget::Spool))
        .collect();
    let counters = Arc::new(Counters::default());
    let reporter = Reporter::start(progress, Arc::clone(&counters), reader.progress());
    let in_flight = InFlight::new(plan.in_flight_bytes);
    let cfg = PipelineConfig {
        clean_threads: plan.threads,
        batch_bytes: plan.batch_bytes,
        channel_batches: plan.channel_batches,
        in_flight: Arc::clone(&in_flight),
        signals,
    };
    let output = pipeline::run(reader, &targets, &schema, &cfg, &counters);
    reporter.finish();
    drop(targets);
    let output = output?;
    let spooled = spools
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()).finish())
        .collect::<Result<Vec<_>>>()?;
    tracing::info!(
        "read done ({} pages); {} shards indexed, {} shards spooled ({:.1} MB); building \
         them in {} lanes of {} writer threads",
        output.stats.pages,
        live.len(),
        spooled.len(),
        spooled.iter().map(|s| s.bytes).sum::<u64>() as f64 / 1e6,
        lanes.lanes,
        lanes.writer.threads
    );
    let docs = turns::build_in_lanes(live, later, spooled, &schema, lanes, &in_flight)?;
    check_nothing_lost(&output, &docs)?;
    let manifests = std::thread::scope(|scope| {
        let handles: Vec<_> = temps
            .iter()
            .zip(&docs)
            .zip(&output.shard_skipped)
            .map(|(((id, dir), docs), skipped)| {
                let m = ManifestInput {
                    id: *id,
                    schema: &schema,
                    input,
                    docs: *docs,
                    skipped: skipped.clone(),
                };
                scope.spawn(move || shard_writer::seal(dir, m))
            })
            .collect();
        join_all(handles)
    })?;
    Ok((output, manifests))
}

fn join_all<T>(handles: Vec<std::thread::ScopedJoinHandle<'_, Result<T>>>) -> Result<Vec<T>> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
        .collect()
}

/// Articles the cleaner panicked on (a bug, not bad input).
fn unexpected_skips(output: &PipelineOutput) -> u64 {
    output
        .shard_skipped
        .iter()
        .filter_map(|s| s.get(pipeline::CLEANER_PANIC))
        .sum()
}

/// Refuses a build that skipped more than `max_percent` of its articles for an unexpected
/// reason: its shards would silently lack them.
fn check_unexpected_skips(output: &PipelineOutput, max_percent: f64) -> Result<()> {
    let skipped = unexpected_skips(output);
    let articles = output.stats.articles;
    let percent = match articles {
        0 => 0.0,
        n => skipped as f64 * 100.0 / n as f64,
    };
    tracing::info!(
        "unexpected skips ({}): {skipped} of {articles} articles ({percent:.3}%), \
         threshold {max_percent}%",
        pipeline::CLEANER_PANIC
    );
    match percent > max_percent {
        true => Err(Error::TooManySkips {
            skipped,
            articles,
            max_percent,
        }),
        false => Ok(()),
    }
}

/// Every article read is either in its shard or counted as skipped there, and each shard
/// holds exactly the documents handed to it.
fn check_nothing_lost(output: &PipelineOutput, docs: &[u64]) -> Result<()> {
    if docs != output.shard_docs.as_slice() {
        return Err(Error::Invariant(format!(
            "shards hold {docs:?} documents but {:?} were sent to them",
            output.shard_docs
        )));
    }
    let indexed: u64 = docs.iter().sum();
    let cleaner_skips = unexpected_skips(output);
    if indexed + cleaner_skips != output.stats.articles {
        return Err(Error::Invariant(format!(
            "{} articles read but {indexed} indexed and {cleaner_skips} skipped while cleaning",
            output.stats.articles
        )));
    }
    Ok(())
}

fn summarize(
    opts: &BuildOptions,
    plan: &Plan,
    input: &InputInfo,
    output: PipelineOutput,
    manifests: &[ShardManifest],
) -> BuildSummary {
    let mut skipped = output.stats.skipped.clone();
    for shard in &output.shard_skipped {
        if let Some(n) = shard.get(pipeline::CLEANER_PANIC) {
            *skipped
                .entry(pipeline::CLEANER_PANIC.to_string())
                .or_default() += n;
        }
    }
    BuildSummary {
        docs: manifests.iter().map(|m| m.docs).sum(),
        skipped,
        index_bytes: manifests.iter().map(|m| m.index_bytes()).sum(),
        shards: manifests.iter().map(|m| m.shard.to_string()).collect(),
        shard_docs: manifests.iter().map(|m| m.docs).collect(),
        pages: output.stats.pages,
        articles: output.stats.articles,
        redirects: output.stats.redirects,
        other_namespaces: output.stats.other_namespaces,
        input_bytes: output.bytes_read,
        input_format: input.format.clone(),
        node: opts.split.node,
        nodes: opts.split.nodes,
        threads: plan.threads,
        memory_mb: opts.memory_mb,
        ..BuildSummary::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_gives_each_writer_thread_at_least_tantivys_minimum() {
        let plan = Plan::new(4, 2, 256).unwrap();
        assert_eq!(plan.writer.threads, 2);
        assert!(plan.writer.bytes_per_thread >= MIN_BYTES_PER_WRITER_THREAD);
        let plan = Plan::new(1, 4, 1024).unwrap();
        assert_eq!(plan.writer.threads, 4);
        // 60% of 64 MiB: four threads would get < 15 MB each.
        let plan = Plan::new(1, 4, 64).unwrap();
        assert_eq!(plan.writer.threads, 2);
        let err = Plan::new(1, 2, 20).unwrap_err().to_string();
        assert!(err.contains("--memory-mb 24"), "{err}");
        assert!(Plan::new(0, 2, 64).is_err());
    }

    #[test]
    fn the_shard_count_does_not_change_the_plan() {
        // Shards are built in lanes that share the writer threads and arenas between them.
        for shards in [2, 6, 64] {
            assert_eq!(
                Plan::new(shards, 2, 64).unwrap(),
                Plan::new(1, 2, 64).unwrap()
            );
        }
    }

    fn output_with(articles: u64, panics: u64) -> PipelineOutput {
        let mut output = PipelineOutput::default();
        output.stats.articles = articles;
        let mut skipped = std::collections::BTreeMap::new();
        skipped.insert(pipeline::CLEANER_PANIC.to_string(), panics);
        output.shard_skipped = vec![skipped, Default::default()];
        output
    }

    #[test]
    fn unexpected_skips_beyond_the_threshold_fail_the_build() {
        check_unexpected_skips(&output_with(10_000, 10), 0.1).unwrap();
        let err = check_unexpected_skips(&output_with(10_000, 11), 0.1).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("11 of 10000"), "{message}");
        assert!(message.contains("0.1%"), "{message}");
        check_unexpected_skips(&output_with(0, 0), 0.0).unwrap();
        assert!(check_unexpected_skips(&output_with(5, 5), 99.0).is_err());
    }

    #[test]
    fn plan_stays_within_the_budget() {
        for (shards, threads, mb) in [(1, 2, 100), (3, 2, 512), (2, 16, 4096)] {
            let p = Plan::new(shards, threads, mb).unwrap();
            let writers = p.writer.threads * p.writer.bytes_per_thread;
            let pages = (p.channel_batches + p.threads) * p.batch_bytes;
            let used = writers + pages + p.in_flight_bytes;
            assert!(used <= mb as usize * MIB, "{p:?} uses {used}");
        }
    }
}
