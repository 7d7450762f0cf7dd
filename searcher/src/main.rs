//! The `searcher` binary: parses flags and hands over to the library (see `cli.rs`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = searcher::cli::Cli::parse();
    match searcher::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("searcher: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
