//! The corpus crate: the one place that turns a Wikipedia dump (MediaWiki XML, plain or
//! bzip2/gzip-compressed, multistream or not) or a JSON-lines corpus into a stream of
//! pages and clean documents, for one slice of the input at a time, plus a deterministic
//! synthetic dump generator for benchmarks at scale.
//!
//! Entry point: [`open`] a path with [`OpenOptions`] (which slice, optional multistream
//! index) and iterate the [`PageReader`]; [`to_document`] turns a page into the text the
//! indexer stores.

pub mod document;
pub mod error;
pub mod page;
pub mod reader;
pub mod split;
pub mod stats;
pub mod synth;
pub mod wikitext;

pub use document::{article_url, canonical_title, classify, to_document, Document, PageKind};
pub use error::{Error, Result};
pub use page::{Page, SiteInfo};
pub use reader::{
    open, open_spool, InputFormat, OpenOptions, PageEvent, PageReader, PageSpoolWriter,
    ReadProgress, Skip, SkipReason, SpoolSource,
};
pub use split::Split;
pub use stats::ScanStats;
pub use synth::{
    write_synthetic_dump, write_synthetic_dump_with, Markup, QueryTerms, SynthOptions, SynthSummary,
};
