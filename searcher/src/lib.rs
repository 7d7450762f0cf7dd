//! Searcher side of the engine.
//!
//! - [`cluster`] and [`placement`]: the cluster file and the shard-to-node table every
//!   process derives from it;
//! - [`node`]: the shard-serving process (leaf): installs and verifies its replicas, serves
//!   statistics, query and fetch phases over RPC;
//! - [`rpc`]: the typed client for that RPC;
//! - [`frontend`]: the stateless scatter-gather front-end (root): replica choice,
//!   failover, merging, the public JSON API, the search page and metrics;
//! - [`bench`]: the load generator and the single-process baselines it is compared with;
//! - [`demo`] and [`drill`]: a local cluster in one command, and fault injection under load;
//! - [`snippets`]: highlighted snippets, cut the same way by nodes and baselines.

pub mod bench;
pub mod cli;
pub mod cluster;
pub mod cpu;
pub mod demo;
pub mod drill;
pub mod error;
pub mod frontend;
pub mod in_flight;
pub mod node;
pub mod placement;
pub mod rpc;
pub mod shutdown;
pub mod snippets;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
