//! The `wikisearch` binary: parses flags and hands over to the library (see `cli.rs`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tools::cli::Cli::parse();
    match tools::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wikisearch: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
