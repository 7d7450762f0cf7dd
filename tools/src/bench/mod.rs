//! Measuring the engine: the load generator (`wikisearch bench`), the single-process
//! baselines it is compared with (`wikisearch baseline serve | in-process`), and the
//! comparison that runs them all on the same documents (`wikisearch baseline compare`).
//!
//! - [`queries`]: benchmark query files (JSON lines or plain text);
//! - [`loadgen`]: closed- and open-loop HTTP load as a library (the drill reuses it);
//! - [`report`] and [`timeline`]: what a run measured, overall, per kind and per second;
//! - [`single_index`], [`baseline_server`], [`in_process`]: one tantivy index searched
//!   behind a minimal HTTP endpoint, or directly;
//! - [`eval`]: search quality on known-item queries drawn from a dump (`wikisearch eval`);
//! - [`compare`]: synthetic corpus → shards → cluster + baselines → one table of figures,
//!   after [`agreement`] has checked that both serve the same rankings.

pub mod agreement;
pub mod baseline_server;
pub mod compare;
pub mod eval;
pub mod in_process;
pub mod loadgen;
pub mod queries;
pub mod report;
pub mod sharded_index;
pub mod single_index;
pub mod timeline;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use loadgen::{LoadMode, LoadSpec};
use report::LoadReport;
use single_index::SingleIndex;

/// Flags of `wikisearch bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The service to load (`http://host:port`; `/<endpoint>` is appended). Repeat it
    /// (or separate with commas) to spread the load over several coordinators of one
    /// cluster: each request goes to the next in turn, and to the following one when
    /// that one cannot be reached (counted as `rerouted`, not as an error).
    #[arg(long, required = true, value_delimiter = ',')]
    pub url: Vec<String>,
    /// The route to load: `search`, or `suggest`, which sends every prefix of each query
    /// as it is typed (one request a keystroke), `size` suggestions each.
    #[arg(long, default_value = "search", value_parser = ["search", "suggest"])]
    pub endpoint: String,
    /// Query file: JSON lines `{"query", "kind"}` or one plain query a line.
    #[arg(long)]
    pub queries: PathBuf,
    /// Closed loop: this many requests in flight at all times (default 1).
    #[arg(long, conflicts_with = "rate")]
    pub concurrency: Option<usize>,
    /// Open loop: this many requests per second, latency measured from the intended send
    /// time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send requests, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many requests (whichever of time and count comes first).
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Hits per search or suggestions per prefix (`size` parameter).
    #[arg(long, default_value_t = 10)]
    pub size: u32,
    /// Extra query parameter for every search, `name=value` (repeatable), e.g.
    /// `--param allow_partial=false`.
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// A request not answered within this many milliseconds counts as an error.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Print one JSON object (with --timeline: one JSON line per second, then it).
    #[arg(long)]
    pub json: bool,
    /// Print one row per second while running (QPS, p50, p99, errors, partial answers,
    /// hedges and retries from the target's /metrics).
    #[arg(long)]
    pub timeline: bool,
}

/// Flags of `wikisearch baseline`.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

/// The baselines and the comparison.
#[derive(Debug, clap::Subcommand)]
pub enum BaselineCommand {
    /// Serve ONE index over HTTP (`GET /search?q=&size=&from=`, the front-end's JSON shape).
    Serve(ServeArgs),
    /// Run the benchmark queries directly on ONE index, on T threads.
    InProcess(InProcessArgs),
    /// Generate a corpus, build the cluster and the single index, and compare all three.
    Compare(compare::CompareArgs),
}

/// Flags of `wikisearch baseline serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The index: a shard directory, or an `indexer build --shards 1 --nodes 1` output.
    #[arg(long)]
    pub index: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Flags of `wikisearch baseline in-process`.
#[derive(Debug, clap::Args)]
pub struct InProcessArgs {
    /// The index: a shard directory, or an `indexer build --shards 1 --nodes 1` output.
    #[arg(long, required_unless_present = "store", conflicts_with = "store")]
    pub index: Option<PathBuf>,
    /// Instead of one index: every shard of this shard store, searched in this process as
    /// the cluster would (global statistics, merge, fetch), without processes or HTTP.
    #[arg(long)]
    pub store: Option<PathBuf>,
    #[arg(long)]
    pub queries: PathBuf,
    /// Seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long)]
    pub max_requests: Option<u64>,
    #[arg(long, default_value_t = 10)]
    pub size: usize,
    #[arg(long)]
    pub json: bool,
}

/// Runs `wikisearch bench`.
pub fn run_cli(args: BenchArgs) -> anyhow::Result<()> {
    let mut queries = queries::load(&args.queries)?;
    if args.endpoint == "suggest" {
        queries = queries::typed_prefixes(&queries);
    }
    let mode = match (args.concurrency, args.rate) {
        (_, Some(rate)) => LoadMode::Open { rate },
        (concurrency, None) => LoadMode::Closed {
            concurrency: concurrency.unwrap_or(1),
        },
    };
    let mut spec = LoadSpec::new(
        &args.url[0],
        queries,
        mode,
        seconds("duration", args.duration)?,
    );
    spec.also = args.url[1..].to_vec();
    spec.endpoint = args.endpoint;
    spec.max_requests = args.max_requests;
    spec.size = args.size;
    spec.params = args.params;
    spec.request_timeout = Duration::from_millis(args.timeout_ms.max(1));
    spec.timeline = args.timeline;
    if args.timeline {
        let json = args.json;
        if !json {
            writeln!(std::io::stdout(), "{}", timeline::TimelineRow::header())?;
        }
        spec.on_row = Some(Box::new(move |row| {
            let line = if json {
                row.to_json_line()
            } else {
                row.to_line()
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }));
    }
    let mut report = loadgen::run_blocking(spec)?;
    if args.timeline {
        // The rows were printed live.
        report.timeline.clear();
        if !args.json {
            writeln!(std::io::stdout())?;
        }
    }
    print_report(&report, args.json)
}

/// Runs `wikisearch baseline ...`.
pub fn run_baseline_cli(args: BaselineArgs) -> anyhow::Result<()> {
    match args.command {
        BaselineCommand::Serve(args) => serve_cli(args),
        BaselineCommand::InProcess(args) => in_process_cli(args),
        BaselineCommand::Compare(args) => compare::run_cli(args),
    }
}

fn serve_cli(args: ServeArgs) -> anyhow::Result<()> {
    let index = Arc::new(SingleIndex::open(&args.index)?);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "baseline: {} documents from {} on http://{addr}/search",
            index.num_docs(),
            index.dir().display()
        );
        let _ = std::io::stdout().flush();
        baseline_server::serve(index, listener, searcher::shutdown::signal()).await?;
        Ok(())
    })
}

fn in_process_cli(args: InProcessArgs) -> anyhow::Result<()> {
    let index: Arc<dyn in_process::PageSearch> = match (&args.index, &args.store) {
        (_, Some(store)) => Arc::new(sharded_index::ShardedIndex::open(store)?),
        (Some(index), None) => Arc::new(SingleIndex::open(index)?),
        (None, None) => anyhow::bail!("give --index or --store"),
    };
    let spec = in_process::InProcessSpec {
        queries: queries::load(&args.queries)?,
        threads: args.threads,
        duration: seconds("duration", args.duration)?,
        max_requests: args.max_requests,
        size: args.size,
    };
    let report = in_process::run(index, &spec)?;
    print_report(&report, args.json)
}

/// Prints the summary; a closed stdout (`| head`) is an error, not a panic.
fn print_report(report: &LoadReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = serde_json::to_value(report)?;
        value["type"] = "summary".into();
        writeln!(out, "{value}")?;
    } else {
        write!(out, "{}", report.to_table())?;
    }
    out.flush()?;
    Ok(())
}

/// A positive number of seconds from a flag.
pub fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        bail!("--{flag} must be a number of seconds in (0, 86400], not {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected name=value, not {text:?}")),
    }
}
