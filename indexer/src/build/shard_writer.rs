//! One shard under construction: a tantivy `IndexWriter` in the shard's temporary
//! directory, fed clean documents from many threads, then committed, merged down to one
//! segment, fsynced and described by its manifest.
//!
//! Memory: tantivy's writer queues up to 10,000 documents per writer before
//! `add_document` blocks, which for long articles is far more than any budget. So every
//! document travels wrapped in a [`TrackedDoc`] that holds a share of an [`InFlight`] byte
//! budget and gives it back when tantivy drops it, i.e. once it has been indexed. Cleaners
//! block on that budget, which bounds the documents in the queues whatever the input size.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use shard_proto::manifest::{sync_dir, InputInfo, ShardManifest, MANIFEST_FORMAT};
use shard_proto::{title_key, ShardId, WikiSchema};
use tantivy::indexer::{IndexWriterOptions, NoMergePolicy};
use tantivy::schema::document::Document as TantivyDocumentTrait;
use tantivy::{doc, Index, IndexWriter, TantivyDocument};

use crate::error::{Error, Result};
use crate::links::ArticleSignals;

/// A byte budget shared by every document between cleaning and indexing.
pub struct InFlight {
    limit: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl InFlight {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(InFlight {
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// Blocks until `bytes` fit in the budget. A document larger than the whole budget
    /// still goes through alone, so nothing can deadlock.
    fn acquire(&self, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + bytes > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
    }

    fn release(&self, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= bytes;
        self.freed.notify_all();
    }
}

/// A tantivy document that returns its bytes to the [`InFlight`] budget when dropped.
pub struct TrackedDoc {
    doc: TantivyDocument,
    bytes: usize,
    budget: Arc<InFlight>,
}

impl TrackedDoc {
    /// Waits for room in `budget`, then wraps `doc`, accounted as `bytes`.
    pub fn new(doc: TantivyDocument, bytes: usize, budget: &Arc<InFlight>) -> Self {
        budget.acquire(bytes);
        TrackedDoc {
            doc,
            bytes,
            budget: Arc::clone(budget),
        }
    }
}

impl Drop for TrackedDoc {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

impl TantivyDocumentTrait for TrackedDoc {
    type Value<'a> = <TantivyDocument as TantivyDocumentTrait>::Value<'a>;
    type FieldsValuesIter<'a> = <TantivyDocument as TantivyDocumentTrait>::FieldsValuesIter<'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.doc.iter_fields_and_values()
    }
}

/// Turns a clean corpus document and what the link pass learned about it into a tantivy
/// document of the one schema (moving its strings where it can), and an estimate of the
/// memory it holds while queued.
pub fn to_tantivy(
    schema: &WikiSchema,
    d: corpus::Document,
    signals: ArticleSignals,
) -> (TantivyDocument, usize) {
    let f = schema.fields;
    let mut bytes = 256 + d.title.len() + d.body.len() + d.url.len();
    let mut doc = doc!(
        f.id => d.id,
        f.title_key => title_key(&d.title),
        f.title => d.title,
        f.body => d.body,
        f.url => d.url,
        f.links_in => signals.links_in,
    );
    for category in d.categories {
        bytes += category.len() + 32;
        doc.add_text(f.categories, category);
    }
    for redirect in signals.redirects {
        bytes += 2 * redirect.len() + 64;
        doc.add_text(f.redirect_keys, title_key(&redirect));
        doc.add_text(f.redirects, redirect);
    }
    for anchor in signals.anchors {
        bytes += anchor.len() + 32;
        doc.add_text(f.anchors, anchor);
    }
    (doc, bytes)
}

/// How a shard writer is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    pub threads: usize,
    /// Arena budget per indexing thread (tantivy requires at least 15 MB).
    pub bytes_per_thread: usize,
}

/// A shard being built in its temporary directory.
pub struct ShardWriter {
    pub id: ShardId,
    pub dir: PathBuf,
    writer: IndexWriter<TrackedDoc>,
    index: Index,
}

impl ShardWriter {
    /// Creates an empty index in `dir` (which must exist and be empty).
    pub fn create(id: ShardId, dir: &Path, schema: &WikiSchema, cfg: WriterConfig) -> Result<Self> {
        let t = |e| Error::tantivy(id, e);
        let index = Index::create_in_dir(dir, schema.schema.clone()).map_err(t)?;
        shard_proto::analysis::register(&index);
        let options = IndexWriterOptions::builder()
            .num_worker_threads(cfg.threads)
            .memory_budget_per_thread(cfg.bytes_per_thread)
            .num_merge_threads(1)
            .build();
        let writer = index.writer_with_options(options).map_err(t)?;
        // Segments are merged once, at the end: merging while indexing would redo the
        // same work at every level and compete with indexing for the few cores.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        Ok(ShardWriter {
            id,
            dir: dir.to_path_buf(),
            writer,
            index,
        })
    }

    /// Queues one document (blocks while tantivy's queue is full).
    pub fn add(&self, doc: TrackedDoc) -> Result<()> {
        self.writer
            .add_document(doc)
            .map(|_| ())
            .map_err(|e| Error::tantivy(self.id, e))
    }

    /// Commits, merges everything into one segment, waits for the merge and returns the
    /// number of documents.
    pub fn finish(self) -> Result<u64> {
        let id = self.id;
        let t = |e| Error::tantivy(id, e);
        shard_proto::commit_as_one_segment(&self.index, self.writer).map_err(t)?;
        let metas = self.index.searchable_segment_metas().map_err(t)?;
        Ok(metas.iter().map(|m| m.num_docs() as u64).sum())
    }
}

/// What goes into a shard's manifest besides its files.
pub struct ManifestInput<'a> {
    pub id: ShardId,
    pub schema: &'a WikiSchema,
    pub input: &'a InputInfo,
    pub docs: u64,
    pub skipped: BTreeMap<String, u64>,
}

/// fsyncs every file of a finished shard, writes its manifest (which fsyncs the
/// directory) and returns it.
pub fn seal(dir: &Path, m: ManifestInput<'_>) -> Result<ShardManifest> {
    let files = ShardManifest::describe_files(dir)?;
    for file in &files {
        let path = dir.join(&file.name);
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
    }
    sync_dir(dir)?;
    let mut manifest = ShardManifest {
        format: MANIFEST_FORMAT,
        shard: m.id,
        schema: m.schema.fingerprint(),
        tantivy_version: tantivy::version_string().to_string(),
        input: m.input.clone(),
        docs: m.docs,
        skipped: m.skipped,
        files,
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        checksum: String::new(),
    };
    manifest.write(dir)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn in_flight_budget_blocks_until_docs_are_dropped() {
        let budget = InFlight::new(100);
        let first = TrackedDoc::new(TantivyDocument::new(), 80, &budget);
        let waiter = {
            let budget = Arc::clone(&budget);
            thread::spawn(move || drop(TrackedDoc::new(TantivyDocument::new(), 80, &budget)))
        };
        thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "second doc must wait for the first");
        drop(first);
        waiter.join().unwrap();
        assert_eq!(*budget.used.lock().unwrap(), 0);
        // A document larger than the whole budget still passes alone.
        drop(TrackedDoc::new(TantivyDocument::new(), 1000, &budget));
    }

    #[test]
    fn shard_writer_indexes_merges_and_seals() {
        let tmp = tempfile::tempdir().unwrap();
        let schema = WikiSchema::new();
        let id = ShardId::new(0, 1, 0, 1).unwrap();
        let cfg = WriterConfig {
            threads: 2,
            bytes_per_thread: 15_000_000,
        };
        let writer = ShardWriter::create(id, tmp.path(), &schema, cfg).unwrap();
        let budget = InFlight::new(1 << 20);
        for n in 0..500u64 {
            let d = corpus::Document {
                id: n,
                title: format!("Title {n}"),
                url: format!("https://x/{n}"),
                body: "word ".repeat(50),
                categories: vec!["Cat".into()],
                lead_len: 10,
            };
            let (doc, bytes) = to_tantivy(&schema, d, ArticleSignals::default());
            writer.add(TrackedDoc::new(doc, bytes, &budget)).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), 500);
        let input = InputInfo {
            path: "x".into(),
            bytes: 1,
            format: "xml".into(),
        };
        let manifest = seal(
            tmp.path(),
            ManifestInput {
                id,
                schema: &schema,
                input: &input,
                docs: 500,
                skipped: BTreeMap::new(),
            },
        )
        .unwrap();
        let read = ShardManifest::read_verified(tmp.path(), &schema).unwrap();
        assert_eq!(read, manifest);
        let index = Index::open_in_dir(tmp.path()).unwrap();
        assert_eq!(index.searchable_segment_ids().unwrap().len(), 1);
    }
}
