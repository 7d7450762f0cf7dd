//! `eval --cost`: what the engine's relevance costs against the plain-BM25 baseline,
//! measured in one run on the same dump:
//!
//! - **indexing**: CPU seconds of the engine's link pass plus its build (with aliases,
//!   the index it serves) against the baseline's build; both clean the wikitext the same
//!   way, so the difference is the link pass, the extra fields and the stemming;
//! - **searching**: CPU per query over the AOL benchmark queries (top 10, read leniently),
//!   each searched on one whole-dump index in this thread: the engine's through its own
//!   parser and ranking (five fields, the analysis, the exact-title, phrase and link-prior
//!   signals), the baseline's with three fields and none of them. Rounds alternate
//!   between the two so a noisy neighbour slows both alike.
//!
//! With `--store` (a one-shard store built beforehand) only searching is measured: what
//! a trial of weights or a change of the query's execution costs, without a rebuild.
//!
//! CPU is `getrusage` (the process's for builds, which use several threads; the thread's
//! for searches), steadier than wall time on a shared machine.

use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use serde::{Deserialize, Serialize};

use super::Ranker;

/// Rounds over the query list per engine.
const ROUNDS: usize = 5;
/// Hits asked per query (a results page).
const PAGE: usize = 10;

/// CPU seconds used so far by `who`.
pub fn cpu_seconds(who: UsageWho) -> f64 {
    match getrusage(who) {
        Ok(usage) => {
            let secs = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000).as_secs_f64()
            };
            secs(usage.user_time()) + secs(usage.system_time())
        }
        Err(_) => 0.0,
    }
}

/// CPU seconds `f` takes in this process (every thread).
pub fn process_cpu<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let before = cpu_seconds(UsageWho::RUSAGE_SELF);
    let out = f();
    (out, cpu_seconds(UsageWho::RUSAGE_SELF) - before)
}

/// The figures of `eval --cost`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostFigures {
    /// Indexing CPU, when `eval` built the engine's store itself.
    pub indexing: Option<IndexingCost>,
    /// Queries searched per round.
    pub queries: usize,
    /// CPU microseconds per query on the engine's index.
    pub engine_query_cpu_us: f64,
    /// CPU microseconds per query on the baseline's index.
    pub baseline_query_cpu_us: f64,
}

/// CPU seconds of the builds `eval --cost` ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexingCost {
    /// The engine's link pass.
    pub engine_link_cpu_s: f64,
    /// The engine's build (after the link pass).
    pub engine_build_cpu_s: f64,
    /// The baseline's build.
    pub baseline_index_cpu_s: f64,
    /// Builds made per side; each figure is the least of its side's (`--cost-rounds`).
    pub rounds: u32,
}

fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(f64::MIN_POSITIVE)
}

impl CostFigures {
    /// The report's lines.
    pub fn table(&self) -> String {
        let indexing = match &self.indexing {
            Some(i) => format!(
                "| indexing CPU (s{}): link pass + build | {:.2} + {:.2} = {:.2} | {:.2} | {:.2}x (build alone {:.2}x) |\n",
                match i.rounds {
                    1 => String::new(),
                    n => format!(", least of {n} builds each"),
                },
                i.engine_link_cpu_s,
                i.engine_build_cpu_s,
                i.engine_link_cpu_s + i.engine_build_cpu_s,
                i.baseline_index_cpu_s,
                ratio(i.engine_link_cpu_s + i.engine_build_cpu_s, i.baseline_index_cpu_s),
                ratio(i.engine_build_cpu_s, i.baseline_index_cpu_s),
            ),
            None => String::new(),
        };
        format!(
            "\ncost against plain BM25 (same dump, same run):\n\
             | | engine | plain BM25 | engine / plain |\n| --- | --- | --- | --- |\n\
             {indexing}\
             | CPU per query (µs, {} AOL queries x {ROUNDS}) | {:.0} | {:.0} | {:.2}x |\n",
            self.queries,
            self.engine_query_cpu_us,
            self.baseline_query_cpu_us,
            ratio(self.engine_query_cpu_us, self.baseline_query_cpu_us),
        )
    }
}

/// CPU microseconds per query of `engine` and `baseline` over `queries`, alternating
/// rounds (after one untimed round each, which warms their caches).
pub fn query_cpu(
    engine: &dyn Ranker,
    baseline: &dyn Ranker,
    queries: &[String],
) -> anyhow::Result<(f64, f64)> {
    let round = |ranker: &dyn Ranker| -> anyhow::Result<f64> {
        let before = cpu_seconds(UsageWho::RUSAGE_THREAD);
        for query in queries {
            ranker.top_ids(query, PAGE)?;
        }
        Ok(cpu_seconds(UsageWho::RUSAGE_THREAD) - before)
    };
    round(engine)?;
    round(baseline)?;
    let (mut engine_s, mut baseline_s) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        engine_s += round(engine)?;
        baseline_s += round(baseline)?;
    }
    let per_query = |s: f64| s * 1e6 / (ROUNDS * queries.len().max(1)) as f64;
    Ok((per_query(engine_s), per_query(baseline_s)))
}
