//! The search comparison in one command: a synthetic corpus, the cluster (6 shards, R = 2,
//! 3 nodes) against one index behind a single-process HTTP server and the same index
//! searched in-process, at concurrency 1 and 8, with the goal ratios.
//!
//! ```text
//! cargo run --release -p tools --example search_bench -- [--pages 100000] [--duration 15]
//! ```
//!
//! Same as `cargo run --release -p tools -- baseline compare ...`: the processes are the
//! `searcher`, `indexer` and `wikisearch` binaries of the same profile, built first.

use clap::Parser;
use tools::bench::compare::{self, CompareArgs};

#[derive(Debug, Parser)]
#[command(
    name = "search_bench",
    about = "Cluster vs single-process baselines, same run"
)]
struct Args {
    #[command(flatten)]
    compare: CompareArgs,
}

fn main() -> anyhow::Result<()> {
    compare::run_cli(Args::parse().compare)
}
