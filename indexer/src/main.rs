//! The `indexer` binary: parses flags and hands over to the library.
//!
//! - `indexer scan`: read a dump (or one slice of it) and print what it holds;
//! - `indexer synth`: write a synthetic multistream dump for benchmarks at scale;
//! - `indexer links`: gather one slice's redirects and links for the link pass;
//! - `indexer build`: build this node's tantivy shards from its slice of the input.

use clap::Parser;

fn main() -> std::process::ExitCode {
    indexer::cli::init_logging();
    let cli = indexer::cli::Cli::parse();
    match indexer::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("indexer: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
