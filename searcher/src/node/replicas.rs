//! Bringing a node's replicas from the shard store into its data directory, verifying
//! them, and opening the good ones for the life of the process.
//!
//! Each replica is assembled in a temporary directory (hard links, falling back to copies
//! across file systems), verified there against the manifest's blake3 checksums and the
//! schema fingerprint, and only then renamed into place, so a crash never leaves a
//! half-copied replica that looks complete. An existing copy whose manifest equals the
//! store's and which verifies is reused as is. A replica that fails any step is refused
//! and reported with its reason; the node serves the others.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shard_proto::manifest::{ShardManifest, MANIFEST_FILE};
use shard_proto::wire::ReplicaState;
use shard_proto::{ShardId, WikiSchema};
use tantivy::columnar::Column;
use tantivy::{DocAddress, Index, ReloadPolicy, Searcher};

use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};
use crate::placement::Placement;

/// Prefix of replicas being assembled; leftovers of a crashed run are removed at start.
const TMP_PREFIX: &str = ".installing-";

/// One opened, verified replica.
pub struct Replica {
    pub shard: ShardId,
    pub docs: u64,
    /// Kept for the life of the process: the `DocAddress`es of the query phase refer to
    /// this searcher's segments, and the fetch phase resolves them against it.
    pub searcher: Searcher,
    /// The `id` fast field of every segment, opened once (not per hit).
    id_columns: Vec<Column<u64>>,
}

impl Replica {
    /// The page id of a document of this replica.
    pub fn page_id(&self, address: DocAddress) -> Option<u64> {
        self.id_columns
            .get(address.segment_ord as usize)?
            .first(address.doc_id)
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
}

impl Replicas {
    fn record(&mut self, shard: ShardId, outcome: std::result::Result<Replica, String>) {
        match outcome {
            Ok(replica) => {
                tracing::info!(%shard, docs = replica.docs, "replica serving");
                self.states
                    .push((shard, ReplicaState::Serving { docs: replica.docs }));
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
    remove_leftovers(&data_dir)?;
    let store = scan_store(config)?;
    let placement = Placement::for_cluster(config, store.keys().copied());
    let mut replicas = Replicas::default();
    for shard in placement.shards_of(node_id) {
        let outcome = match &store[&shard] {
            Ok(manifest) => install(&config.shard_store, &data_dir, manifest, schema)
                .and_then(|dir| open(&dir, manifest, schema)),
            Err(reason) => Err(reason.clone()),
        };
        replicas.record(shard, outcome);
    }
    Ok(replicas)
}

/// Every shard directory of the store with its manifest or why it cannot be read; a shard
/// with a bad manifest keeps its id, so the node it is placed on reports it instead of
/// silently not serving it.
fn scan_store(
    config: &ClusterConfig,
) -> Result<BTreeMap<ShardId, std::result::Result<ShardManifest, String>>> {
    Ok(config
        .shard_manifests()?
        .into_iter()
        .map(|manifest| match manifest {
            Ok(m) => (m.shard, Ok(m)),
            Err(bad) => (
                bad.shard,
                Err(format!("manifest in the shard store: {}", bad.reason)),
            ),
        })
        .collect())
}

/// Removes replicas a crashed run left half-assembled.
fn remove_leftovers(data_dir: &Path) -> Result<()> {
    for entry in fs::read_dir(data_dir).map_err(|e| Error::io(data_dir, e))? {
        let entry = entry.map_err(|e| Error::io(data_dir, e))?;
        if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            fs::remove_dir_all(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// Makes `data_dir/<shard>` a verified copy of the store's shard; returns its path.
pub fn install(
    store: &Path,
    data_dir: &Path,
    manifest: &ShardManifest,
    schema: &WikiSchema,
) -> std::result::Result<PathBuf, String> {
    let name = manifest.shard.to_string();
    let source = store.join(&name);
    let target = data_dir.join(&name);
    if is_verified_copy(&target, manifest, schema) {
        return Ok(target);
    }
    let staging = data_dir.join(format!("{TMP_PREFIX}{name}"));
    let assembled = assemble(&source, &staging, manifest).and_then(|()| {
        ShardManifest::read_verified(&staging, schema)
            .map(drop)
            .map_err(|e| e.to_string())
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

/// Links (or copies) the manifest's files and the manifest itself into `staging`.
fn assemble(
    source: &Path,
    staging: &Path,
    manifest: &ShardManifest,
) -> std::result::Result<(), String> {
    let _ = fs::remove_dir_all(staging);
    fs::create_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let names = manifest.files.iter().map(|f| f.name.as_str());
    for name in names.chain([MANIFEST_FILE]) {
        if name.contains('/') || name.contains("..") {
            return Err(format!("manifest lists a file outside the shard: {name:?}"));
        }
        link_or_copy(&source.join(name), &staging.join(name))
            .map_err(|e| format!("{}: {e}", source.join(name).display()))?;
    }
    Ok(())
}

/// Hard links share the store's sealed files at no cost; a copy is the fallback when the
/// data directory is on another file system (or links are not permitted).
fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(_) => fs::copy(from, to).map(drop),
    }
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
    let index = Index::open_in_dir(dir).map_err(open_err)?;
    if index.schema() != schema.schema {
        return Err("the index's schema differs from this binary's".into());
    }
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
    Ok(Replica {
        shard: manifest.shard,
        docs,
        searcher,
        id_columns,
    })
}
