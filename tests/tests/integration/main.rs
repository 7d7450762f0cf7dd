//! The one integration-test binary (as ripgrep does it): each module drives the real
//! `indexer` and `searcher` binaries as a user would, on 127.0.0.1 ports, in a temporary
//! directory of its own, over the real sample dumps in `../shared/corpus`.

mod failover;
mod searcher_cluster;
mod browser;
mod demo;
mod indexer_build;
mod bench;
mod searcher_node;
