//! Command-line interface of the `searcher` binary: one sub-command per role.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cluster::ClusterConfig;
use crate::placement::Placement;
use crate::{frontend, node};

/// Searcher nodes and the scatter-gather front-end (the demo, benchmarks and drills are
/// the `wikisearch` binary of the `tools` crate).
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
    init_logging();
    match cli.command {
        Command::Node(args) => node::run_cli(args),
        Command::Frontend(args) => frontend::run_cli(args),
        Command::Placement(args) => print_placement(&args),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`) and rate-limited per call site
/// (the one set-up of every process: `shard_proto::logging`).
pub fn init_logging() {
    shard_proto::logging::init_logging();
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
