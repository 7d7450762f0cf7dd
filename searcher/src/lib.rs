//! Searcher side of the engine.
//!
//! - [`cluster`], [`addr`] and [`placement`]: the cluster file, node addresses
//!   (`host:port`, resolved at connect) and the shard-to-node table every process derives
//!   from it; [`cluster_watch`]: following the file's changes while running;
//! - [`node`]: the shard-serving process (leaf): installs and verifies its replicas, serves
//!   statistics, query and fetch phases over RPC;
//! - [`rpc`]: the typed client for that RPC;
//! - [`serve`]: the HTTP server loop both serve with, and its limits;
//! - [`frontend`]: the stateless scatter-gather front-end (root): replica choice,
//!   failover, merging, the public JSON API, the search page and metrics;
//! - [`model`]: the public API's JSON documents and limits, shared with the tools and tests;
//! - [`snippets`]: highlighted snippets, cut the same way by nodes and baselines.
//!
//! Only serving code lives here. The demo, the load generator, the baselines and the
//! failover drill are the `tools` crate (binary `wikisearch`), which uses this library:
//! the leaf, its replicas and the snippets are public so that its in-process baselines
//! search exactly as a node does.

pub mod addr;
pub mod cli;
pub mod cluster;
pub mod cluster_watch;
pub mod error;
pub mod frontend;
pub mod in_flight;
pub mod model;
pub mod node;
pub mod placement;
pub mod rpc;
pub mod serve;
pub mod shutdown;
pub mod snippets;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
