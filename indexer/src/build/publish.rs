//! Atomic publication of a slice's shards in the output directory (the store layout is
//! defined in `shard_proto::store`).
//!
//! Layout of `DIR`: the live shards of slice `I` of `K` are the directories its record
//! `DIR/nIofK.slice.json` lists (`DIR/<shard id>.g<generation>/`); shards under
//! construction are `DIR/.tmp-<shard id>-<pid>/`; one lock file per slice
//! `DIR/.lock-nIofK`.
//!
//! - A build first takes its slice's lock (`flock`, released by the kernel even on
//!   SIGKILL), so two builds of the same slice cannot interleave, while the K builds of
//!   different slices share `DIR` freely: each only ever touches names of its own slice.
//! - Holding the lock, it removes its slice's leftovers: temporary directories and shard
//!   directories its record does not list (whatever wrote them is dead).
//! - Only once every shard of the slice is complete, fsynced and has its manifest are the
//!   temporary directories renamed to the next generation's names (not yet live), and
//!   then the slice's record is replaced by one listing them: a single atomic rename
//!   switches the whole slice, whatever its old or new shard count. A crash before that
//!   rename leaves the old generation live and the new one unlisted (removed by the next
//!   build); after it, the new one is live and the old one unlisted. Then the old
//!   generation's directories are removed.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use shard_proto::manifest::sync_dir;
use shard_proto::store::{generation_dir_name, shard_of_dir_name, SliceRecord};
use shard_proto::ShardId;

use crate::error::{Error, Result};

const TMP_PREFIX: &str = ".tmp-";

/// The exclusive lock on one slice of an output directory, held for a whole build.
pub struct SliceLock {
    _lock: Flock<File>,
}

impl SliceLock {
    /// Creates `out` if needed and takes the lock of slice `node` of `nodes`, failing at
    /// once (not waiting) if another build holds it.
    pub fn acquire(out: &Path, node: u32, nodes: u32) -> Result<Self> {
        fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let path = out.join(format!(".lock-n{node}of{nodes}"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(SliceLock { _lock: lock }),
            Err((_, Errno::EWOULDBLOCK)) => Err(Error::Busy(format!(
                "{}: another `indexer build` of node {node} of {nodes} is running in this \
                 output directory",
                path.display()
            ))),
            Err((_, errno)) => Err(Error::io(&path, errno.into())),
        }
    }
}

/// Whether `id` belongs to slice `node` of `nodes`.
fn same_slice(id: &ShardId, node: u32, nodes: u32) -> bool {
    id.node == node && id.nodes == nodes
}

/// The shard id named by a temporary directory `.tmp-<id>-<pid>`.
fn temp_dir_shard(name: &str) -> Option<ShardId> {
    let rest = name.strip_prefix(TMP_PREFIX)?;
    let (id, pid) = rest.rsplit_once('-')?;
    pid.parse::<u32>().ok()?;
    id.parse().ok()
}

/// Removes what builds of this slice that died left: temporary directories, and shard
/// directories that the slice's record does not list (with no record, directories named
/// exactly `<shard id>` are live, see `shard_proto::store`). Call it only while holding
/// the slice's [`SliceLock`].
pub fn remove_stale_temp_dirs(out: &Path, node: u32, nodes: u32) -> Result<Vec<PathBuf>> {
    let record = SliceRecord::read(out, node, nodes)?;
    let mut removed = Vec::new();
    for entry in fs::read_dir(out).map_err(|e| Error::io(out, e))? {
        let entry = entry.map_err(|e| Error::io(out, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let temp = temp_dir_shard(&name).is_some_and(|id| same_slice(&id, node, nodes));
        if temp || is_unlisted(&name, record.as_ref(), node, nodes) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Whether `name` is a shard directory of slice `node` of `nodes` that is not live.
fn is_unlisted(name: &str, record: Option<&SliceRecord>, node: u32, nodes: u32) -> bool {
    let Some(id) = shard_of_dir_name(name) else {
        return false;
    };
    if !same_slice(&id, node, nodes) {
        return false;
    }
    match record {
        Some(record) => !record.shards.iter().any(|live| live == name),
        // Without a record, only the generation names are unlisted.
        None => name.parse::<ShardId>().is_err(),
    }
}

/// Creates the (empty) temporary directory a shard is built in.
pub fn create_temp_dir(out: &Path, id: ShardId) -> Result<PathBuf> {
    let path = out.join(format!("{TMP_PREFIX}{id}-{}", std::process::id()));
    if path.exists() {
        fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
    }
    fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Moves every built shard of slice `node` of `nodes` into place and switches the slice to
/// them (see the module docs), then removes the old generation. Returns the published
/// directories. On an error before the switch, the new directories are removed and the
/// old generation stays live.
pub fn publish(
    out: &Path,
    node: u32,
    nodes: u32,
    built: &[(ShardId, PathBuf)],
) -> Result<Vec<PathBuf>> {
    let old = SliceRecord::read(out, node, nodes)?;
    let mut record = SliceRecord {
        node,
        nodes,
        generation: old.as_ref().map_or(1, |r| r.generation + 1),
        shards: Vec::new(),
    };
    let mut published = Vec::with_capacity(built.len());
    let staged = (|| {
        for (id, temp) in built {
            let name = generation_dir_name(*id, record.generation);
            let target = out.join(&name);
            fs::rename(temp, &target).map_err(|e| Error::io(&target, e))?;
            record.shards.push(name);
            published.push(target);
        }
        sync_dir(out)?;
        record.publish(out).map_err(Error::from)
    })();
    if let Err(e) = staged {
        for dir in &published {
            let _ = fs::remove_dir_all(dir);
        }
        return Err(e);
    }
    for stale in remove_stale_temp_dirs(out, node, nodes)? {
        tracing::info!(
            "removed {}: superseded by generation {}",
            stale.display(),
            record.generation
        );
    }
    sync_dir(out)?;
    Ok(published)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(node: u32, shard: u32, shards: u32) -> ShardId {
        ShardId::new(node, 2, shard, shards).unwrap()
    }

    #[test]
    fn lock_is_exclusive_per_slice() {
        let tmp = tempfile::tempdir().unwrap();
        let held = SliceLock::acquire(tmp.path(), 0, 2).unwrap();
        assert!(matches!(
            SliceLock::acquire(tmp.path(), 0, 2),
            Err(Error::Busy(_))
        ));
        let _other_slice = SliceLock::acquire(tmp.path(), 1, 2).unwrap();
        drop(held);
        SliceLock::acquire(tmp.path(), 0, 2).unwrap();
    }

    #[test]
    fn stale_temp_dirs_of_this_slice_only_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let mine = tmp.path().join(format!(".tmp-{}-999999", id(0, 1, 2)));
        let theirs = tmp.path().join(format!(".tmp-{}-999999", id(1, 1, 2)));
        fs::create_dir(&mine).unwrap();
        fs::create_dir(&theirs).unwrap();
        let removed = remove_stale_temp_dirs(tmp.path(), 0, 2).unwrap();
        assert_eq!(removed, vec![mine.clone()]);
        assert!(!mine.exists() && theirs.exists());
    }

    /// The directory names of `out`, sorted.
    fn names(out: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn build(out: &Path, shards: u32, content: &[u8]) -> Vec<(ShardId, PathBuf)> {
        (0..shards)
            .map(|shard| {
                let temp = create_temp_dir(out, id(0, shard, shards)).unwrap();
                fs::write(temp.join("f"), content).unwrap();
                (id(0, shard, shards), temp)
            })
            .collect()
    }

    fn live(out: &Path) -> Vec<String> {
        shard_proto::store::live_shard_dirs(out)
            .unwrap()
            .into_iter()
            .map(|(_, dir)| dir.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn publish_switches_the_whole_slice_and_removes_the_old_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        // A store written before slice records: slice 0 with 3 shards, and slice 1.
        for old in [id(0, 0, 3), id(0, 2, 3), id(1, 0, 1)] {
            fs::create_dir(out.join(old.to_string())).unwrap();
        }
        let built = build(out, 2, b"new");
        publish(out, 0, 2, &built).unwrap();
        assert_eq!(
            live(out),
            ["n0of2-s0of2.g1", "n0of2-s1of2.g1", "n1of2-s0of1"]
        );
        assert_eq!(
            names(out),
            [
                "n0of2-s0of2.g1",
                "n0of2-s1of2.g1",
                "n0of2.slice.json",
                "n1of2-s0of1"
            ]
        );
        let built = build(out, 3, b"newer");
        publish(out, 0, 2, &built).unwrap();
        assert_eq!(
            live(out),
            [
                "n0of2-s0of3.g2",
                "n0of2-s1of3.g2",
                "n0of2-s2of3.g2",
                "n1of2-s0of1"
            ]
        );
        let f = out.join("n0of2-s2of3.g2").join("f");
        assert_eq!(fs::read(f).unwrap(), b"newer");
    }

    #[test]
    fn a_crash_before_the_switch_leaves_the_old_generation_live() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        let built = build(out, 2, b"old");
        publish(out, 0, 2, &built).unwrap();
        // A build with 3 shards died after renaming two of them into place.
        for shard in 0..2 {
            let name = generation_dir_name(id(0, shard, 3), 2);
            fs::create_dir(out.join(name)).unwrap();
        }
        assert_eq!(live(out), ["n0of2-s0of2.g1", "n0of2-s1of2.g1"]);
        // The next build of the slice clears them away.
        let removed = remove_stale_temp_dirs(out, 0, 2).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(
            names(out),
            ["n0of2-s0of2.g1", "n0of2-s1of2.g1", "n0of2.slice.json"]
        );
    }

    #[test]
    fn a_failed_publish_removes_its_new_shards_and_keeps_the_old() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        let built = build(out, 2, b"old");
        publish(out, 0, 2, &built).unwrap();
        let mut built = build(out, 2, b"new");
        // The second shard's temporary directory vanished: its rename fails.
        fs::remove_dir_all(&built[1].1).unwrap();
        built[1].1 = out.join(".tmp-gone");
        assert!(publish(out, 0, 2, &built).is_err());
        assert_eq!(live(out), ["n0of2-s0of2.g1", "n0of2-s1of2.g1"]);
        assert!(!out.join("n0of2-s0of2.g2").exists());
    }
}
