//! The shard store's layout: which shard directories of a store are live.
//!
//! An indexer builds slice `I` of `K` (its shards `nIofK-s*ofM`) and publishes all of them
//! at once: the shards go into new directories `<shard id>.g<generation>`, invisible to
//! readers, and then one atomic rename of the slice's record `nIofK.slice.json` (a
//! [`SliceRecord`] listing those directories) switches the whole slice from the old
//! generation to the new one. So readers never see old and new shards of one slice
//! together, neither halfway through a publish nor after a crash in the middle of one
//! (the old record is still in effect), nor when the shard count changes (the record
//! lists the new count's shards only).
//!
//! A slice without a record is read the way stores were written before records existed:
//! every directory named exactly `<shard id>` is live. Directories of a slice that has a
//! record but are not listed in it (an older generation, a crashed build's) are never
//! live, and the next build of that slice removes them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::sync_dir;
use crate::shard_id::ShardId;

/// File name suffix of a slice's record.
pub const RECORD_SUFFIX: &str = ".slice.json";

/// The live generation of one slice of a store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceRecord {
    /// The slice: `node` of `nodes`.
    pub node: u32,
    pub nodes: u32,
    /// Grows by one at each publish of the slice.
    pub generation: u64,
    /// The directory names (in the store) of the slice's live shards.
    pub shards: Vec<String>,
}

impl SliceRecord {
    /// The record's file name for slice `node` of `nodes`.
    pub fn file_name(node: u32, nodes: u32) -> String {
        format!("n{node}of{nodes}{RECORD_SUFFIX}")
    }

    /// The record of slice `node` of `nodes` in `store`, if the slice has one.
    pub fn read(store: &Path, node: u32, nodes: u32) -> Result<Option<Self>> {
        let path = store.join(Self::file_name(node, nodes));
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let record: SliceRecord =
            serde_json::from_str(&text).map_err(|e| Error::InvalidManifest {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if (record.node, record.nodes) != (node, nodes) {
            let reason = format!("record of slice n{}of{}", record.node, record.nodes);
            return Err(Error::InvalidManifest { path, reason });
        }
        Ok(Some(record))
    }

    /// Makes this record the slice's live one: written beside, fsynced, then renamed over
    /// the old one (the atomic switch), and the directory fsynced.
    pub fn publish(&self, store: &Path) -> Result<()> {
        let name = Self::file_name(self.node, self.nodes);
        let temp = store.join(format!(".{name}.{}", std::process::id()));
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::InvalidManifest {
            path: temp.clone(),
            reason: e.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = fs::File::create(&temp)?;
            file.write_all(&json)?;
            file.sync_all()
        };
        write().map_err(|e| Error::io(&temp, e))?;
        let path = store.join(&name);
        fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(store)
    }
}

/// The directory name of shard `id` in generation `generation`.
pub fn generation_dir_name(id: ShardId, generation: u64) -> String {
    format!("{id}.g{generation}")
}

/// The shard a store directory name is for: `<id>` or `<id>.g<generation>`.
pub fn shard_of_dir_name(name: &str) -> Option<ShardId> {
    match name.split_once(".g") {
        Some((id, generation)) => {
            generation.parse::<u64>().ok()?;
            id.parse().ok()
        }
        None => name.parse().ok(),
    }
}

/// The generation a store directory name carries (`<id>.g<generation>`), if any.
pub fn generation_of_dir_name(name: &str) -> Option<u64> {
    shard_of_dir_name(name)?;
    name.split_once(".g")?.1.parse().ok()
}

/// Every live shard directory of `store` (see the module docs), sorted by shard id.
/// Listed directories are returned even if missing, so that readers report them.
pub fn live_shard_dirs(store: &Path) -> Result<Vec<(ShardId, PathBuf)>> {
    let mut legacy: Vec<(ShardId, PathBuf)> = Vec::new();
    let mut slices = BTreeSet::new();
    for entry in fs::read_dir(store).map_err(|e| Error::io(store, e))? {
        let entry = entry.map_err(|e| Error::io(store, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = shard_of_dir_name(&name) {
            slices.insert((id.node, id.nodes));
            if name.parse::<ShardId>().is_ok() && entry.path().is_dir() {
                legacy.push((id, entry.path()));
            }
        }
    }
    let mut records = BTreeMap::new();
    for (node, nodes) in slices {
        if let Some(record) = SliceRecord::read(store, node, nodes)? {
            records.insert((node, nodes), record);
        }
    }
    let mut live: Vec<(ShardId, PathBuf)> = legacy
        .into_iter()
        .filter(|(id, _)| !records.contains_key(&(id.node, id.nodes)))
        .collect();
    for record in records.values() {
        for name in &record.shards {
            let id = shard_of_dir_name(name).ok_or_else(|| Error::InvalidManifest {
                path: store.join(SliceRecord::file_name(record.node, record.nodes)),
                reason: format!("{name:?} is not a shard directory name"),
            })?;
            live.push((id, store.join(name)));
        }
    }
    live.sort();
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(node: u32, shard: u32, shards: u32) -> ShardId {
        ShardId::new(node, 2, shard, shards).unwrap()
    }

    fn names(store: &Path) -> Vec<String> {
        live_shard_dirs(store)
            .unwrap()
            .into_iter()
            .map(|(_, dir)| dir.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_record_switches_a_whole_slice_and_only_that_slice() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path();
        for name in [
            "n0of2-s0of3",
            "n0of2-s1of3",
            "n1of2-s0of1",
            ".tmp-n0of2-s0of2-7",
        ] {
            fs::create_dir(store.join(name)).unwrap();
        }
        assert_eq!(names(store), ["n0of2-s0of3", "n0of2-s1of3", "n1of2-s0of1"]);
        // A new generation of slice 0 with another shard count: invisible until recorded.
        for shard in 0..2 {
            fs::create_dir(store.join(generation_dir_name(id(0, shard, 2), 1))).unwrap();
        }
        assert_eq!(names(store), ["n0of2-s0of3", "n0of2-s1of3", "n1of2-s0of1"]);
        let record = SliceRecord {
            node: 0,
            nodes: 2,
            generation: 1,
            shards: vec!["n0of2-s0of2.g1".into(), "n0of2-s1of2.g1".into()],
        };
        record.publish(store).unwrap();
        assert_eq!(
            names(store),
            ["n0of2-s0of2.g1", "n0of2-s1of2.g1", "n1of2-s0of1"]
        );
        assert_eq!(SliceRecord::read(store, 0, 2).unwrap(), Some(record));
        assert_eq!(SliceRecord::read(store, 1, 2).unwrap(), None);
    }

    #[test]
    fn dir_names_parse_with_and_without_a_generation() {
        assert_eq!(shard_of_dir_name("n0of2-s1of3"), Some(id(0, 1, 3)));
        assert_eq!(shard_of_dir_name("n0of2-s1of3.g12"), Some(id(0, 1, 3)));
        assert_eq!(shard_of_dir_name("n0of2-s1of3.gx"), None);
        assert_eq!(shard_of_dir_name(".tmp-n0of2-s1of3-5"), None);
        assert_eq!(shard_of_dir_name("n0of2.slice.json"), None);
        assert_eq!(generation_of_dir_name("n0of2-s1of3.g12"), Some(12));
        assert_eq!(generation_of_dir_name("n0of2-s1of3"), None);
        assert_eq!(generation_of_dir_name("x.g3"), None);
    }

    #[test]
    fn a_garbled_record_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("n0of2-s0of1")).unwrap();
        fs::write(tmp.path().join(SliceRecord::file_name(0, 2)), "{").unwrap();
        let message = live_shard_dirs(tmp.path()).unwrap_err().to_string();
        assert!(message.contains("n0of2.slice.json"), "{message}");
    }
}
