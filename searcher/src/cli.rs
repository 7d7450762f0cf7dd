//! Command-line interface of the `searcher` binary: one sub-command per role.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cluster::ClusterConfig;
use crate::placement::Placement;
use crate::{bench, demo, drill, frontend, node};

/// Searcher nodes, the scatter-gather front-end, a one-command demo cluster, and tools
/// to load and break it.
#[derive(Debug, Parser)]
#[command(name = "searcher", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The searcher's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve this node's replicas over internal RPC.
    Node(node::NodeArgs),
    /// Serve the public HTTP API and search page, fanning out to the nodes.
    Frontend(frontend::FrontendArgs),
    /// Print which nodes hold which shard.
    Placement(PlacementArgs),
    /// Index a dump and run a local cluster with the search page, in one command.
    Demo(demo::DemoArgs),
    /// Load generator: drive a search URL with real queries and print latency figures.
    Bench(bench::BenchArgs),
    /// Single-process baselines the cluster is compared with (HTTP server, in-process).
    Baseline(bench::BaselineArgs),
    /// Run steady load, inject a fault, heal it, and report what users saw.
    Drill(drill::DrillArgs),
    /// The indexer's commands (`searcher indexer build ...` = `indexer build ...`).
    #[command(subcommand)]
    Indexer(indexer::cli::Command),
}

/// Flags of `searcher placement`.
#[derive(Debug, Args)]
pub struct PlacementArgs {
    /// The cluster file.
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // One logging set-up for both binaries (the indexer's, as `searcher indexer` runs it).
    indexer::cli::init_logging();
    match cli.command {
        Command::Node(args) => node::run_cli(args),
        Command::Frontend(args) => frontend::run_cli(args),
        Command::Placement(args) => print_placement(&args),
        Command::Demo(args) => demo::run_cli(args),
        Command::Bench(args) => bench::run_cli(args),
        Command::Baseline(args) => bench::run_baseline_cli(args),
        Command::Drill(args) => drill::run_cli(args),
        Command::Indexer(command) => indexer::cli::run(indexer::cli::Cli { command }),
    }
}

fn print_placement(args: &PlacementArgs) -> anyhow::Result<()> {
    let config = ClusterConfig::load(&args.config)?;
    let mut shards = Vec::new();
    for manifest in config.shard_manifests()? {
        match manifest {
            Ok(m) => shards.push(m.shard),
            // Placed all the same: its nodes report it as failed, and the table says where.
            Err(bad) => {
                eprintln!("warning: {bad}");
                shards.push(bad.shard);
            }
        }
    }
    let placement = Placement::for_cluster(&config, shards);
    println!("{:<16} replicas", "shard");
    for (shard, nodes) in &placement.replicas {
        println!("{:<16} {}", shard.to_string(), nodes.join(" "));
    }
    for node in &config.nodes {
        let held: Vec<String> = placement
            .shards_of(&node.id)
            .iter()
            .map(|s| s.to_string())
            .collect();
        println!(
            "node {} ({}) holds {}: {}",
            node.id,
            node.rpc,
            held.len(),
            held.join(" ")
        );
    }
    Ok(())
}
