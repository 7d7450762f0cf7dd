//! Atomic publication of shards in the output directory.
//!
//! Layout of `DIR`: published shards `DIR/<shard id>/`, shards under construction
//! `DIR/.tmp-<shard id>-<pid>/`, and one lock file per slice `DIR/.lock-n<I>of<K>`.
//!
//! - A build first takes its slice's lock (`flock`, released by the kernel even on
//!   SIGKILL), so two builds of the same slice cannot interleave, while the K builds of
//!   different slices share `DIR` freely: each only ever touches names of its own slice.
//! - Holding the lock, it removes its slice's leftover temporary directories: whatever
//!   wrote them is dead.
//! - Only once every shard of the slice is complete, fsynced and has its manifest are the
//!   temporary directories renamed into place, each replacing (atomically exchanged with,
//!   on Linux) the shard of the same id from an earlier build. Shards of the same slice
//!   from an earlier build with another shard count are removed: the new shards cover
//!   the same pages. A crash before that point leaves only `.tmp-` directories, which
//!   are never served; a crash in the middle leaves every shard either old or new, each
//!   whole.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use shard_proto::manifest::sync_dir;
use shard_proto::ShardId;

use crate::error::{Error, Result};

const TMP_PREFIX: &str = ".tmp-";

/// The exclusive lock on one slice of an output directory, held for a whole build.
pub struct SliceLock {
    _file: File,
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
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                return Err(Error::Busy(format!(
                    "{}: another `indexer build` of node {node} of {nodes} is running in this \
                     output directory",
                    path.display()
                )));
            }
            return Err(Error::io(&path, err));
        }
        Ok(SliceLock { _file: file })
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

/// Removes the temporary directories of this slice left by builds that died. Call it
/// only while holding the slice's [`SliceLock`].
pub fn remove_stale_temp_dirs(out: &Path, node: u32, nodes: u32) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(out).map_err(|e| Error::io(out, e))? {
        let entry = entry.map_err(|e| Error::io(out, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if temp_dir_shard(&name).is_some_and(|id| same_slice(&id, node, nodes)) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            removed.push(path);
        }
    }
    Ok(removed)
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

/// Moves every built shard into place (see the module docs), then removes superseded
/// shards of the same slice. Returns the published directories.
pub fn publish(out: &Path, built: &[(ShardId, PathBuf)]) -> Result<Vec<PathBuf>> {
    let mut published = Vec::with_capacity(built.len());
    for (id, temp) in built {
        let target = out.join(id.to_string());
        if target.exists() {
            replace_dir(temp, &target)?;
        } else {
            fs::rename(temp, &target).map_err(|e| Error::io(&target, e))?;
        }
        published.push(target);
    }
    sync_dir(out)?;
    if let Some((first, _)) = built.first() {
        remove_superseded(out, first)?;
    }
    Ok(published)
}

/// Removes published shards of `current`'s slice built with another shard count.
fn remove_superseded(out: &Path, current: &ShardId) -> Result<()> {
    for entry in fs::read_dir(out).map_err(|e| Error::io(out, e))? {
        let entry = entry.map_err(|e| Error::io(out, e))?;
        let Ok(id) = entry.file_name().to_string_lossy().parse::<ShardId>() else {
            continue;
        };
        if same_slice(&id, current.node, current.nodes) && id.shards != current.shards {
            tracing::warn!(
                "removing shard {id}: superseded by this build's {} shards",
                current.shards
            );
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    sync_dir(out)?;
    Ok(())
}

/// Replaces the directory `target` by `temp`: an atomic exchange where the kernel offers
/// one (so `target` never disappears), else rename-aside then rename.
fn replace_dir(temp: &Path, target: &Path) -> Result<()> {
    if exchange(temp, target).is_ok() {
        // `temp` now holds the old shard.
        return fs::remove_dir_all(temp).map_err(|e| Error::io(temp, e));
    }
    let aside = temp.with_extension("old");
    fs::rename(target, &aside).map_err(|e| Error::io(target, e))?;
    fs::rename(temp, target).map_err(|e| Error::io(target, e))?;
    fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
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

    #[test]
    fn publish_replaces_same_ids_and_removes_superseded_shard_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        // An earlier build of slice 0 with 3 shards, and slice 1's shard.
        for old in [id(0, 0, 3), id(0, 2, 3), id(1, 0, 1)] {
            fs::create_dir(out.join(old.to_string())).unwrap();
            fs::write(out.join(old.to_string()).join("f"), b"old").unwrap();
        }
        fs::create_dir(out.join(id(0, 0, 2).to_string())).unwrap();
        fs::write(out.join(id(0, 0, 2).to_string()).join("f"), b"old").unwrap();
        let mut built = Vec::new();
        for shard in 0..2 {
            let temp = create_temp_dir(out, id(0, shard, 2)).unwrap();
            fs::write(temp.join("f"), b"new").unwrap();
            built.push((id(0, shard, 2), temp));
        }
        publish(out, &built).unwrap();
        let mut names: Vec<String> = fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["n0of2-s0of2", "n0of2-s1of2", "n1of2-s0of1"]);
        for shard in 0..2 {
            let f = out.join(id(0, shard, 2).to_string()).join("f");
            assert_eq!(fs::read(f).unwrap(), b"new");
        }
    }
}
