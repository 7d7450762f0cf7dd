//! Command-line interface of the `indexer` binary (the demo and the benchmarks of the
//! `tools` crate start that binary as separate processes).

use clap::{Parser, Subcommand};

use crate::{build, generations_cmd, links, scan, synth_cmd};

/// Indexer node: reads its slice of a crawled corpus and builds tantivy shards.
#[derive(Debug, Parser)]
#[command(name = "indexer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The indexer's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a dump (or one slice of it) and print page counts and read speed.
    Scan(scan::ScanArgs),
    /// Write a deterministic synthetic multistream dump (.xml.bz2) and its index.
    Synth(synth_cmd::SynthArgs),
    /// Gather this node's slice's redirects and links for the link pass (run it on
    /// every slice before `build --links`).
    Links(links::LinksArgs),
    /// Build this node's shards from its slice of the input.
    Build(build::BuildArgs),
    /// List, switch or roll back the index generations of a shard store.
    Generations(generations_cmd::GenerationsArgs),
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Synth(args) => synth_cmd::run(&args),
        Command::Links(args) => links::collect::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Generations(args) => generations_cmd::run(&args),
    }
}

pub use shard_proto::logging::init_logging;
