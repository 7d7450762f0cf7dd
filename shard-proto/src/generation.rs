//! Index generations: whole sets of shards built from one input, published side by side
//! in one shard store, and the one-line pointer (the alias) naming the live one.
//!
//! Layout of a store (a directory or an S3 prefix):
//! - the shards at the top of the store (as every store had them before generations) are
//!   the generation [`BASE`];
//! - `generations/<id>/` is generation `<id>`: a store of its own, in the same format
//!   (slice records, `<shard id>.g<n>/` directories), written by `indexer build
//!   --generation <id>`;
//! - [`ALIAS_FILE`] names the live generation in one line. A store without it serves
//!   [`BASE`], exactly as before generations existed. It is replaced atomically: written
//!   beside and renamed over on a directory, one PUT of a small object on S3.
//!   [`PREVIOUS_FILE`] remembers the generation live before the last switch, for a
//!   rollback without naming it.
//!
//! [`switch`] refuses a generation that is missing or incomplete (a slice without all its
//! shards, a manifest missing or unreadable, a file listed but absent), and is idempotent:
//! switching to the live generation changes nothing, so rerunning a switch interrupted by a
//! crash is harmless (the alias is either the old one or the new one, never half of each).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{sync_dir, ShardManifest};
use crate::store::{ShardStore, StoreLocation};
use crate::ShardId;

/// The generation of the shards at the top of a store.
pub const BASE: &str = "base";
/// The alias: the live generation's id, one line, at the top of the store.
pub const ALIAS_FILE: &str = "LIVE_GENERATION";
/// The generation live before the last switch (what `rollback` returns to by default).
pub const PREVIOUS_FILE: &str = "PREVIOUS_GENERATION";
/// The directory (or S3 prefix) holding the named generations.
pub const GENERATIONS_DIR: &str = "generations";
/// Longest generation id.
pub const MAX_ID_BYTES: usize = 64;

/// Checks a generation id: 1 to [`MAX_ID_BYTES`] ASCII letters, digits, `-`, `_` or `.`,
/// not starting with `.` (it names a directory and travels in URLs and on the wire).
pub fn check_id(id: &str) -> Result<()> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    match valid {
        true => Ok(()),
        false => Err(Error::Store(format!(
            "{id:?} is not a generation id (1 to {MAX_ID_BYTES} letters, digits, '-', '_' or \
             '.', not starting with '.')"
        ))),
    }
}

/// Where generation `id` of the store at `store` is (the store itself for [`BASE`]).
pub fn location(store: &StoreLocation, id: &str) -> StoreLocation {
    match (id, store) {
        (BASE, _) => store.clone(),
        (_, StoreLocation::Dir(dir)) => StoreLocation::Dir(dir.join(GENERATIONS_DIR).join(id)),
        (_, StoreLocation::S3(at)) => {
            let mut at = at.clone();
            let sub = format!("{GENERATIONS_DIR}/{id}");
            at.prefix = match at.prefix.as_str() {
                "" => sub,
                prefix => format!("{prefix}/{sub}"),
            };
            StoreLocation::S3(at)
        }
    }
}

/// `indexer build --out OUT --generation ID` writes to this (a path or an `s3://` URL).
pub fn out_path(out: &Path, id: &str) -> PathBuf {
    match id {
        BASE => out.to_path_buf(),
        _ => out.join(GENERATIONS_DIR).join(id),
    }
}

/// Generation `id` of `store`, opened (the store itself for [`BASE`]).
pub fn open(store: &ShardStore, id: &str) -> ShardStore {
    match (id, store) {
        (BASE, _) => store.clone(),
        (_, ShardStore::Dir(dir)) => ShardStore::Dir(dir.join(GENERATIONS_DIR).join(id)),
        (_, ShardStore::S3(remote)) => {
            ShardStore::S3(remote.sub(&format!("{GENERATIONS_DIR}/{id}")))
        }
    }
}

/// The live generation: the alias's, or [`BASE`] without one.
pub fn live(store: &ShardStore) -> Result<String> {
    Ok(read_pointer(store, ALIAS_FILE)?.unwrap_or_else(|| BASE.to_string()))
}

/// The generation live before the last switch, if a switch recorded one.
pub fn previous(store: &ShardStore) -> Result<Option<String>> {
    read_pointer(store, PREVIOUS_FILE)
}

/// Reads a one-line pointer file at the top of the store.
fn read_pointer(store: &ShardStore, name: &str) -> Result<Option<String>> {
    let bytes = match store {
        ShardStore::Dir(dir) => match fs::read(dir.join(name)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(dir.join(name), e)),
        },
        ShardStore::S3(remote) => match remote.get(name)? {
            Some(bytes) => bytes.to_vec(),
            None => return Ok(None),
        },
    };
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    check_id(&text).map_err(|e| Error::Store(format!("{store}/{name}: {e}")))?;
    Ok(Some(text))
}

/// Replaces a one-line pointer file atomically (see the module docs).
fn write_pointer(store: &ShardStore, name: &str, id: &str) -> Result<()> {
    let line = format!("{id}\n").into_bytes();
    match store {
        ShardStore::Dir(dir) => {
            let temp = dir.join(format!(".{name}.{}", std::process::id()));
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut file = fs::File::create(&temp)?;
                file.write_all(&line)?;
                file.sync_all()
            };
            write().map_err(|e| Error::io(&temp, e))?;
            fs::rename(&temp, dir.join(name)).map_err(|e| Error::io(dir.join(name), e))?;
            sync_dir(dir)
        }
        ShardStore::S3(remote) => remote.put(name, line),
    }
}

/// Every generation of the store: [`BASE`] if the top of the store holds shards, then the
/// named ones, sorted.
pub fn list(store: &ShardStore) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    if !store.live_shards()?.is_empty() {
        ids.push(BASE.to_string());
    }
    let mut named: Vec<String> = match store {
        ShardStore::Dir(dir) => match fs::read_dir(dir.join(GENERATIONS_DIR)) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(dir.join(GENERATIONS_DIR), e)),
        },
        ShardStore::S3(remote) => remote.sub(GENERATIONS_DIR).list()?.dirs,
    };
    named.retain(|id| check_id(id).is_ok() && id != BASE);
    named.sort();
    ids.extend(named);
    Ok(ids)
}

/// The manifests of every shard of generation `id`, or why it is incomplete: no shards,
/// a slice with shards missing, a manifest unreadable, a listed file absent (directory
/// stores) — what [`switch`] refuses.
pub fn check_complete(store: &ShardStore, id: &str) -> Result<Vec<ShardManifest>> {
    check_id(id)?;
    let generation = open(store, id);
    let incomplete = |reason: String| Error::Store(format!("generation {id}: {reason}"));
    let shards = generation.live_shards()?;
    if shards.is_empty() {
        return Err(incomplete(format!("no shards in {generation}")));
    }
    let ids: Vec<ShardId> = shards.iter().map(|(shard, _)| *shard).collect();
    check_slices(&ids).map_err(incomplete)?;
    let mut manifests = Vec::new();
    for (shard, source) in shards {
        let manifest = source
            .read_manifest()
            .map_err(|e| incomplete(format!("shard {shard}: {e}")))?;
        if let ShardStore::Dir(dir) = &generation {
            for file in &manifest.files {
                let path = dir.join(source.name()).join(&file.name);
                match fs::metadata(&path) {
                    Ok(meta) if meta.len() == file.bytes => {}
                    _ => return Err(incomplete(format!("{} missing", path.display()))),
                }
            }
        }
        manifests.push(manifest);
    }
    Ok(manifests)
}

/// Every slice of one input present with all its shards: for each slicing `K` seen, the
/// slices `0..K`, each with shards `0..M`.
fn check_slices(ids: &[ShardId]) -> std::result::Result<(), String> {
    let mut slices: BTreeMap<(u32, u32), BTreeSet<u32>> = BTreeMap::new();
    for id in ids {
        slices
            .entry((id.nodes, id.node))
            .or_default()
            .insert(id.shard);
    }
    let slicings: BTreeSet<u32> = ids.iter().map(|id| id.nodes).collect();
    if slicings.len() > 1 {
        return Err(format!("shards of several slicings {slicings:?}"));
    }
    for id in ids {
        for node in 0..id.nodes {
            if !slices.contains_key(&(id.nodes, node)) {
                return Err(format!("slice n{node}of{} missing", id.nodes));
            }
        }
        let have = &slices[&(id.nodes, id.node)];
        if (0..id.shards).any(|s| !have.contains(&s)) {
            return Err(format!(
                "slice n{}of{} has {} of its {} shards",
                id.node,
                id.nodes,
                have.len(),
                id.shards
            ));
        }
    }
    Ok(())
}

/// What [`switch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switched {
    /// The generation live before.
    pub from: String,
    pub to: String,
    /// Shards of the new live generation.
    pub shards: usize,
}

/// Makes generation `id` live (see the module docs): refuses a missing or incomplete one;
/// a switch to the live generation changes nothing.
pub fn switch(store: &ShardStore, id: &str) -> Result<Switched> {
    let shards = check_complete(store, id)?.len();
    let from = live(store)?;
    if from != id {
        // Written first: a crash before the alias leaves the old alias live and a
        // harmless record; the rerun writes both again.
        write_pointer(store, PREVIOUS_FILE, &from)?;
        write_pointer(store, ALIAS_FILE, id)?;
    }
    Ok(Switched {
        from,
        to: id.to_string(),
        shards,
    })
}

/// Moves the alias back: to `to`, or to the generation live before the last switch. The
/// target must still be retained (complete in the store): nothing is copied.
pub fn rollback(store: &ShardStore, to: Option<&str>) -> Result<Switched> {
    let target = match to {
        Some(id) => id.to_string(),
        None => previous(store)?.ok_or_else(|| {
            Error::Store(format!(
                "{store}: no previous generation recorded; name one"
            ))
        })?,
    };
    switch(store, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(node: u32, nodes: u32, shard: u32, shards: u32) -> ShardId {
        ShardId::new(node, nodes, shard, shards).unwrap()
    }

    #[test]
    fn ids_are_checked() {
        for good in ["g1", "2026-12-02", "a.b_c", BASE] {
            check_id(good).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slices_must_be_whole() {
        check_slices(&[
            id(0, 2, 0, 2),
            id(0, 2, 1, 2),
            id(1, 2, 0, 2),
            id(1, 2, 1, 2),
        ])
        .unwrap();
        let missing_shard = check_slices(&[id(0, 1, 0, 3), id(0, 1, 2, 3)]).unwrap_err();
        assert!(missing_shard.contains("2 of its 3"), "{missing_shard}");
        let missing_slice = check_slices(&[id(0, 2, 0, 1)]).unwrap_err();
        assert!(missing_slice.contains("n1of2 missing"), "{missing_slice}");
    }

    #[test]
    fn pointers_switch_atomically_and_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let store = ShardStore::Dir(dir.path().to_path_buf());
        assert_eq!(live(&store).unwrap(), BASE);
        assert!(
            switch(&store, "g1").is_err(),
            "a missing generation is refused"
        );
        fs::create_dir_all(dir.path().join(GENERATIONS_DIR).join("g1")).unwrap();
        let refused = switch(&store, "g1").unwrap_err().to_string();
        assert!(refused.contains("no shards"), "{refused}");
        assert_eq!(
            live(&store).unwrap(),
            BASE,
            "a refused switch changes nothing"
        );
        write_pointer(&store, ALIAS_FILE, "g1").unwrap();
        assert_eq!(live(&store).unwrap(), "g1");
        fs::write(dir.path().join(ALIAS_FILE), "../etc\n").unwrap();
        assert!(live(&store).is_err(), "a bad alias is an error, not a path");
    }
}
