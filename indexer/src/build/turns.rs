//! Shards in turn: after the read, the shards whose documents were spooled are indexed
//! one after the other, each by a writer holding the whole writer budget and every
//! writer thread, while the previous shard commits and merges.
//!
//! Why not M writers at once, each with 1/M of the budget (the design before): a writer
//! flushes a segment whenever its arena is full, so M small arenas make M times as many,
//! M times smaller segments, each repeating the common part of the vocabulary in its
//! term dictionary, and the final merges redo that work; with fewer threads than shards
//! the M writers also time-share the cores. Measured (README "Indexing", `bench_build
//! --shards 1,2,6`), a node building 6 shards lost about a third of its throughput that
//! way. In turn, every shard is built as a 1-shard build would build it, and the merges
//! overlap with indexing: only the last shard's merge runs alone.
//!
//! What it costs: the spooled documents are written to and read back from disk once
//! (cleaned text, about half of the XML it came from; the page cache usually keeps it),
//! and disk space for them until their turn.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::ScopedJoinHandle;
use std::time::Instant;

use shard_proto::{ShardId, WikiSchema};

use super::shard_writer::{to_tantivy, InFlight, ShardWriter, TrackedDoc, WriterConfig};
use super::spool::Spooled;
use crate::error::Result;

/// Finishes the `live` shard (indexed during the read) while the `later` shards are
/// built from their spools, one at a time; at most one commit-and-merge runs beside the
/// indexing. Returns every shard's document count, in shard order (`live` first).
pub fn build_in_turn(
    live: ShardWriter,
    later: &[(ShardId, PathBuf)],
    spools: Vec<Spooled>,
    schema: &WikiSchema,
    writer: WriterConfig,
    in_flight: &Arc<InFlight>,
) -> Result<Vec<u64>> {
    std::thread::scope(|scope| {
        let mut docs = Vec::with_capacity(later.len() + 1);
        let mut merging = scope.spawn(move || live.finish());
        for ((id, dir), spool) in later.iter().zip(spools) {
            let start = Instant::now();
            let shard = ShardWriter::create(*id, dir, schema, writer)?;
            replay(&spool, &shard, schema, in_flight)?;
            tracing::info!(
                "shard {id}: {} documents ({:.1} MB spooled) queued in {:.1} s",
                spool.docs,
                spool.bytes as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            spool.remove()?;
            docs.push(join(merging)?);
            merging = scope.spawn(move || shard.finish());
        }
        docs.push(join(merging)?);
        Ok(docs)
    })
}

/// Feeds a spool's documents to the shard's writer, as the live path would have.
fn replay(
    spool: &Spooled,
    writer: &ShardWriter,
    schema: &WikiSchema,
    in_flight: &Arc<InFlight>,
) -> Result<()> {
    let mut reader = spool.read()?;
    while let Some((doc, signals)) = reader.next_doc()? {
        let (doc, bytes) = to_tantivy(schema, doc, signals);
        writer.add(TrackedDoc::new(doc, bytes, in_flight))?;
    }
    Ok(())
}

fn join<T>(handle: ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
