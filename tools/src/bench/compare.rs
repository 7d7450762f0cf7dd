//! The whole comparison in one command (`wikisearch baseline compare`, or the
//! `search_bench` example): the cluster against what a user would run instead, on the
//! same documents, in the same run, on this machine.
//!
//! 1. a synthetic corpus (`indexer synth --query-terms`, so the queries' terms have
//!    realistic frequencies and their phrases occur), built twice: 6 shards by 2
//!    indexers × 3 shards, and 1 shard;
//! 2. a cluster file (3 nodes, R = 2, each node coordinating at its own `http` address),
//!    3 `searcher node` processes and a `searcher frontend`; a `wikisearch baseline
//!    serve` process on the single shard;
//! 3. the same queries at concurrency 1 and 8 against the front-end (with each
//!    `search_type`), against the coordinating nodes (the load spread over the three,
//!    no front-end involved) and the single HTTP server (the load generator), and on 1 and 8
//!    threads in-process: the single index, and the 6 shards in one process (what sharding
//!    costs apart from processes and HTTP);
//! 4. a table and the goals as ratios. Every process started is stopped, on
//!    success and on error.
//!
//! Built artifacts are kept under `--work` and reused when complete (`--rebuild` to
//! start over); node data directories are fresh each run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use super::agreement::{compare_top10, Agreement};
use super::in_process::{self, InProcessSpec, PageSearch};
use super::loadgen::{self, LoadMode, LoadSpec};
use super::queries::{self, BenchQuery};
use super::report::{LoadReport, Outcome};
use super::sharded_index::ShardedIndex;
use super::single_index::SingleIndex;
use crate::binaries::Binaries;
use crate::proc_stats::{process_cpu_seconds, threads_cpu_seconds};
use crate::supervisor::{free_addr, Supervisor};
use searcher::node::server::SEARCH_THREAD_PREFIX;

/// The shared benchmark queries, read in place.
const DEFAULT_QUERIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/bench/queries-aol.jsonl"
);
/// Cluster shape the issue sets.
const INDEXERS: usize = 2;
const SHARDS_PER_INDEXER: usize = 3;
const NODES: usize = 3;
const REPLICATION: usize = 2;
/// Queries whose answers are compared between the front-end and the single index (all of
/// the shared file: a second or two).
const AGREEMENT_QUERIES: usize = 1_000;
/// Above this share of answers without hits, the figures measure mostly empty searches.
const EMPTY_WARNING: f64 = 0.25;
/// The in-process row the goals are measured against.
const IN_PROCESS: &str = "in-process (1 index)";
/// Concurrency levels compared.
const LEVELS: [usize; 2] = [1, 8];
/// The front-end is measured with each way of fetching the page (`search_type`).
const SEARCH_TYPES: [&str; 3] = ["auto", "query_then_fetch", "query_and_fetch"];
/// The setup where every node coordinates and the load is spread over them.
const COORDINATING: &str = "coordinating nodes, load spread";

/// Flags of `wikisearch baseline compare`.
#[derive(Clone, Debug, clap::Args)]
pub struct CompareArgs {
    /// Pages of the synthetic corpus.
    #[arg(long, default_value_t = 100_000)]
    pub pages: u64,
    /// Where the corpus, shards, cluster file and logs go (reused between runs).
    #[arg(long, default_value = "target/search-bench")]
    pub work: PathBuf,
    #[arg(long, default_value = DEFAULT_QUERIES)]
    pub queries: PathBuf,
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 15.0)]
    pub duration: f64,
    /// Seconds of warm-up load before each target's measurements.
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Rebuild the corpus and shards even if present.
    #[arg(long)]
    pub rebuild: bool,
    /// Print every report and the ratios as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub setup: String,
    pub concurrency: usize,
    pub report: LoadReport,
    /// CPU milliseconds per answered query, by process group (where the time goes).
    pub cpu_ms_per_query: Vec<(String, f64)>,
}

/// Whose CPU time a group of a setup is charged.
#[derive(Clone, Debug)]
enum CpuSource {
    /// The started processes whose name starts with this prefix.
    Children(&'static str),
    /// The search pools of the nodes (their threads named `SEARCH_THREAD_PREFIX`...).
    NodePools,
    /// The node processes (`node-*`) minus their search pools: HTTP, I/O, the runtime.
    NodesBesidesPools,
    /// This process (the load generator, or the in-process searches and their driver).
    ThisProcess,
}

/// The process groups a setup is charged, with their labels.
type CpuGroups = Vec<(&'static str, CpuSource)>;

fn cpu_snapshot(procs: &Supervisor, groups: &CpuGroups) -> Vec<f64> {
    let pools = || -> f64 {
        procs
            .pids("node-")
            .into_iter()
            .filter_map(|pid| threads_cpu_seconds(pid, SEARCH_THREAD_PREFIX))
            .sum()
    };
    groups
        .iter()
        .map(|(_, source)| match source {
            CpuSource::ThisProcess => process_cpu_seconds(std::process::id()).unwrap_or(0.0),
            CpuSource::Children(prefix) => procs.cpu_seconds(prefix),
            CpuSource::NodePools => pools(),
            CpuSource::NodesBesidesPools => procs.cpu_seconds("node-") - pools(),
        })
        .collect()
}

fn cpu_per_query(
    groups: &CpuGroups,
    before: &[f64],
    after: &[f64],
    report: &LoadReport,
) -> Vec<(String, f64)> {
    let queries = report.overall.requests.max(1) as f64;
    groups
        .iter()
        .zip(before.iter().zip(after))
        .map(|((label, _), (b, a))| (label.to_string(), (a - b) * 1000.0 / queries))
        .collect()
}

/// The goals as measured for one front-end setup.
#[derive(Clone, Debug, Serialize)]
pub struct Goals {
    /// The front-end setup these figures are for.
    pub setup: String,
    pub frontend_p50_c1_ms: f64,
    pub in_process_p50_t1_ms: f64,
    /// Met when the front-end's p50 ≤ in-process p50 + 0.5 ms.
    pub p50_goal_met: bool,
    /// Front-end QPS at c=8 / single-process HTTP QPS at c=8 (goal ≥ 0.8).
    pub qps_vs_single_http: f64,
    /// Front-end QPS at c=8 / in-process QPS on 8 threads (stretch ≥ 0.7).
    pub qps_vs_in_process: f64,
}

/// The goals of every front-end setup, and the check that all setups serve the same
/// documents.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub goals: Vec<Goals>,
    /// Whether the front-end and the single index rank the first queries alike.
    pub agreement: Agreement,
}

/// Runs `wikisearch baseline compare`.
pub fn run_cli(args: CompareArgs) -> anyhow::Result<()> {
    let (measurements, summary) = run(&args, &Binaries::locate()?)?;
    if args.json {
        let value = serde_json::json!({ "measurements": measurements, "summary": summary });
        println!("{value}");
    } else {
        print!("{}", render(&measurements, &summary));
    }
    Ok(())
}

/// Builds everything, measures every configuration, stops every process.
pub fn run(args: &CompareArgs, bins: &Binaries) -> anyhow::Result<(Vec<Measurement>, Summary)> {
    let duration = super::seconds("duration", args.duration)?;
    let warmup = super::seconds("warmup", args.warmup)?;
    let queries = queries::load(&args.queries)?;
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("cannot create {}", args.work.display()))?;
    let work = args.work.canonicalize()?;
    let built = build_indexes(
        &bins.indexer,
        &work,
        args.pages,
        &args.queries,
        args.rebuild,
    )?;

    let mut procs = Supervisor::new(work.join("logs"))?;
    let (frontend, coordinators) = start_cluster(&mut procs, &bins.searcher, &work, &built.store)?;
    let single_http = start_single_http(&mut procs, &bins.wikisearch, &built.single)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let serving = [("front-end", &frontend), ("single HTTP", &single_http)]
        .into_iter()
        .chain(coordinators.iter().map(|url| ("coordinating node", url)));
    for (name, url) in serving {
        runtime
            .block_on(wait_until_serving(
                &mut procs,
                url,
                Duration::from_secs(300),
            ))
            .with_context(|| format!("the {name} never answered"))?;
    }

    let agreement = runtime.block_on(compare_top10(
        &frontend,
        &single_http,
        &queries,
        AGREEMENT_QUERIES,
    ))?;
    let mut measurements = Vec::new();
    // (setup, URLs, extra query parameters, processes charged)
    type Setup<'a> = (String, &'a [String], Vec<(String, String)>, CpuGroups);
    let frontend = [frontend];
    let single_http = [single_http];
    let cluster_cpu: CpuGroups = vec![
        ("front-end", CpuSource::Children("frontend")),
        ("node search pools", CpuSource::NodePools),
        ("node HTTP and I/O", CpuSource::NodesBesidesPools),
        ("load generator", CpuSource::ThisProcess),
    ];
    let mut setups: Vec<Setup> = SEARCH_TYPES
        .iter()
        .map(|t| {
            let params = vec![("search_type".to_string(), t.to_string())];
            let name = format!("front-end, {t}");
            (name, &frontend[..], params, cluster_cpu.clone())
        })
        .collect();
    setups.push((
        COORDINATING.into(),
        &coordinators,
        Vec::new(),
        vec![
            ("node search pools", CpuSource::NodePools),
            ("node HTTP, I/O, coordination", CpuSource::NodesBesidesPools),
            ("load generator", CpuSource::ThisProcess),
        ],
    ));
    setups.push((
        "single-process HTTP (1 index)".into(),
        &single_http[..],
        Vec::new(),
        vec![
            ("server", CpuSource::Children("baseline-serve")),
            ("load generator", CpuSource::ThisProcess),
        ],
    ));
    for (setup, url, params, cpu_groups) in setups {
        eprintln!("measuring {setup} ...");
        load(&runtime, url, &queries, &params, 2, warmup)?;
        for concurrency in LEVELS {
            procs.check_alive()?;
            let before = cpu_snapshot(&procs, &cpu_groups);
            let report = load(&runtime, url, &queries, &params, concurrency, duration)?;
            let after = cpu_snapshot(&procs, &cpu_groups);
            eprint!("{}", report.to_table());
            measurements.push(Measurement {
                setup: setup.to_string(),
                concurrency,
                cpu_ms_per_query: cpu_per_query(&cpu_groups, &before, &after, &report),
                report,
            });
        }
    }
    procs.stop_all();

    let this_process: CpuGroups = vec![("in-process (search + driver)", CpuSource::ThisProcess)];
    // The shards in one process: what sharding costs apart from processes and HTTP.
    let in_process: [(&str, Arc<dyn PageSearch>); 2] = [
        (IN_PROCESS, Arc::new(SingleIndex::open(&built.single)?)),
        (
            "in-process (6 shards)",
            Arc::new(ShardedIndex::open(&built.store)?),
        ),
    ];
    for (setup, index) in in_process {
        eprintln!("measuring {setup} ...");
        in_process_run(&index, &queries, 2, warmup)?;
        for threads in LEVELS {
            let before = cpu_snapshot(&procs, &this_process);
            let report = in_process_run(&index, &queries, threads, duration)?;
            let after = cpu_snapshot(&procs, &this_process);
            eprint!("{}", report.to_table());
            measurements.push(Measurement {
                setup: setup.to_string(),
                concurrency: threads,
                cpu_ms_per_query: cpu_per_query(&this_process, &before, &after, &report),
                report,
            });
        }
    }
    let goals = SEARCH_TYPES
        .iter()
        .map(|t| format!("front-end, {t}"))
        .chain(std::iter::once(COORDINATING.to_string()))
        .map(|setup| goals(&measurements, &setup))
        .collect::<anyhow::Result<_>>()?;
    Ok((measurements, Summary { goals, agreement }))
}

/// Load on `urls[0]`, spread over the others too if there are more.
fn load(
    runtime: &tokio::runtime::Runtime,
    urls: &[String],
    queries: &[BenchQuery],
    params: &[(String, String)],
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    let mut spec = LoadSpec::new(
        &urls[0],
        queries.to_vec(),
        LoadMode::Closed { concurrency },
        duration,
    );
    spec.also = urls[1..].to_vec();
    spec.params = params.to_vec();
    Ok(runtime.block_on(loadgen::run(spec))?)
}

fn in_process_run(
    index: &Arc<dyn PageSearch>,
    queries: &[BenchQuery],
    threads: usize,
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    let spec = InProcessSpec {
        queries: queries.to_vec(),
        threads,
        duration,
        max_requests: None,
        size: 10,
    };
    Ok(in_process::run(index.clone(), &spec)?)
}

/// Where the built indexes are.
struct Built {
    /// Shard store of the cluster (6 shards).
    store: PathBuf,
    /// The single index (1 shard).
    single: PathBuf,
}

/// Names built artifacts after the page count and the query file's content, so a corpus
/// generated for other queries (or before query terms existed) is never reused.
fn corpus_tag(pages: u64, queries: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(queries).with_context(|| format!("cannot read {}", queries.display()))?;
    let hash = blake3::hash(&bytes).to_hex();
    Ok(format!("{pages}-q{}", &hash[..10]))
}

fn build_indexes(
    indexer: &Path,
    work: &Path,
    pages: u64,
    queries: &Path,
    rebuild: bool,
) -> anyhow::Result<Built> {
    let tag = corpus_tag(pages, queries)?;
    let dump = work.join(format!("synth-{tag}.xml.bz2"));
    let store = work.join(format!("store-{tag}"));
    let single = work.join(format!("single-{tag}"));
    if rebuild {
        for path in [&store, &single] {
            let _ = std::fs::remove_dir_all(path);
        }
        let _ = std::fs::remove_file(&dump);
        let _ = std::fs::remove_file(corpus::synth::index_path(&dump));
    }
    // The multistream index lets every indexer seek straight to its slice.
    let dump_index = corpus::synth::index_path(&dump);
    if !(dump.is_file() && dump_index.is_file()) {
        eprintln!(
            "generating {pages} synthetic pages into {} ...",
            dump.display()
        );
        let mut synth = Command::new(indexer);
        synth.args(["synth", "--out"]).arg(&dump);
        synth.args(["--pages", &pages.to_string()]);
        synth.arg("--query-terms").arg(queries);
        run_step("indexer synth", &mut synth)?;
    }
    if count_shards(&store) != INDEXERS * SHARDS_PER_INDEXER {
        let _ = std::fs::remove_dir_all(&store);
        eprintln!("building {} shards ...", INDEXERS * SHARDS_PER_INDEXER);
        for node in 0..INDEXERS {
            let slice = Slice {
                shards: SHARDS_PER_INDEXER,
                node,
                nodes: INDEXERS,
            };
            let mut build = build_command(indexer, &dump, &dump_index, &store, slice);
            run_step("indexer build (cluster)", &mut build)?;
        }
    }
    if count_shards(&single) != 1 {
        let _ = std::fs::remove_dir_all(&single);
        eprintln!("building the single index ...");
        let slice = Slice {
            shards: 1,
            node: 0,
            nodes: 1,
        };
        let mut build = build_command(indexer, &dump, &dump_index, &single, slice);
        run_step("indexer build (single)", &mut build)?;
    }
    Ok(Built { store, single })
}

/// Which part of the corpus one indexer process builds, into how many shards.
#[derive(Clone, Copy)]
struct Slice {
    shards: usize,
    node: usize,
    nodes: usize,
}

fn build_command(indexer: &Path, dump: &Path, index: &Path, out: &Path, slice: Slice) -> Command {
    let mut command = Command::new(indexer);
    command.args(["build", "--input"]).arg(dump);
    command.arg("--index").arg(index).arg("--out").arg(out);
    command.args(["--shards", &slice.shards.to_string()]);
    command.args(["--node", &slice.node.to_string()]);
    command.args(["--nodes", &slice.nodes.to_string()]);
    command
}

/// Published shards: sub-directories holding a manifest.
fn count_shards(store: &Path) -> usize {
    std::fs::read_dir(store).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("manifest.json").is_file())
            .count()
    })
}

fn run_step(what: &str, command: &mut Command) -> anyhow::Result<()> {
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {command:?}");
    }
    eprintln!("{what}: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Writes the cluster file and starts the nodes (each coordinating too) and the
/// front-end; returns the front-end's URL and the nodes' public URLs.
fn start_cluster(
    procs: &mut Supervisor,
    searcher: &Path,
    work: &Path,
    store: &Path,
) -> anyhow::Result<(String, Vec<String>)> {
    let dir = work.join("cluster");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let frontend = free_addr()?;
    let mut toml = format!(
        "shard_store = {:?}\nreplication = {REPLICATION}\n\n[frontend]\nlisten = \"{frontend}\"\n\n\
         [auth]\nsecret_file = \"cluster.secret\"\n",
        store.display().to_string()
    );
    let secret = dir.join("cluster.secret");
    searcher::cluster::ensure_secret_file(&secret)?;
    let ids: Vec<String> = (1..=NODES).map(|n| format!("node-{n}")).collect();
    let mut coordinators = Vec::new();
    for id in &ids {
        let (rpc, http) = (free_addr()?, free_addr()?);
        toml.push_str(&format!(
            "\n[[node]]\nid = \"{id}\"\nrpc = \"{rpc}\"\nhttp = \"{http}\"\n"
        ));
        coordinators.push(format!("http://{http}"));
    }
    let config = dir.join("cluster.toml");
    std::fs::write(&config, toml).with_context(|| format!("cannot write {}", config.display()))?;
    for id in &ids {
        let mut node = Command::new(searcher);
        node.arg("node")
            .arg("--config")
            .arg(&config)
            .args(["--id", id]);
        procs.spawn(id, &mut node)?;
    }
    let mut command = Command::new(searcher);
    command.arg("frontend").arg("--config").arg(&config);
    procs.spawn("frontend", &mut command)?;
    Ok((format!("http://{frontend}"), coordinators))
}

fn start_single_http(
    procs: &mut Supervisor,
    wikisearch: &Path,
    index: &Path,
) -> anyhow::Result<String> {
    let addr = free_addr()?;
    let mut command = Command::new(wikisearch);
    command.args(["baseline", "serve", "--index"]).arg(index);
    command.arg("--listen").arg(addr.to_string());
    procs.spawn("baseline-serve", &mut command)?;
    Ok(format!("http://{addr}"))
}

/// Waits until a search answers 200 with every shard (not partial).
async fn wait_until_serving(
    procs: &mut Supervisor,
    url: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let client = loadgen::http_client(1);
    let uri: http::Uri = format!("{url}/search?q=the&size=1").parse()?;
    let started = Instant::now();
    loop {
        procs.check_alive()?;
        let outcome = loadgen::send(&client, &uri, Duration::from_secs(5)).await;
        if matches!(outcome, Outcome::Answered { partial: None, .. }) {
            return Ok(());
        }
        if started.elapsed() > deadline {
            bail!("{url}: not serving after {deadline:?} (last: {outcome:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn find<'a>(
    measurements: &'a [Measurement],
    prefix: &str,
    concurrency: usize,
) -> anyhow::Result<&'a LoadReport> {
    measurements
        .iter()
        .find(|m| m.setup.starts_with(prefix) && m.concurrency == concurrency)
        .map(|m| &m.report)
        .with_context(|| format!("no measurement of {prefix} at {concurrency}"))
}

fn goals(measurements: &[Measurement], frontend: &str) -> anyhow::Result<Goals> {
    let frontend_1 = find(measurements, frontend, 1)?;
    let frontend_8 = find(measurements, frontend, 8)?;
    let http_8 = find(measurements, "single-process HTTP", 8)?;
    let in_process_1 = find(measurements, IN_PROCESS, 1)?;
    let in_process_8 = find(measurements, IN_PROCESS, 8)?;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let frontend_p50 = frontend_1.overall.latency_ms.p50;
    let in_process_p50 = in_process_1.overall.latency_ms.p50;
    Ok(Goals {
        setup: frontend.to_string(),
        frontend_p50_c1_ms: frontend_p50,
        in_process_p50_t1_ms: in_process_p50,
        p50_goal_met: frontend_p50 <= in_process_p50 + 0.5,
        qps_vs_single_http: ratio(frontend_8.overall.qps, http_8.overall.qps),
        qps_vs_in_process: ratio(frontend_8.overall.qps, in_process_8.overall.qps),
    })
}

/// The comparison table, per-kind p50s and the goals.
pub fn render(measurements: &[Measurement], summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<36}{:>5}{:>10}{:>9}{:>9}{:>9}{:>9}{:>8}{:>9}{:>9}",
        "setup", "c", "qps", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "partial", "no hits"
    );
    for m in measurements {
        let f = &m.report.overall;
        let l = &f.latency_ms;
        let _ = writeln!(
            out,
            "{:<36}{:>5}{:>10.0}{:>9.3}{:>9.3}{:>9.3}{:>9.2}{:>8}{:>9}{:>9}",
            m.setup, m.concurrency, f.qps, l.p50, l.p90, l.p99, l.max, f.errors, f.partial, f.empty
        );
    }
    let _ = writeln!(out, "\nCPU ms per query, by process:");
    for m in measurements {
        let groups: Vec<String> = m
            .cpu_ms_per_query
            .iter()
            .map(|(label, ms)| format!("{label} {ms:.3}"))
            .collect();
        let total: f64 = m.cpu_ms_per_query.iter().map(|(_, ms)| ms).sum();
        let _ = writeln!(
            out,
            "{:<36}{:>5}   total {total:.3} = {}",
            m.setup,
            m.concurrency,
            groups.join(" + ")
        );
    }
    let _ = writeln!(out, "\np50 ms by query kind:");
    let kinds: Vec<&String> = measurements
        .first()
        .map(|m| m.report.kinds.keys().collect())
        .unwrap_or_default();
    let _ = write!(out, "{:<36}{:>5}", "setup", "c");
    for kind in &kinds {
        let _ = write!(out, "{:>14}", kind);
    }
    let _ = writeln!(out);
    for m in measurements {
        let _ = write!(out, "{:<36}{:>5}", m.setup, m.concurrency);
        for kind in &kinds {
            let p50 = m.report.kinds.get(*kind).map_or(0.0, |k| k.latency_ms.p50);
            let _ = write!(out, "{:>14.3}", p50);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "\nsame documents: front-end and single index rank alike for {} of the {} queries \
         with hits (of the first {} queries)",
        summary.agreement.identical, summary.agreement.with_hits, summary.agreement.compared
    );
    let (answers, empty) = measurements.iter().fold((0, 0), |(n, e), m| {
        (n + m.report.overall.requests, e + m.report.overall.empty)
    });
    if answers > 0 && empty as f64 / answers as f64 > EMPTY_WARNING {
        let _ = writeln!(
            out,
            "WARNING: {:.0} % of the answers had no hits: the corpus hardly matches these \
             queries, so these figures measure mostly empty searches",
            100.0 * empty as f64 / answers as f64
        );
    }
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    for goals in &summary.goals {
        let _ = writeln!(out, "\n{}:", goals.setup);
        let _ = writeln!(
            out,
            "  goal p50 c=1: {:.3} ms <= in-process {:.3} ms + 0.5 ms: {}",
            goals.frontend_p50_c1_ms,
            goals.in_process_p50_t1_ms,
            verdict(goals.p50_goal_met)
        );
        let _ = writeln!(
            out,
            "  goal qps c=8: / single-process HTTP = {:.2} (>= 0.8): {}",
            goals.qps_vs_single_http,
            verdict(goals.qps_vs_single_http >= 0.8)
        );
        let _ = writeln!(
            out,
            "  stretch qps c=8: / in-process 8 threads = {:.2} (>= 0.7): {}",
            goals.qps_vs_in_process,
            verdict(goals.qps_vs_in_process >= 0.7)
        );
    }
    out
}
