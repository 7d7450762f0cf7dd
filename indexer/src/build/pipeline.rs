//! The streaming part of a build: read → classify → clean → route → index, with every
//! stage running at once so that decompression and parsing overlap with tantivy.
//!
//! - One reader thread drives the corpus `PageReader` (which may decompress on its own
//!   threads), counts every page by kind, keeps articles and sends them in batches of
//!   about `batch_bytes` through a bounded channel. Redirects and other namespaces are
//!   counted and dropped; pages the reader skipped are counted against the shard their id
//!   routes to.
//! - A dedicated rayon pool pulls batches (`par_bridge`, no barrier between batches),
//!   cleans each article (`corpus::to_document`), adds what the link pass knows about it
//!   (`crate::links::Signals`), routes it with `ShardId::route` and hands it to that
//!   shard's [`ShardTarget`]: the tantivy writer of the shard indexed now (whose own
//!   threads index it), or the spool of a shard whose turn comes after the read
//!   (`spool.rs`; why shards are built in lanes: `turns.rs`).
//!
//! Memory stays bounded by construction: the channel holds at most `channel_batches`
//! batches, each cleaner holds one, and cleaned documents wait for tantivy under the
//! [`InFlight`] byte budget. A fatal read error is returned after the pages before it
//! were processed; the caller then publishes nothing.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use corpus::{
    canonical_title, classify, to_document, Page, PageEvent, PageKind, PageReader, ScanStats,
    SiteInfo,
};
use crossbeam_channel::{bounded, Sender};
use rayon::iter::{ParallelBridge, ParallelIterator};
use shard_proto::{ShardId, WikiSchema};

use super::progress::Counters;
use super::shard_writer::{to_tantivy, InFlight, ShardWriter, TrackedDoc};
use super::spool::SpoolWriter;
use crate::error::{Error, Result};
use crate::links::Signals;

/// Skip reason for an article whose cleaning panicked (a cleaner bug, reported per page
/// instead of taking the build down).
pub const CLEANER_PANIC: &str = "cleaner_panic";
/// Detailed warnings logged per skipped page before only counting.
const MAX_SKIP_WARNINGS: u64 = 20;
/// Batches never hold more pages than this, whatever their size.
const MAX_BATCH_PAGES: usize = 256;

/// Sizes of the pipeline's buffers and pools, and the link pass's signals.
#[derive(Clone)]
pub struct PipelineConfig<'a> {
    pub clean_threads: usize,
    pub batch_bytes: usize,
    pub channel_batches: usize,
    pub in_flight: Arc<InFlight>,
    pub signals: &'a Signals,
}

/// Where one shard's documents go while the input is read.
pub enum ShardTarget<'a> {
    /// Indexed at once by this writer.
    Live(&'a ShardWriter),
    /// Appended to the shard's spool, indexed after the read.
    Spool(&'a Mutex<SpoolWriter>),
}

/// What went through the pipeline.
#[derive(Debug, Default)]
pub struct PipelineOutput {
    /// Pages by kind and reader skips by reason (for the whole slice).
    pub stats: ScanStats,
    /// Per shard: skipped pages that route to it, by reason.
    pub shard_skipped: Vec<BTreeMap<String, u64>>,
    /// Per shard: documents handed to its writer.
    pub shard_docs: Vec<u64>,
    /// Input bytes of the slice consumed.
    pub bytes_read: u64,
}

/// Reads the whole slice and feeds `targets` (one per shard, in shard order).
pub fn run(
    reader: PageReader,
    targets: &[ShardTarget<'_>],
    schema: &WikiSchema,
    cfg: &PipelineConfig<'_>,
    counters: &Counters,
) -> Result<PipelineOutput> {
    let shards = targets.len();
    let site = reader.siteinfo().clone();
    let progress = reader.progress();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.clean_threads)
        .thread_name(|i| format!("clean-{i}"))
        .build()
        .map_err(|e| Error::Config(format!("cannot start the cleaning threads: {e}")))?;
    let (tx, rx) = bounded::<Vec<Page>>(cfg.channel_batches);
    let sink = Sink {
        targets,
        schema,
        site: &site,
        signals: cfg.signals,
        in_flight: &cfg.in_flight,
        counters,
        docs: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        panics: Mutex::new(vec![BTreeMap::new(); shards]),
    };
    let (read, indexed) = std::thread::scope(|scope| {
        let read = std::thread::Builder::new()
            .name("read".into())
            .spawn_scoped(scope, || {
                read_slice(reader, tx, shards, cfg.batch_bytes, counters)
            })
            .expect("spawn reader thread");
        // Returning early drops `rx`, which unblocks and stops the reader.
        let indexed = pool.install(|| rx.into_iter().par_bridge().try_for_each(|b| sink.index(b)));
        (read.join(), indexed)
    });
    let read = read.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    indexed?;
    let (stats, mut shard_skipped) = read?;
    let panics = sink.panics.into_inner().unwrap_or_else(|e| e.into_inner());
    for (skipped, extra) in shard_skipped.iter_mut().zip(panics) {
        for (reason, n) in extra {
            *skipped.entry(reason).or_default() += n;
        }
    }
    Ok(PipelineOutput {
        stats,
        shard_skipped,
        shard_docs: sink
            .docs
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect(),
        bytes_read: progress.bytes_read(),
    })
}

type ReadOutcome = (ScanStats, Vec<BTreeMap<String, u64>>);

/// The reader thread: counts every event, batches articles, routes skips.
fn read_slice(
    reader: PageReader,
    tx: Sender<Vec<Page>>,
    shards: usize,
    batch_bytes: usize,
    counters: &Counters,
) -> Result<ReadOutcome> {
    let mut stats = ScanStats::default();
    let mut shard_skipped = vec![BTreeMap::new(); shards];
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for event in reader {
        let event = event.map_err(|error| Error::Read {
            pages: stats.pages,
            error,
        })?;
        stats.record(&event);
        counters.pages.fetch_add(1, Ordering::Relaxed);
        match event {
            PageEvent::Page(page) if classify(&page) == PageKind::Article => {
                bytes += page.wikitext.len() + page.title.len() + 128;
                batch.push(page);
                if bytes >= batch_bytes || batch.len() >= MAX_BATCH_PAGES {
                    bytes = 0;
                    if tx.send(std::mem::take(&mut batch)).is_err() {
                        // The indexing side failed; its error is the one reported.
                        return Ok((stats, shard_skipped));
                    }
                }
            }
            PageEvent::Page(_) => {}
            PageEvent::Skipped(skip) => {
                let skipped_so_far = stats.skipped_total();
                if skipped_so_far <= MAX_SKIP_WARNINGS {
                    tracing::warn!(
                        "skipped page (id {:?}, title {:?}) at offset {}: {}: {}{}",
                        skip.page_id,
                        skip.title,
                        skip.offset,
                        skip.reason,
                        skip.detail,
                        if skipped_so_far == MAX_SKIP_WARNINGS {
                            " (further skips are only counted)"
                        } else {
                            ""
                        }
                    );
                }
                // A page without an id cannot be routed: it only shows in the summary.
                if let Some(id) = skip.page_id {
                    let shard = ShardId::route(id, shards as u32) as usize;
                    *shard_skipped[shard]
                        .entry(skip.reason.as_str().to_string())
                        .or_default() += 1;
                }
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok((stats, shard_skipped))
}

/// The cleaning side: shared by every cleaner thread.
struct Sink<'a> {
    targets: &'a [ShardTarget<'a>],
    schema: &'a WikiSchema,
    site: &'a SiteInfo,
    signals: &'a Signals,
    in_flight: &'a Arc<InFlight>,
    counters: &'a Counters,
    docs: Vec<AtomicU64>,
    panics: Mutex<Vec<BTreeMap<String, u64>>>,
}

impl Sink<'_> {
    /// Cleans, routes and queues one batch of articles.
    fn index(&self, batch: Vec<Page>) -> Result<()> {
        let shards = self.targets.len() as u32;
        for page in batch {
            let shard = ShardId::route(page.id, shards) as usize;
            let cleaned = catch_unwind(AssertUnwindSafe(|| to_document(&page, self.site)));
            let Ok(document) = cleaned else {
                tracing::error!(
                    "cleaning page id {} ({:?}) panicked: skipped, counted as {CLEANER_PANIC}",
                    page.id,
                    page.title
                );
                let mut panics = self.panics.lock().unwrap_or_else(|e| e.into_inner());
                *panics[shard].entry(CLEANER_PANIC.to_string()).or_default() += 1;
                continue;
            };
            drop(page);
            let signals = canonical_title(&document.title)
                .map(|title| self.signals.get(&title))
                .unwrap_or_default();
            match &self.targets[shard] {
                ShardTarget::Live(writer) => {
                    let (doc, bytes) = to_tantivy(self.schema, document, signals);
                    writer.add(TrackedDoc::new(doc, bytes, self.in_flight))?;
                }
                ShardTarget::Spool(spool) => spool
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .write(&document, &signals)?,
            }
            self.docs[shard].fetch_add(1, Ordering::Relaxed);
            self.counters.docs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
