//! The whole comparison of issue 4 in one command: a synthetic corpus, the cluster
//! (6 shards, R = 2, 3 nodes) against one index behind a single-process HTTP server and
//! the same index searched in-process, at concurrency 1 and 8, with the goal ratios.
//!
//! ```text
//! cargo build --release -p searcher
//! cargo run --release -p searcher --example search_bench -- [--pages 100000] [--duration 15]
//! ```
//!
//! Same as `target/release/searcher baseline compare ...`; processes are started from the
//! `searcher` binary next to this example's directory (`target/release/searcher`).

use clap::Parser;
use searcher::bench::compare::{self, CompareArgs};

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
    let mut args = Args::parse().compare;
    if args.searcher_bin.is_none() {
        // target/<profile>/examples/search_bench → target/<profile>/searcher
        let exe = std::env::current_exe()?;
        let profile_dir = exe.parent().and_then(|p| p.parent());
        args.searcher_bin = profile_dir.map(|dir| dir.join("searcher"));
    }
    compare::run_cli(args)
}
