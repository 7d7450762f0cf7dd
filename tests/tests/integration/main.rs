//! The one integration-test binary (as ripgrep does it): each module drives the real
//! `indexer` and `searcher` binaries as a user would, on 127.0.0.1 ports, in a temporary
//! directory of its own, over the real sample dumps in `../shared/corpus`.

mod bench;
mod browser;
mod containers;
mod coordinate;
mod demo;
mod failover;
mod generations;
mod heal;
mod hostile_net;
mod hostile_queries;
mod indexer_build;
mod integrity;
mod k8s_manifests;
mod link_pass;
mod object_store;
mod searcher_cluster;
mod searcher_node;
mod suggest;
