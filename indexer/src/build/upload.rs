//! Publishing a slice built locally into an S3 shard store (`indexer build --out
//! s3://bucket/prefix`), with the same guarantees as a directory store's atomic publish
//! (`shard_proto::store`): readers never see old and new shards of one slice together.
//!
//! The shards are built and published into a local staging directory first, exactly as
//! for a directory store. Then each live shard of the slice is uploaded under the store's
//! next generation name `<shard id>.g<generation>/`, its index files first (in parts
//! above 16 MiB) and its `manifest.json` last, so a shard directory with a manifest is
//! complete; nothing reads it yet, since the slice's record does not list it. Once every
//! shard is up, one PUT of the record `nIofK.slice.json` (S3 replaces an object
//! atomically) switches the slice; then the old generation's objects are deleted. A crash
//! before that PUT leaves the old generation live and the new one unlisted: the next
//! upload of the slice deletes it first. The files' blake3 are in the manifest, and
//! nodes check every download against them.
//!
//! There is no lock on S3: two builds of the same slice into one store at once are an
//! operator's error (each slice has one indexer).

use std::path::Path;

use shard_proto::manifest::{ShardManifest, MANIFEST_FILE};
use shard_proto::remote::RemoteStore;
use shard_proto::store::{generation_dir_name, shard_of_dir_name, ShardStore, SliceRecord};

use crate::error::{Error, Result};

/// Uploads the live shards of slice `node` of `nodes` of the local store `local` to
/// `remote` and switches the remote slice to them (see the module docs). Returns the
/// `s3://` URLs of the published shard directories.
pub fn upload_slice(
    local: &Path,
    remote: &RemoteStore,
    node: u32,
    nodes: u32,
) -> Result<Vec<String>> {
    let built = SliceRecord::read(local, node, nodes)?.ok_or_else(|| {
        Error::Invariant(format!(
            "no slice record n{node}of{nodes} in {}",
            local.display()
        ))
    })?;
    let store = ShardStore::S3(remote.clone());
    let old = store.slice_record(node, nodes)?;
    remove_unlisted(remote, old.as_ref(), node, nodes)?;
    let mut record = SliceRecord {
        node,
        nodes,
        generation: old.as_ref().map_or(1, |r| r.generation + 1),
        shards: Vec::new(),
    };
    for dir in &built.shards {
        let id = shard_of_dir_name(dir)
            .ok_or_else(|| Error::Invariant(format!("{dir:?} is not a shard directory name")))?;
        let name = generation_dir_name(id, record.generation);
        upload_shard(&local.join(dir), remote, &name)?;
        record.shards.push(name);
    }
    remote.put(&SliceRecord::file_name(node, nodes), record.to_json())?;
    tracing::info!(
        "published generation {} of slice n{node}of{nodes} to {}",
        record.generation,
        remote.location()
    );
    for stale in old.iter().flat_map(|r| &r.shards) {
        if let Err(e) = remote.delete_dir(stale) {
            tracing::warn!("removing the superseded {}: {e}", remote.url(stale));
        }
    }
    Ok(record.shards.iter().map(|name| remote.url(name)).collect())
}

/// Uploads one shard directory as `name`: its manifest's files, then the manifest.
fn upload_shard(dir: &Path, remote: &RemoteStore, name: &str) -> Result<()> {
    let manifest = ShardManifest::read(dir)?;
    for file in &manifest.files {
        remote.upload_file(&format!("{name}/{}", file.name), &dir.join(&file.name))?;
    }
    remote.upload_file(&format!("{name}/{MANIFEST_FILE}"), &dir.join(MANIFEST_FILE))?;
    tracing::info!(
        "uploaded {} ({} files, {} bytes)",
        remote.url(name),
        manifest.files.len(),
        manifest.index_bytes()
    );
    Ok(())
}

/// Deletes what uploads of this slice that died left: its shard directories that the
/// remote record does not list.
fn remove_unlisted(
    remote: &RemoteStore,
    record: Option<&SliceRecord>,
    node: u32,
    nodes: u32,
) -> Result<()> {
    for dir in remote.list()?.dirs {
        let ours = shard_of_dir_name(&dir).is_some_and(|id| id.node == node && id.nodes == nodes);
        // Without a record, directories named exactly `<shard id>` are live (a store
        // copied from an old directory store): only generation names are leftovers.
        let listed = match record {
            Some(record) => record.shards.contains(&dir),
            None => !dir.contains(".g"),
        };
        if ours && !listed {
            tracing::info!(
                "removing {} left by an interrupted upload",
                remote.url(&dir)
            );
            remote.delete_dir(&dir)?;
        }
    }
    Ok(())
}
