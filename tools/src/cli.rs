//! Command-line interface of the `wikisearch` binary: one sub-command per tool.

use clap::{Parser, Subcommand};

use crate::{bench, demo, drill, keep};

/// A one-command demo cluster, and tools to load, measure and break a cluster.
#[derive(Debug, Parser)]
#[command(name = "wikisearch", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The tools' commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index a dump and run a local cluster with the search page, in one command.
    Demo(demo::DemoArgs),
    /// Load generator: drive a search URL with real queries and print latency figures.
    Bench(bench::BenchArgs),
    /// Single-process baselines the cluster is compared with (HTTP server, in-process).
    Baseline(bench::BaselineArgs),
    /// Search quality: known-item queries drawn from a dump (titles, held-out redirects,
    /// anchor texts), MRR and success@k per class, against plain BM25 in the same run.
    Eval(bench::eval::EvalArgs),
    /// Run steady load, inject a fault, heal it, and report what users saw.
    Drill(drill::DrillArgs),
    /// Run a command for as long as another process lives (the drill restarts nodes so).
    #[command(hide = true)]
    Keep(keep::KeepArgs),
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    searcher::cli::init_logging();
    match cli.command {
        Command::Demo(args) => demo::run_cli(args),
        Command::Bench(args) => bench::run_cli(args),
        Command::Baseline(args) => bench::run_baseline_cli(args),
        Command::Eval(args) => bench::eval::run(&args),
        Command::Drill(args) => drill::run_cli(args),
        Command::Keep(args) => keep::run_cli(args),
    }
}
