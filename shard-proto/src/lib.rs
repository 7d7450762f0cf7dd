//! Everything two nodes must agree on, defined once: the tantivy schema and query parser
//! ([`schema`]), how a person's query is read ([`query`]), how a parsed query is scored
//! ([`ranking`]), how shards are named
//! ([`shard_id`]), how text becomes terms per language ([`analysis`]), the manifest that proves a shard copy is complete ([`manifest`]), which
//! shard directories of a store are live and how to fetch them ([`store`], on S3 [`remote`]), the global BM25 statistics that make
//! sharded scores exact ([`stats`]), what one query may cost ([`limits`]), the RPC
//! messages between the front-end and searcher nodes ([`wire`]), how those messages are
//! authenticated ([`auth`]) and the rate-limited logging every process uses ([`logging`]).
//!
//! Indexers, searcher nodes and front-ends all link this crate, so a change here is a
//! change of the on-disk or on-the-wire format: bump [`schema::SCHEMA_VERSION`] or
//! [`wire::WIRE_VERSION`] accordingly.

pub mod analysis;
pub mod auth;
pub mod error;
pub mod generation;
pub mod limits;
pub mod logging;
pub mod manifest;
pub mod query;
pub mod ranking;
pub mod remote;
pub mod schema;
pub mod shard_id;
pub mod stats;
pub mod store;
pub mod wire;

pub use analysis::Analysis;
pub use error::{Error, Result};
pub use limits::QueryLimits;
pub use ranking::rank;
pub use schema::{
    commit_as_one_segment, prefix_key, query_parser, title_key, weighted_query_parser,
    ParsersByAnalysis, SchemaFields, WikiSchema,
};
pub use shard_id::ShardId;
pub use stats::GlobalStats;
