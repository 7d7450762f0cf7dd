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
//!
//! A store is a local directory or an S3 bucket and prefix ([`StoreLocation`], the
//! cluster file's `shard_store`); [`ShardStore`] reads either the same way, and a node
//! gets each of its replicas with one call, [`ShardSource::fetch_into`] a directory of
//! its own (copied locally, downloaded from S3: never served or memory-mapped in place).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::manifest::{sync_dir, ShardManifest, MANIFEST_FILE};
use crate::remote::{RemoteStore, S3Config, S3Location};
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
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Self::parse(&text, &path, node, nodes).map(Some)
    }

    /// Parses the record of slice `node` of `nodes`; `path` (a file or an object's URL)
    /// names it in errors.
    pub fn parse(bytes: &[u8], path: &Path, node: u32, nodes: u32) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidManifest {
            path: path.to_path_buf(),
            reason,
        };
        let record: SliceRecord =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if (record.node, record.nodes) != (node, nodes) {
            return Err(invalid(format!(
                "record of slice n{}of{}",
                record.node, record.nodes
            )));
        }
        Ok(record)
    }

    /// The record as written to a store.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a slice record always serializes")
    }

    /// Makes this record the slice's live one: written beside, fsynced, then renamed over
    /// the old one (the atomic switch), and the directory fsynced.
    pub fn publish(&self, store: &Path) -> Result<()> {
        let name = Self::file_name(self.node, self.nodes);
        let temp = store.join(format!(".{name}.{}", std::process::id()));
        let json = self.to_json();
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
    let mut entries = Vec::new();
    for entry in fs::read_dir(store).map_err(|e| Error::io(store, e))? {
        let entry = entry.map_err(|e| Error::io(store, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        entries.push((entry.path().is_dir(), name));
    }
    let live = live_names(
        entries,
        |node, nodes| SliceRecord::read(store, node, nodes),
        &|name: &str| store.join(name),
    )?;
    Ok(live
        .into_iter()
        .map(|(id, name)| (id, store.join(name)))
        .collect())
}

/// The live shard directory names among a store's top-level `entries` (`(is a
/// directory, name)`), whatever the store: `read_record` reads a slice's record, `path`
/// names an entry in errors.
pub(crate) fn live_names(
    entries: Vec<(bool, String)>,
    mut read_record: impl FnMut(u32, u32) -> Result<Option<SliceRecord>>,
    path: &dyn Fn(&str) -> PathBuf,
) -> Result<Vec<(ShardId, String)>> {
    let mut legacy: Vec<(ShardId, String)> = Vec::new();
    let mut slices = BTreeSet::new();
    for (is_dir, name) in entries {
        if let Some(id) = shard_of_dir_name(&name) {
            slices.insert((id.node, id.nodes));
            if name.parse::<ShardId>().is_ok() && is_dir {
                legacy.push((id, name));
            }
        }
    }
    let mut records = BTreeMap::new();
    for (node, nodes) in slices {
        if let Some(record) = read_record(node, nodes)? {
            records.insert((node, nodes), record);
        }
    }
    let mut live: Vec<(ShardId, String)> = legacy
        .into_iter()
        .filter(|(id, _)| !records.contains_key(&(id.node, id.nodes)))
        .collect();
    for record in records.values() {
        for name in &record.shards {
            let id = shard_of_dir_name(name).ok_or_else(|| Error::InvalidManifest {
                path: path(&SliceRecord::file_name(record.node, record.nodes)),
                reason: format!("{name:?} is not a shard directory name"),
            })?;
            live.push((id, name.clone()));
        }
    }
    live.sort();
    Ok(live)
}

/// Where a shard store is: a local directory or `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    Dir(PathBuf),
    S3(S3Location),
}

impl StoreLocation {
    /// A relative directory resolved against `base` (the cluster file's directory).
    pub fn resolve(&self, base: &Path) -> Self {
        match self {
            StoreLocation::Dir(dir) => StoreLocation::Dir(base.join(dir)),
            StoreLocation::S3(_) => self.clone(),
        }
    }

    /// The directory, for a local store.
    pub fn as_dir(&self) -> Option<&Path> {
        match self {
            StoreLocation::Dir(dir) => Some(dir),
            StoreLocation::S3(_) => None,
        }
    }
}

impl From<PathBuf> for StoreLocation {
    fn from(dir: PathBuf) -> Self {
        StoreLocation::Dir(dir)
    }
}

impl FromStr for StoreLocation {
    type Err = Error;

    /// `s3://...` is an S3 store; anything else a directory.
    fn from_str(text: &str) -> Result<Self> {
        if text.starts_with("s3://") {
            text.parse().map(StoreLocation::S3)
        } else {
            Ok(StoreLocation::Dir(PathBuf::from(text)))
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Dir(dir) => write!(f, "{}", dir.display()),
            StoreLocation::S3(at) => write!(f, "{at}"),
        }
    }
}

impl Serialize for StoreLocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StoreLocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An opened shard store (cheap to clone).
#[derive(Clone, Debug)]
pub enum ShardStore {
    Dir(PathBuf),
    S3(RemoteStore),
}

impl ShardStore {
    /// Opens the store at `location`; `s3` is used for an S3 store only.
    pub fn open(location: &StoreLocation, s3: &S3Config) -> Result<Self> {
        Ok(match location {
            StoreLocation::Dir(dir) => ShardStore::Dir(dir.clone()),
            StoreLocation::S3(at) => ShardStore::S3(RemoteStore::open(at, s3)?),
        })
    }

    /// Every live shard of the store (see the module docs), sorted by shard id.
    pub fn live_shards(&self) -> Result<Vec<(ShardId, ShardSource)>> {
        let names = match self {
            ShardStore::Dir(dir) => live_shard_dirs(dir)?
                .into_iter()
                .map(|(id, path)| {
                    let name = path.file_name().unwrap_or_default();
                    (id, name.to_string_lossy().into_owned())
                })
                .collect(),
            ShardStore::S3(remote) => remote_live_names(remote)?,
        };
        Ok(names
            .into_iter()
            .map(|(id, name)| {
                let store = self.clone();
                (id, ShardSource { store, name })
            })
            .collect())
    }

    /// The slice record of `node` of `nodes`, if any.
    pub fn slice_record(&self, node: u32, nodes: u32) -> Result<Option<SliceRecord>> {
        match self {
            ShardStore::Dir(dir) => SliceRecord::read(dir, node, nodes),
            ShardStore::S3(remote) => remote_record(remote, node, nodes),
        }
    }
}

impl fmt::Display for ShardStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardStore::Dir(dir) => write!(f, "{}", dir.display()),
            ShardStore::S3(remote) => write!(f, "{}", remote.location()),
        }
    }
}

fn remote_record(remote: &RemoteStore, node: u32, nodes: u32) -> Result<Option<SliceRecord>> {
    let name = SliceRecord::file_name(node, nodes);
    match remote.get(&name)? {
        Some(bytes) => {
            SliceRecord::parse(&bytes, Path::new(&remote.url(&name)), node, nodes).map(Some)
        }
        None => Ok(None),
    }
}

fn remote_live_names(remote: &RemoteStore) -> Result<Vec<(ShardId, String)>> {
    let listing = remote.list()?;
    let entries = (listing.dirs.into_iter().map(|d| (true, d)))
        .chain(listing.files.into_iter().map(|f| (false, f)))
        .collect();
    live_names(
        entries,
        |node, nodes| remote_record(remote, node, nodes),
        &|name: &str| PathBuf::from(remote.url(name)),
    )
}

/// One live shard directory of a store.
#[derive(Clone, Debug)]
pub struct ShardSource {
    store: ShardStore,
    name: String,
}

impl ShardSource {
    /// The directory's name in the store (`<shard id>.g<generation>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the shard is: its directory or its `s3://` URL.
    pub fn location(&self) -> String {
        match &self.store {
            ShardStore::Dir(dir) => dir.join(&self.name).display().to_string(),
            ShardStore::S3(remote) => remote.url(&self.name),
        }
    }

    /// The shard's manifest, its self-checksum checked.
    pub fn read_manifest(&self) -> Result<ShardManifest> {
        match &self.store {
            ShardStore::Dir(dir) => ShardManifest::read(&dir.join(&self.name)),
            ShardStore::S3(remote) => {
                let name = format!("{}/{MANIFEST_FILE}", self.name);
                let url = remote.url(&name);
                let bytes = remote.get(&name)?.ok_or_else(|| Error::InvalidManifest {
                    path: PathBuf::from(&url),
                    reason: "no such object".into(),
                })?;
                ShardManifest::from_bytes(&bytes, Path::new(&url))
            }
        }
    }

    /// Puts an independent copy of the shard's files listed in `manifest`, and the
    /// manifest, into the existing empty directory `dest`. Downloads are checked against
    /// the manifest as they arrive (the error names the object); local copies are checked
    /// by the caller's verification of `dest`, as every replica is.
    pub fn fetch_into(&self, manifest: &ShardManifest, dest: &Path) -> Result<()> {
        if let Some(bad) = manifest.files.iter().find(|f| !is_plain_name(&f.name)) {
            return Err(Error::InvalidManifest {
                path: PathBuf::from(self.location()),
                reason: format!("lists a file outside the shard: {:?}", bad.name),
            });
        }
        match &self.store {
            ShardStore::Dir(dir) => copy_shard(&dir.join(&self.name), manifest, dest),
            ShardStore::S3(remote) => {
                for entry in &manifest.files {
                    let name = format!("{}/{}", self.name, entry.name);
                    remote.download_file(&name, &dest.join(&entry.name), entry)?;
                }
                // The manifest the files were checked against, not a second download
                // that a concurrent publish could have changed.
                manifest.clone().write(dest)
            }
        }
    }
}

/// A file name that stays inside a shard directory.
fn is_plain_name(name: &str) -> bool {
    !(name.is_empty() || name.contains('/') || name.contains("..") || name == MANIFEST_FILE)
}

/// Copies the manifest's files and the manifest from `source` to `dest`. `fs::copy` uses
/// `copy_file_range` on Linux, which file systems sharing extents (btrfs, XFS with
/// reflink) turn into a reflink: the copy costs no space, yet a write to either file
/// leaves the other intact (unlike a hard link).
fn copy_shard(source: &Path, manifest: &ShardManifest, dest: &Path) -> Result<()> {
    let names = manifest.files.iter().map(|f| f.name.as_str());
    for name in names.chain([MANIFEST_FILE]) {
        let from = source.join(name);
        fs::copy(&from, dest.join(name)).map_err(|e| Error::io(&from, e))?;
    }
    Ok(())
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

    /// A published one-file shard `n0of1-s0of1.g1` in `store`, with its manifest.
    fn publish_one_file_shard(store: &Path) -> ShardManifest {
        let dir = store.join("n0of1-s0of1.g1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("a.idx"), b"abc").unwrap();
        let mut manifest = ShardManifest {
            format: crate::manifest::MANIFEST_FORMAT,
            shard: ShardId::new(0, 1, 0, 1).unwrap(),
            schema: "s".into(),
            tantivy_version: "t".into(),
            input: crate::manifest::InputInfo {
                path: "in".into(),
                bytes: 1,
                format: "xml".into(),
            },
            docs: 1,
            skipped: BTreeMap::new(),
            files: ShardManifest::describe_files(&dir).unwrap(),
            created_unix: 1,
            checksum: String::new(),
        };
        manifest.write(&dir).unwrap();
        let record = SliceRecord {
            node: 0,
            nodes: 1,
            generation: 1,
            shards: vec!["n0of1-s0of1.g1".into()],
        };
        record.publish(store).unwrap();
        manifest
    }

    #[test]
    fn a_directory_store_fetches_a_live_shard_into_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let written = publish_one_file_shard(tmp.path());
        let store = ShardStore::open(&tmp.path().to_path_buf().into(), &S3Config::default());
        let live = store.unwrap().live_shards().unwrap();
        assert_eq!(live.len(), 1);
        let (id, source) = &live[0];
        assert_eq!((*id, source.name()), (written.shard, "n0of1-s0of1.g1"));
        let manifest = source.read_manifest().unwrap();
        assert_eq!(manifest, written);
        let dest = tmp.path().join("copy");
        fs::create_dir(&dest).unwrap();
        source.fetch_into(&manifest, &dest).unwrap();
        assert_eq!(fs::read(dest.join("a.idx")).unwrap(), b"abc");
        assert_eq!(ShardManifest::read(&dest).unwrap(), written);

        let mut escaping = manifest.clone();
        escaping.files[0].name = "../a.idx".into();
        let err = source.fetch_into(&escaping, &dest).unwrap_err().to_string();
        assert!(err.contains("outside the shard"), "{err}");
    }

    #[test]
    fn store_locations_parse_and_print() {
        let dir: StoreLocation = "shards".parse().unwrap();
        assert_eq!(
            dir.resolve(Path::new("/etc/ws")).as_dir(),
            Some(Path::new("/etc/ws/shards"))
        );
        let s3: StoreLocation = "s3://bucket/a/b".parse().unwrap();
        assert_eq!(s3.resolve(Path::new("/etc/ws")), s3);
        assert_eq!(s3.to_string(), "s3://bucket/a/b");
        assert!("s3://".parse::<StoreLocation>().is_err());
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
