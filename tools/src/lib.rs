//! The lab around the engine, apart from the serving code (the `searcher` crate) that it
//! drives and measures. Its binary is `wikisearch`.
//!
//! - [`demo`]: from a dump to a running local cluster with the search page, in one command;
//! - [`bench`]: the load generator, the single-process baselines the cluster is compared
//!   with, and the comparison that runs them all on the same documents;
//! - [`drill`]: steady load, one injected fault, and a report of what users saw;
//! - [`supervisor`]: the one way this crate (and the integration tests) start, watch and
//!   stop child processes; [`proc_stats`]: CPU time and liveness read from `/proc`;
//! - [`keep`]: runs a node the drill restarted only as long as the demo it belongs to;
//! - [`binaries`]: where the real `searcher` and `indexer` binaries are (built fresh when
//!   run through `cargo run`).

pub mod bench;
pub mod binaries;
pub mod cli;
pub mod demo;
pub mod drill;
pub mod error;
pub mod keep;
pub mod proc_stats;
pub mod supervisor;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
