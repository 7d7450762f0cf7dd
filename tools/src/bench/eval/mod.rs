//! `eval`: search quality measured with known-item queries drawn from the dump itself
//! ([`known_items`]: article titles, redirect titles, piped-link anchor texts), each with
//! exactly one right article, plus the zero-result rate of the AOL benchmark queries.
//!
//! For every class it prints the mean reciprocal rank of the right article in the top
//! [`DEPTH`] (MRR; 0 when it is not there), success@1 and success@10, as a table or one
//! JSON object (`--json`). The engine is a running front-end (`--url`), a shard store
//! searched in this process (`--store`, the front-end's phases over every shard), or, with
//! neither, the two stores `eval` builds from the dump with the real indexer's link pass
//! ([`stores`]: with redirect aliases, and without them for the redirect class held out).
//! `--baseline` also builds the plain-BM25 index of the same dump ([`plain_bm25`]) and
//! measures it in the same run. The redirect class is meant to be measured with redirect
//! titles held out of the index (`--held-out-store` or `--held-out-url`: an index built
//! without aliases): otherwise the query is the alias itself and the class measures the
//! alias field. Weights are tuned with `--weights`, `--exact`, ... ([`tuned`]): one more
//! row ranked with them, without a rebuild.

pub mod cost;
pub mod known_items;
pub mod plain_bm25;
mod report;
pub mod stores;
pub mod tuned;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use shard_proto::query::Syntax;

use super::sharded_index::ShardedIndex;
use known_items::{KnownItem, KnownItems};
pub use report::{ClassFigures, EngineFigures, EvalReport};

/// Ranks searched for the right answer (MRR counts a hit at rank r ≤ DEPTH as 1/r).
pub const DEPTH: usize = 100;

/// Flags of `eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The dump the queries are drawn from (and the index built from, without --store/--url).
    #[arg(long)]
    pub dump: PathBuf,
    /// A running front-end to evaluate (`http://host:port`).
    #[arg(long, conflicts_with = "store")]
    pub url: Option<String>,
    /// A shard store (built from the same dump) searched in this process.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// A front-end built WITHOUT redirect aliases, for the redirect class.
    #[arg(long)]
    pub held_out_url: Option<String>,
    /// A store built WITHOUT redirect aliases (`indexer build --links DIR --no-aliases`).
    #[arg(long, conflicts_with = "held_out_url")]
    pub held_out_store: Option<PathBuf>,
    /// Shards of the stores `eval` builds (without --url/--store).
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Text analysis of the stores `eval` builds: `auto` (the dump language's, as
    /// `indexer build` picks it), `plain`, `english` or `greek`.
    #[arg(long, default_value = "auto")]
    pub analysis: indexer::build::AnalysisChoice,
    /// Field weights to try: title, redirects, anchors, body, categories (adds a row
    /// ranked with them; needs one-shard stores).
    #[arg(long, value_delimiter = ',')]
    pub weights: Option<Vec<f32>>,
    /// Exact title/redirect match bonus to try.
    #[arg(long)]
    pub exact: Option<f32>,
    /// Phrase bonus multiplier to try.
    #[arg(long)]
    pub phrase: Option<f32>,
    /// Phrase slop to try.
    #[arg(long)]
    pub slop: Option<u32>,
    /// Link prior ceiling to try.
    #[arg(long)]
    pub prior_weight: Option<f32>,
    /// Incoming links at half the prior's ceiling, to try.
    #[arg(long)]
    pub prior_half: Option<f32>,
    /// Also build and measure the plain-BM25 baseline of the same dump.
    #[arg(long)]
    pub baseline: bool,
    /// Also measure what the engine costs against the baseline ([`cost`]): CPU per AOL
    /// query, and indexing CPU when `eval` builds the stores (needs --aol and a one-shard
    /// store, built or given with --store; implies --baseline).
    #[arg(long, requires = "aol", conflicts_with = "url")]
    pub cost: bool,
    /// Builds per side for the indexing CPU of --cost: the engine's (link pass and
    /// build) and the baseline's, alternating, each side charged its least CPU (a noisy
    /// neighbour only ever adds CPU, so the least is the steadiest estimate of the work).
    #[arg(long, default_value_t = 1, requires = "cost",
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub cost_rounds: u32,
    /// Most queries per class (drawn deterministically).
    #[arg(long, default_value_t = 2000)]
    pub per_class: usize,
    /// AOL benchmark queries, for the zero-result rate (JSON lines `{"query", "kind"}`).
    #[arg(long)]
    pub aol: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Something that ranks page ids for a query (read leniently, as a person's words).
pub trait Ranker {
    /// The page ids of the top `k` hits and the number of hits.
    fn top_ids(&self, query: &str, k: usize) -> anyhow::Result<(Vec<u64>, u64)>;
    /// What it is, for the report.
    fn name(&self) -> String;
}

impl Ranker for ShardedIndex {
    fn top_ids(&self, query: &str, k: usize) -> anyhow::Result<(Vec<u64>, u64)> {
        Ok(ShardedIndex::top_ids(self, query, Syntax::Lenient, k)?)
    }

    fn name(&self) -> String {
        format!("engine ({} analysis)", self.analysis())
    }
}

/// A running front-end, asked over HTTP.
pub struct FrontendRanker {
    url: String,
    agent: ureq::Agent,
}

impl FrontendRanker {
    pub fn new(url: &str) -> Self {
        FrontendRanker {
            url: url.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_defaults(),
        }
    }
}

impl Ranker for FrontendRanker {
    fn top_ids(&self, query: &str, k: usize) -> anyhow::Result<(Vec<u64>, u64)> {
        #[derive(serde::Deserialize)]
        struct Answer {
            total: u64,
            hits: Vec<AnswerHit>,
        }
        #[derive(serde::Deserialize)]
        struct AnswerHit {
            id: u64,
        }
        let answer: Answer = self
            .agent
            .get(format!("{}/search", self.url))
            .query("q", query)
            .query("size", k.to_string())
            .call()
            .with_context(|| format!("search {query:?} at {}", self.url))?
            .body_mut()
            .read_json()?;
        Ok((answer.hits.iter().map(|h| h.id).collect(), answer.total))
    }

    fn name(&self) -> String {
        format!("engine at {}", self.url)
    }
}

/// Every segment's `id` fast field of one searcher (both the engine's schema and the
/// baseline's have one), opened once as a serving replica opens them: the page ids of
/// ranked hits are read without any stored document, and without reopening a column per
/// hit (which `perf` showed costing ~4 µs each), so a ranker's cost is its ranking's.
pub struct PageIds(Vec<tantivy::columnar::Column<u64>>);

impl PageIds {
    pub fn open(searcher: &tantivy::Searcher) -> anyhow::Result<PageIds> {
        let columns = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment.fast_fields().u64("id"))
            .collect::<tantivy::Result<_>>()?;
        Ok(PageIds(columns))
    }

    /// The page ids of `top`, in order (`u64::MAX` for a document without one).
    pub fn of(&self, top: &[(tantivy::Score, tantivy::DocAddress)]) -> Vec<u64> {
        top.iter()
            .map(|(_, address)| {
                self.0
                    .get(address.segment_ord as usize)
                    .and_then(|ids| ids.first(address.doc_id))
                    .unwrap_or(u64::MAX)
            })
            .collect()
    }
}

/// Figures of one class of known items on one ranker.
pub fn measure(ranker: &dyn Ranker, items: &[KnownItem]) -> anyhow::Result<ClassFigures> {
    let mut reciprocal = 0.0;
    let mut at_1 = 0usize;
    let mut at_10 = 0usize;
    for item in items {
        let (ids, _) = ranker.top_ids(&item.query, DEPTH)?;
        if let Some(rank) = ids.iter().position(|&id| id == item.target) {
            reciprocal += 1.0 / (rank + 1) as f64;
            at_1 += usize::from(rank == 0);
            at_10 += usize::from(rank < 10);
        }
    }
    let n = items.len().max(1) as f64;
    Ok(ClassFigures {
        queries: items.len(),
        mrr: reciprocal / n,
        success_at_1: at_1 as f64 / n,
        success_at_10: at_10 as f64 / n,
    })
}

/// Share of `queries` with no hit at all.
pub fn zero_result_rate(ranker: &dyn Ranker, queries: &[String]) -> anyhow::Result<f64> {
    let mut zero = 0usize;
    for query in queries {
        let (_, total) = ranker.top_ids(query, 1)?;
        zero += usize::from(total == 0);
    }
    Ok(zero as f64 / queries.len().max(1) as f64)
}

/// Every class on one engine; the redirect class on `held_out` when given.
pub fn evaluate(
    ranker: &dyn Ranker,
    held_out: Option<&dyn Ranker>,
    items: &KnownItems,
    aol: &[String],
) -> anyhow::Result<EngineFigures> {
    let redirects = match held_out {
        Some(held_out) => Some(measure(held_out, &items.redirects)?),
        None => None,
    };
    Ok(EngineFigures {
        engine: ranker.name(),
        title: measure(ranker, &items.titles)?,
        redirect_held_out: redirects,
        redirect: measure(ranker, &items.redirects)?,
        anchor: measure(ranker, &items.anchors)?,
        aol_zero_results: match aol.is_empty() {
            true => None,
            false => Some(zero_result_rate(ranker, aol)?),
        },
    })
}

/// The indexing CPU of `--cost` over `--cost-rounds` builds per side: `first` (the
/// builds already made) and the rest, alternating engine and baseline in scratch
/// directories under `scratch` (each removed after its round); the least of each side.
fn indexing_cost(
    args: &EvalArgs,
    scratch: &Path,
    first: cost::IndexingCost,
) -> anyhow::Result<cost::IndexingCost> {
    tracing::info!(
        "cost round 1: engine {:.2} + {:.2} s, baseline {:.2} s",
        first.engine_link_cpu_s,
        first.engine_build_cpu_s,
        first.baseline_index_cpu_s
    );
    let mut least = first;
    for round in 1..args.cost_rounds {
        let dir = scratch.join(format!("cost-round-{round}"));
        std::fs::create_dir_all(&dir)?;
        let (link_s, build_s) = stores::build_engine(&args.dump, &dir, args.shards, args.analysis)?;
        let (_, plain_s) = build_plain(&args.dump, &dir.join("plain-bm25"))?;
        std::fs::remove_dir_all(&dir)?;
        tracing::info!(
            "cost round {}: engine {link_s:.2} + {build_s:.2} s, baseline {plain_s:.2} s",
            round + 1
        );
        if link_s + build_s < least.engine_link_cpu_s + least.engine_build_cpu_s {
            (least.engine_link_cpu_s, least.engine_build_cpu_s) = (link_s, build_s);
        }
        least.baseline_index_cpu_s = least.baseline_index_cpu_s.min(plain_s);
        least.rounds += 1;
    }
    Ok(least)
}

/// Builds the plain-BM25 baseline of `dump` into `dir` (created); its CPU seconds.
fn build_plain(dump: &Path, dir: &Path) -> anyhow::Result<(plain_bm25::PlainBm25, f64)> {
    std::fs::create_dir_all(dir)?;
    let writer = stores::writer_config()?;
    let (plain, cpu_s) = cost::process_cpu(|| plain_bm25::PlainBm25::build(dump, dir, writer));
    Ok((plain?, cpu_s))
}

/// `eval` from the command line.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let items = known_items::draw(&args.dump, args.per_class)?;
    let aol = match &args.aol {
        Some(path) => aol_queries(path)?,
        None => Vec::new(),
    };
    let scratch = tempfile_dir()?;
    let built = match (&args.url, &args.store) {
        (None, None) => Some(stores::build_both(
            &args.dump,
            scratch.path(),
            args.shards,
            args.analysis,
        )?),
        _ => None,
    };
    let store = args
        .store
        .clone()
        .or_else(|| built.as_ref().map(|b| b.aliases.clone()));
    let engine: Box<dyn Ranker> = match (&args.url, &store) {
        (Some(url), _) => Box::new(FrontendRanker::new(url)),
        (None, Some(store)) => Box::new(ShardedIndex::open(store)?),
        (None, None) => bail!("nothing to evaluate: give --url, --store, or neither"),
    };
    let held_out_store = args
        .held_out_store
        .clone()
        .or_else(|| built.as_ref().map(|b| b.held_out.clone()));
    let held_out: Option<Box<dyn Ranker>> = match (&args.held_out_url, &held_out_store) {
        (Some(url), _) => Some(Box::new(FrontendRanker::new(url))),
        (None, Some(store)) => Some(Box::new(ShardedIndex::open(store)?)),
        (None, None) => None,
    };
    let mut engines = vec![evaluate(
        engine.as_ref(),
        held_out.as_deref(),
        &items,
        &aol,
    )?];
    if let Some(trial) = trial(args)? {
        let store = store
            .as_ref()
            .context("weights are tried on a store (--store, or none of --url/--store)")?;
        let tuned = tuned::TunedIndex::open(store, trial.clone())?;
        let tuned_held_out = match &held_out_store {
            Some(store) => Some(tuned::TunedIndex::open(store, trial)?),
            None => None,
        };
        let held_out = tuned_held_out.as_ref().map(|t| t as &dyn Ranker);
        engines.push(evaluate(&tuned, held_out, &items, &aol)?);
    }
    let mut cost = None;
    if args.baseline || args.cost {
        let (baseline, baseline_cpu_s) =
            build_plain(&args.dump, &scratch.path().join("plain-bm25"))?;
        // The baseline has no aliases: its own index holds the redirect titles out.
        engines.push(evaluate(
            &baseline,
            Some(&baseline as &dyn Ranker),
            &items,
            &aol,
        )?);
        if let (true, Some(store)) = (args.cost, &store) {
            // The weights under trial if any (what they would cost), else the engine's.
            let weights = trial(args)?.unwrap_or_default();
            let ranked = tuned::TunedIndex::open(store, weights)
                .context("--cost measures a one-shard store: leave --shards at 1")?;
            let (engine_us, baseline_us) = cost::query_cpu(&ranked, &baseline, &aol)?;
            let first = |built: &stores::Stores| cost::IndexingCost {
                engine_link_cpu_s: built.link_cpu_s,
                engine_build_cpu_s: built.build_cpu_s,
                baseline_index_cpu_s: baseline_cpu_s,
                rounds: 1,
            };
            let indexing = built
                .as_ref()
                .map(|built| indexing_cost(args, scratch.path(), first(built)))
                .transpose()?;
            cost = Some(cost::CostFigures {
                indexing,
                queries: aol.len(),
                engine_query_cpu_us: engine_us,
                baseline_query_cpu_us: baseline_us,
            });
        }
    }
    let report = EvalReport {
        dump: args.dump.display().to_string(),
        articles: items.articles,
        depth: DEPTH,
        engines,
        cost,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The weights to try, when any is given.
fn trial(args: &EvalArgs) -> anyhow::Result<Option<tuned::Trial>> {
    let given = args.weights.is_some()
        || args.exact.is_some()
        || args.phrase.is_some()
        || args.slop.is_some()
        || args.prior_weight.is_some()
        || args.prior_half.is_some();
    if !given {
        return Ok(None);
    }
    let mut trial = tuned::Trial::default();
    if let Some(weights) = &args.weights {
        if weights.len() != trial.fields.len() {
            bail!(
                "--weights takes {} numbers (title, redirects, anchors, body, categories), got {}",
                trial.fields.len(),
                weights.len()
            );
        }
        for (slot, weight) in trial.fields.iter_mut().zip(weights) {
            *slot = *weight;
        }
    }
    let r = &mut trial.ranking;
    r.exact_boost = args.exact.unwrap_or(r.exact_boost);
    r.phrase_boost = args.phrase.unwrap_or(r.phrase_boost);
    r.phrase_slop = args.slop.unwrap_or(r.phrase_slop);
    r.prior_weight = args.prior_weight.unwrap_or(r.prior_weight);
    r.prior_half = args.prior_half.unwrap_or(r.prior_half);
    Ok(Some(trial))
}

/// The queries of a benchmark file.
fn aol_queries(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(super::queries::load(path)?
        .into_iter()
        .map(|q| q.text)
        .collect())
}

/// A scratch directory removed when dropped.
fn tempfile_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("wikisearch-eval-")
        .tempdir()
        .context("create a scratch directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The English sample, built as `eval` builds it, once per test.
    fn sample_stores(dir: &Path) -> (KnownItems, stores::Stores) {
        let dump = crate::test_support::sample_dump();
        let items = known_items::draw(&dump, 40).unwrap();
        (
            items,
            stores::build_both(&dump, dir, 1, indexer::build::AnalysisChoice::Auto).unwrap(),
        )
    }

    #[test]
    fn cost_rounds_charge_each_side_its_least_cpu() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            eval: EvalArgs,
        }
        let dump = crate::test_support::sample_dump();
        let parse = |rounds: &str| {
            let dump = dump.to_str().unwrap();
            let argv = ["eval", "--dump", dump, "--cost", "--aol", "q"];
            <Cli as clap::Parser>::try_parse_from(argv.into_iter().chain(["--cost-rounds", rounds]))
        };
        let args = parse("2").unwrap().eval;
        // A first round that any real build beats.
        let first = cost::IndexingCost {
            engine_link_cpu_s: 1e9,
            engine_build_cpu_s: 1e9,
            baseline_index_cpu_s: 1e9,
            rounds: 1,
        };
        let dir = tempfile_dir().unwrap();
        let least = indexing_cost(&args, dir.path(), first).unwrap();
        assert_eq!(least.rounds, 2);
        for cpu_s in [
            least.engine_link_cpu_s,
            least.engine_build_cpu_s,
            least.baseline_index_cpu_s,
        ] {
            assert!(cpu_s > 0.0 && cpu_s < 1e9, "{least:?}");
        }
        // The round's scratch directory is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(parse("0").is_err(), "at least one round");
    }

    #[test]
    fn trial_with_the_compiled_in_weights_ranks_as_the_engine() {
        let dir = tempfile_dir().unwrap();
        let (items, stores) = sample_stores(dir.path());
        let engine = ShardedIndex::open(&stores.aliases).unwrap();
        let trial = tuned::TunedIndex::open(&stores.aliases, tuned::Trial::default()).unwrap();
        let queries = items.titles.iter().chain(&items.anchors);
        let mut compared = 0;
        for item in queries {
            let (engine_ids, engine_total) = Ranker::top_ids(&engine, &item.query, 10).unwrap();
            let (trial_ids, trial_total) = trial.top_ids(&item.query, 10).unwrap();
            assert_eq!(engine_total, trial_total, "{:?}", item.query);
            // Equal scores may be ordered differently (page id vs document address):
            // compare the sets of the top 10 and the first hit.
            let mut sorted = (engine_ids.clone(), trial_ids.clone());
            sorted.0.sort_unstable();
            sorted.1.sort_unstable();
            assert_eq!(sorted.0, sorted.1, "{:?}", item.query);
            compared += 1;
        }
        assert!(compared >= 40, "{compared} queries compared");
    }

    #[test]
    fn the_sample_meets_the_title_goal_and_beats_plain_bm25_on_redirects() {
        let dir = tempfile_dir().unwrap();
        let (items, stores) = sample_stores(dir.path());
        let engine = ShardedIndex::open(&stores.aliases).unwrap();
        let held_out = ShardedIndex::open(&stores.held_out).unwrap();
        let figures = evaluate(&engine, Some(&held_out as &dyn Ranker), &items, &[]).unwrap();
        let plain_dir = dir.path().join("plain");
        std::fs::create_dir_all(&plain_dir).unwrap();
        let dump = crate::test_support::sample_dump();
        let writer = stores::writer_config().unwrap();
        let plain = plain_bm25::PlainBm25::build(&dump, &plain_dir, writer).unwrap();
        let baseline = evaluate(&plain, Some(&plain as &dyn Ranker), &items, &[]).unwrap();
        assert!(figures.title.success_at_1 >= 0.95, "{figures:?}");
        let held_out = figures.redirect_held_out.expect("held-out figures");
        assert!(
            held_out.mrr >= baseline.redirect.mrr,
            "{held_out:?} vs {:?}",
            baseline.redirect
        );
        assert!(
            figures.redirect.success_at_1 > held_out.success_at_1,
            "{figures:?}"
        );
        let table = EvalReport {
            dump: "sample".into(),
            articles: items.articles,
            depth: DEPTH,
            engines: vec![figures, baseline],
            cost: None,
        }
        .table();
        assert!(
            table.contains("| plain BM25 | redirect (held out) |"),
            "{table}"
        );
    }
}
