//! Indexer node library: turns one slice of a corpus into published, verified tantivy
//! shards. The binary in `main.rs` only parses flags; everything lives here so that the
//! searcher's demo and the tests can drive the very same code.

pub mod build;
pub mod cli;
pub mod error;
pub mod generations_cmd;
pub mod links;
pub mod scan;
pub mod slice_args;
pub mod synth_cmd;

pub use error::{Error, Result};
