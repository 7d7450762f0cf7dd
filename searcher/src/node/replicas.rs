//! Bringing a node's replicas from the shard store into its data directory, verifying
//! them, and opening the good ones for the life of the process.
//!
//! Each replica is assembled in a temporary directory as an independent copy of the
//! store's files (copied from a directory store, downloaded from an S3 one, see
//! `shard_proto::store::ShardSource::fetch_into`) (never a hard link: replicas sharing an inode would share every bad
//! block, and an in-place rewrite of the store would hit every node mapping it), verified
//! there against the manifest's blake3 checksums and the schema fingerprint, and only
//! then renamed into place, so a crash never leaves a half-copied replica that looks
//! complete. An existing copy whose manifest equals the store's and which verifies is
//! reused as is. A replica that fails any step is refused and reported with its reason;
//! the node serves the others. Once serving, a replica is re-verified in the background
//! ([`super::scrub`]); one found corrupt is dropped ([`Replica::drop_corrupt`]) and
//! reported with the file that failed.

use shard_proto::ranking::LinkColumns;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use shard_proto::manifest::{ShardManifest, MANIFEST_FILE};
use shard_proto::store::{generation_of_dir_name, ShardSource};
use shard_proto::wire::ReplicaState;
use shard_proto::{Analysis, ShardId, WikiSchema};
use tantivy::columnar::Column;
use tantivy::{DocAddress, Index, ReloadPolicy, Searcher};

use crate::cluster::{read_manifest, ClusterConfig};
use crate::error::{Error, Result};
use crate::placement::Placement;

/// Prefix of replicas being assembled; leftovers of a crashed run are removed at start.
pub const TMP_PREFIX: &str = ".installing-";

/// One opened, verified replica.
pub struct Replica {
    pub shard: ShardId,
    pub docs: u64,
    /// Kept for the life of the process: the `DocAddress`es of the query phase refer to
    /// this searcher's segments, and the fetch phase resolves them against it.
    pub searcher: Searcher,
    /// The `id` fast field of every segment, opened once (not per hit).
    id_columns: Vec<Column<u64>>,
    /// The link counts and priors of every segment, opened once (not per search).
    pub links: LinkColumns,
    /// Where the replica lives and what it must hold, for the background scrub.
    pub dir: PathBuf,
    pub manifest: ShardManifest,
    /// How its text was analyzed (from the manifest's schema): queries on it are parsed
    /// the same way.
    pub analysis: Analysis,
    /// The generation of the store directory it was installed from, if the store names one.
    pub generation: Option<u64>,
    /// Why the replica was dropped (set once: a dropped replica never serves again).
    dropped: OnceLock<String>,
    /// A read failed on it: the scrub re-verifies it next, before its regular turn.
    suspect: AtomicBool,
}

impl Replica {
    /// What the node reports for it while it serves.
    pub fn serving_state(&self) -> ReplicaState {
        ReplicaState::Serving {
            docs: self.docs,
            bytes: self.manifest.files.iter().map(|f| f.bytes).sum(),
            generation: self.generation,
        }
    }

    /// The page id of a document of this replica.
    pub fn page_id(&self, address: DocAddress) -> Option<u64> {
        self.id_columns
            .get(address.segment_ord as usize)?
            .first(address.doc_id)
    }

    /// Stops serving this replica for good, reporting `reason` (which names the file).
    pub fn drop_corrupt(&self, reason: String) {
        if self.dropped.set(reason.clone()).is_ok() {
            tracing::error!(shard = %self.shard, %reason, "replica dropped");
        }
    }

    /// Why the replica no longer serves, if it was dropped.
    pub fn dropped(&self) -> Option<&str> {
        self.dropped.get().map(String::as_str)
    }

    /// Asks the scrub to re-verify this replica soon (a read on it failed).
    pub fn mark_suspect(&self) {
        self.suspect.store(true, Ordering::Relaxed);
    }

    /// Whether a re-verification was asked for (and clears the request).
    pub fn take_suspect(&self) -> bool {
        self.suspect.swap(false, Ordering::Relaxed)
    }

    /// Whether `(segment, doc)` names a document of this replica (addresses come from
    /// the network and must be checked before tantivy indexes with them).
    pub fn contains(&self, segment: u32, doc: u32) -> bool {
        self.searcher
            .segment_readers()
            .get(segment as usize)
            .is_some_and(|reader| doc < reader.max_doc())
    }
}

/// The node's replicas: the ones it serves, and the state of every assigned one.
#[derive(Default)]
pub struct Replicas {
    pub serving: BTreeMap<ShardId, Arc<Replica>>,
    pub states: Vec<(ShardId, ReplicaState)>,
    /// Every shard of the store with a usable manifest, whoever it is placed on (what
    /// healing may have to install; read once here rather than listed again).
    pub in_store: Vec<ShardId>,
}

impl Replicas {
    fn record(&mut self, shard: ShardId, outcome: std::result::Result<Replica, String>) {
        match outcome {
            Ok(replica) => {
                tracing::info!(%shard, docs = replica.docs, "replica serving");
                self.states.push((shard, replica.serving_state()));
                self.serving.insert(shard, Arc::new(replica));
            }
            Err(reason) => {
                tracing::error!(%shard, %reason, "replica refused");
                self.states.push((shard, ReplicaState::Failed(reason)));
            }
        }
    }
}

/// Installs and opens every replica `node_id` is assigned by the placement of the shards
/// found in the store. Only an unusable store or data directory is an error; a bad
/// replica is a `Failed` state.
pub fn install_assigned(
    config: &ClusterConfig,
    node_id: &str,
    schema: &WikiSchema,
) -> Result<Replicas> {
    let data_dir = config.node(node_id)?.data_dir().to_path_buf();
    fs::create_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
    let sources: BTreeMap<ShardId, ShardSource> =
        config.open_store()?.live_shards()?.into_iter().collect();
    let store = scan_store(&sources);
    let placement = Placement::for_cluster(config, store.keys().copied());
    remove_leftovers(&data_dir, &placement.shards_of(node_id))?;
    let mut replicas = Replicas {
        in_store: store
            .iter()
            .filter(|(_, manifest)| manifest.is_ok())
            .map(|(shard, _)| *shard)
            .collect(),
        ..Replicas::default()
    };
    for shard in placement.shards_of(node_id) {
        let outcome = match &store[&shard] {
            Ok(manifest) => install_replica(&sources[&shard], &data_dir, manifest, schema)
                .map(|installed| installed.replica),
            Err(reason) => Err(reason.clone()),
        };
        replicas.record(shard, outcome);
    }
    Ok(replicas)
}

/// An installed, opened replica and the bytes copied for it (0: a verified copy of the
/// same build was already there).
pub struct Installed {
    pub replica: Replica,
    pub copied_bytes: u64,
}

/// Installs the store's shard `source` (a directory or S3 objects) into `data_dir` (or reuses a verified
/// copy of the same build already there: no byte moves) and opens it: the one install
/// path, at start-up and when healing.
pub fn install_replica(
    source: &ShardSource,
    data_dir: &Path,
    manifest: &ShardManifest,
    schema: &WikiSchema,
) -> std::result::Result<Installed, String> {
    use std::os::unix::fs::MetadataExt as _;
    // A reused copy keeps its manifest's inode; a fresh one is renamed into place.
    let inode = |dir: &Path| fs::metadata(dir.join(MANIFEST_FILE)).ok().map(|m| m.ino());
    let before = inode(&data_dir.join(manifest.shard.to_string()));
    let dir = install(source, data_dir, manifest, schema)?;
    let reused = before.is_some() && before == inode(&dir);
    opened(&dir, reused, source, manifest, schema)
}

/// Like [`install_replica`], with the files copied from a live replica on `peer` rather
/// than from the store (`source` still names the store's copy, for its generation).
pub fn install_replica_from_peer(
    peer: &crate::rpc::NodeClient,
    source: &ShardSource,
    data_dir: &Path,
    manifest: &ShardManifest,
    schema: &WikiSchema,
) -> std::result::Result<Installed, String> {
    let from = format!("node {}", peer.node_id());
    let copy = |staging: &Path, missing: &ShardManifest| {
        super::replica_chunks::copy_from_peer(peer, missing, staging)
    };
    let dir = install_with(data_dir, manifest, schema, &from, copy)?;
    opened(&dir, false, source, manifest, schema)
}

/// The installed copy in `dir`, opened.
fn opened(
    dir: &Path,
    reused: bool,
    source: &ShardSource,
    manifest: &ShardManifest,
    schema: &WikiSchema,
) -> std::result::Result<Installed, String> {
    let mut replica = open(dir, manifest, schema)?;
    replica.generation = generation_of_dir_name(source.name());
    let copied_bytes = match reused {
        true => 0,
        false => manifest.files.iter().map(|f| f.bytes).sum(),
    };
    Ok(Installed {
        replica,
        copied_bytes,
    })
}

/// Every live shard of the store with its manifest or why it cannot be read; a shard
/// with a bad manifest keeps its id, so the node it is placed on reports it instead of
/// silently not serving it.
fn scan_store(
    sources: &BTreeMap<ShardId, ShardSource>,
) -> BTreeMap<ShardId, std::result::Result<ShardManifest, String>> {
    sources
        .iter()
        .map(|(shard, source)| {
            let manifest = read_manifest(*shard, source)
                .map_err(|bad| format!("manifest in the shard store: {}", bad.reason));
            (*shard, manifest)
        })
        .collect()
}

/// Removes the replicas a crashed run left half-assembled, but those of `resume` (the
/// shards about to be installed: their installs keep what verifies).
fn remove_leftovers(data_dir: &Path, resume: &[ShardId]) -> Result<()> {
    let resumed: Vec<String> = resume.iter().map(|s| format!("{TMP_PREFIX}{s}")).collect();
    for entry in fs::read_dir(data_dir).map_err(|e| Error::io(data_dir, e))? {
        let entry = entry.map_err(|e| Error::io(data_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TMP_PREFIX) && !resumed.contains(&name) {
            fs::remove_dir_all(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// Makes `data_dir/<shard>` a verified copy of the store's shard `source` (a local
/// directory or S3 objects: fetched into a temporary directory beside it, verified, then
/// renamed into place); returns its path.
pub fn install(
    source: &ShardSource,
    data_dir: &Path,
    manifest: &ShardManifest,
    schema: &WikiSchema,
) -> std::result::Result<PathBuf, String> {
    let fetch = |staging: &Path, missing: &ShardManifest| {
        source
            .fetch_into(missing, staging)
            .map_err(|e| e.to_string())
    };
    install_with(data_dir, manifest, schema, &source.location(), fetch)
}

/// Makes `data_dir/<shard>` a verified copy of what `fetch` puts into a temporary
/// directory (the files of the manifest it is given: those the directory lacks; `from`
/// names where they come from, in errors); returns its path.
pub fn install_with(
    data_dir: &Path,
    manifest: &ShardManifest,
    schema: &WikiSchema,
    from: &str,
    fetch: impl FnOnce(&Path, &ShardManifest) -> std::result::Result<(), String>,
) -> std::result::Result<PathBuf, String> {
    let name = manifest.shard.to_string();
    let target = data_dir.join(&name);
    if is_verified_copy(&target, manifest, schema) {
        return Ok(target);
    }
    let staging = data_dir.join(format!("{TMP_PREFIX}{name}"));
    let assembled = assemble(&staging, manifest, fetch).and_then(|()| {
        ShardManifest::read_verified(&staging, schema)
            .map(drop)
            .map_err(|e| format!("{e} (copied from {from})"))
    });
    if let Err(reason) = assembled {
        let _ = fs::remove_dir_all(&staging);
        return Err(reason);
    }
    replace_dir(&staging, &target).map_err(|e| format!("installing {}: {e}", target.display()))?;
    Ok(target)
}

/// An existing copy is reused only if it is a copy of this very build and still verifies.
fn is_verified_copy(target: &Path, manifest: &ShardManifest, schema: &WikiSchema) -> bool {
    match ShardManifest::read_verified(target, schema) {
        Ok(existing) => existing == *manifest,
        Err(_) => false,
    }
}

/// Fills `staging` with the manifest's files, then writes the manifest, last: what makes
/// a directory look installed. Files an interrupted install (a crash, a kill) left there
/// that verify against the manifest (size and blake3) are kept, so a rerun resumes;
/// anything else there (the file being copied when it stopped) is removed and `fetch`
/// is asked for the missing files only.
fn assemble(
    staging: &Path,
    manifest: &ShardManifest,
    fetch: impl FnOnce(&Path, &ShardManifest) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let failed = |e: io::Error| format!("{}: {e}", staging.display());
    fs::create_dir_all(staging).map_err(failed)?;
    let mut missing = manifest.clone();
    missing.files.clear();
    let mut kept = Vec::new();
    for entry in &manifest.files {
        match manifest.verify_file(staging, entry, |_| {}) {
            Ok(()) => kept.push(entry.name.as_str()),
            Err(_) => missing.files.push(entry.clone()),
        }
    }
    for entry in fs::read_dir(staging).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        if !kept.contains(&entry.file_name().to_string_lossy().as_ref()) {
            let path = entry.path();
            let removed = match path.is_dir() {
                true => fs::remove_dir_all(&path),
                false => fs::remove_file(&path),
            };
            removed.map_err(failed)?;
        }
    }
    if !kept.is_empty() {
        tracing::info!(shard = %manifest.shard, kept = kept.len(), missing = missing.files.len(), "resuming an interrupted install");
    }
    if !missing.files.is_empty() {
        fetch(staging, &missing)?;
    }
    manifest.clone().write(staging).map_err(|e| e.to_string())
}

/// Puts `staging` at `target`, replacing an older copy (renames are atomic; the removal
/// of the stale copy is not, but a half-removed directory is a failed verification next
/// time, never a served one).
fn replace_dir(staging: &Path, target: &Path) -> io::Result<()> {
    if target.exists() {
        fs::remove_dir_all(target)?;
    }
    fs::rename(staging, target)
}

/// Opens a verified replica read-only: mmap directory, manual reload (shards never
/// change, and the default policy would start a file watcher), one searcher for good.
pub fn open(
    dir: &Path,
    manifest: &ShardManifest,
    schema: &WikiSchema,
) -> std::result::Result<Replica, String> {
    let open_err = |e: tantivy::TantivyError| format!("opening {}: {e}", dir.display());
    let built = manifest.check_schema(schema).map_err(|e| e.to_string())?;
    let index = Index::open_in_dir(dir).map_err(open_err)?;
    if index.schema() != built.schema {
        return Err("the index's schema differs from its manifest's".into());
    }
    // Snippets tokenize stored text with the field's tokenizer, which the index names.
    shard_proto::analysis::register(&index);
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(open_err)?;
    let searcher = reader.searcher();
    let docs = searcher.num_docs();
    if docs != manifest.docs {
        return Err(format!(
            "index holds {docs} documents, manifest says {}",
            manifest.docs
        ));
    }
    let id_columns = searcher
        .segment_readers()
        .iter()
        .map(|segment| segment.fast_fields().u64("id"))
        .collect::<tantivy::Result<Vec<_>>>()
        .map_err(open_err)?;
    let links = LinkColumns::open(&searcher, &built).map_err(open_err)?;
    Ok(Replica {
        shard: manifest.shard,
        docs,
        searcher,
        id_columns,
        links,
        dir: dir.to_path_buf(),
        manifest: manifest.clone(),
        analysis: built.analysis,
        generation: None,
        dropped: OnceLock::new(),
        suspect: AtomicBool::new(false),
    })
}
