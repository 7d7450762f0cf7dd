//! Shards in lanes: a node's M shards are built `lanes` at a time, each lane a writer
//! with `threads / lanes` of the writer threads (the same arena per thread), building
//! its shards one after the other: the first while the input is read, the rest from
//! their spools after the read.
//! `lanes` is the greatest common divisor of the shard count and the writer threads, so
//! every lane has as many shards and threads as every other and the lanes end together:
//! 1 shard is built by one writer with every thread; 6 shards on 2 threads by two lanes
//! of one thread, three shards each. A lone lane indexes its next shard while the
//! previous one commits and merges; with several lanes, each waits for its own commit
//! (the other lanes keep the cores busy), so no lane holds two arenas and the writers
//! stay within the budget's arenas.
//!
//! Why not M writers at once, each with 1/M of the budget (the first design): a writer
//! flushes a segment whenever its arena is full, so M small arenas make M times as many,
//! M times smaller segments, each repeating the common part of the vocabulary in its
//! term dictionary, and the final merges redo that work; with fewer threads than shards
//! the M writers also time-share the cores. Measured (README "Indexing", `bench_build
//! --shards 1,2,6`), a node building 6 shards lost about a third of its throughput that
//! way. Why lanes rather than one writer with every thread per shard in turn (the second
//! design): a tantivy writer makes at least one segment per thread, so a shard written
//! by T threads is T segments merged into one at its end, although its documents would
//! have fitted one arena; a lane's writer has one thread per arena's worth of segments
//! and a shard of a few arenas needs no merge at all.
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

/// How a node's shards share its writer threads: `lanes` writers at a time, each sized
/// `writer`. Shard `s` (in shard order) is built by lane `s % lanes`, as its
/// `s / lanes`-th shard: shards `0..lanes` while the input is read, the rest spooled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub lanes: usize,
    pub writer: WriterConfig,
}

impl Lanes {
    /// The lanes of `shards` shards (at least 1) over the writer `budget` (all threads).
    pub fn new(shards: usize, budget: WriterConfig) -> Lanes {
        let lanes = gcd(shards.max(1), budget.threads.max(1));
        Lanes {
            lanes,
            writer: WriterConfig {
                threads: budget.threads.max(1) / lanes,
                bytes_per_thread: budget.bytes_per_thread,
            },
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Finishes the `live` shards (one per lane, indexed during the read) while every lane
/// builds its share of the `later` shards from their spools (`later[i]` and `spools[i]`
/// are shard `lanes + i`). Returns every shard's document count, in shard order.
pub fn build_in_lanes(
    live: Vec<ShardWriter>,
    later: &[(ShardId, PathBuf)],
    spools: Vec<Spooled>,
    schema: &WikiSchema,
    lanes: Lanes,
    in_flight: &Arc<InFlight>,
) -> Result<Vec<u64>> {
    let n = live.len();
    let mut queues: Vec<Vec<(ShardId, &PathBuf, Spooled)>> = (0..n).map(|_| Vec::new()).collect();
    for (i, ((id, dir), spool)) in later.iter().zip(spools).enumerate() {
        queues[i % n].push((*id, dir, spool));
    }
    let per_lane = std::thread::scope(|scope| {
        let handles: Vec<_> = live
            .into_iter()
            .zip(queues)
            .map(|(first, queue)| {
                scope.spawn(move || build_in_turn(first, queue, schema, lanes, in_flight))
            })
            .collect();
        handles.into_iter().map(join).collect::<Result<Vec<_>>>()
    })?;
    let mut docs = vec![0; n + later.len()];
    for (lane, counts) in per_lane.into_iter().enumerate() {
        for (turn, count) in counts.into_iter().enumerate() {
            docs[lane + turn * n] = count;
        }
    }
    Ok(docs)
}

/// One lane: finishes `live`, then builds its spooled shards one at a time. A lone lane
/// indexes each while the previous one commits and merges (keeping the cores busy);
/// one of several waits for its own commit (the other lanes keep the cores busy), so it
/// never holds two arenas and the writers stay within the budget. Returns the document
/// counts in the lane's order (`live` first).
fn build_in_turn(
    live: ShardWriter,
    queue: Vec<(ShardId, &PathBuf, Spooled)>,
    schema: &WikiSchema,
    lanes: Lanes,
    in_flight: &Arc<InFlight>,
) -> Result<Vec<u64>> {
    let overlap_finish = lanes.lanes == 1;
    std::thread::scope(|scope| {
        let mut docs = Vec::with_capacity(queue.len() + 1);
        let mut finishing = Some(scope.spawn(move || live.finish()));
        for (id, dir, spool) in queue {
            if !overlap_finish {
                if let Some(previous) = finishing.take() {
                    docs.push(join(previous)?);
                }
            }
            let start = Instant::now();
            let shard = ShardWriter::create(id, dir, schema, lanes.writer)?;
            replay(&spool, &shard, schema, in_flight)?;
            tracing::info!(
                "shard {id}: {} documents ({:.1} MB spooled) queued in {:.1} s",
                spool.docs,
                spool.bytes as f64 / 1e6,
                start.elapsed().as_secs_f64()
            );
            spool.remove()?;
            if let Some(previous) = finishing.take() {
                docs.push(join(previous)?);
            }
            finishing = Some(scope.spawn(move || shard.finish()));
        }
        if let Some(last) = finishing {
            docs.push(join(last)?);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(threads: usize) -> WriterConfig {
        WriterConfig {
            threads,
            bytes_per_thread: 100 << 20,
        }
    }

    #[test]
    fn lanes_share_shards_and_threads_evenly_with_the_same_arena_per_thread() {
        for (shards, threads, lanes, per_lane) in [
            (1, 2, 1, 2),
            (2, 2, 2, 1),
            (6, 2, 2, 1),
            (3, 2, 1, 2),
            (6, 4, 2, 2),
            (6, 8, 2, 4),
            (4, 1, 1, 1),
        ] {
            let got = Lanes::new(shards, budget(threads));
            assert_eq!(
                (got.lanes, got.writer.threads),
                (lanes, per_lane),
                "{shards} shards on {threads} threads"
            );
            assert_eq!(got.writer.bytes_per_thread, 100 << 20);
            assert_eq!(shards % got.lanes, 0);
            assert_eq!(got.lanes * got.writer.threads, threads);
        }
    }
}
