//! A node killed at any point of an install leaves nothing that serves as complete, and the
//! next start finishes the job. The states a crash can leave are made by hand here (a copy
//! from a directory store takes milliseconds): a half-filled staging directory (the rerun
//! keeps the files that verify and fetches the rest), a full one not yet renamed, and a
//! replica directory half-removed while being replaced. A real SIGKILL in the middle of a
//! download is in the integration suite (`object_store`, behind a slow link).

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use shard_proto::manifest::{ShardManifest, MANIFEST_FILE};
use shard_proto::WikiSchema;

use super::replicas::{self, TMP_PREFIX};
use super::tests::{one_node_cluster, shard};

/// Starts the node's install as a start-up does; the one shard must serve, verified.
fn install_serves_one(config: &crate::cluster::ClusterConfig) {
    let schema = WikiSchema::new();
    let installed = replicas::install_assigned(config, "a", &schema).unwrap();
    assert_eq!(installed.serving.len(), 1, "{:?}", installed.states);
}

fn copy_dir(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep(&name) {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn every_state_a_crash_leaves_is_cleaned_up_or_refused_and_the_rerun_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let config = one_node_cluster(tmp.path(), 1);
    let data_dir = config.node("a").unwrap().data_dir().to_path_buf();
    let name = shard(0, 1).to_string();
    let (_, dir) = shard_proto::store::live_shard_dirs(&tmp.path().join("store"))
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let store_copy = dir.as_path();
    let manifest = ShardManifest::read(store_copy).unwrap();
    let biggest = manifest
        .files
        .iter()
        .max_by_key(|f| f.bytes)
        .unwrap()
        .name
        .clone();
    let staging = data_dir.join(format!("{TMP_PREFIX}{name}"));
    let target = data_dir.join(&name);
    let schema = WikiSchema::new();

    // 1. Killed while copying: a staging directory with some files, one of them cut short.
    //    The rerun resumes: the complete files stay (same inode), the cut one is fetched.
    copy_dir(store_copy, &staging, |n| n != MANIFEST_FILE);
    let cut = staging.join(&biggest);
    let bytes = fs::read(&cut).unwrap();
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let inode = |path: &Path| fs::metadata(path).unwrap().ino();
    let complete = manifest.files.iter().find(|f| f.name != biggest).unwrap();
    let kept = inode(&staging.join(&complete.name));
    install_serves_one(&config);
    assert!(
        !staging.exists(),
        "the half-copied staging directory is left behind"
    );
    assert_eq!(
        inode(&target.join(&complete.name)),
        kept,
        "a complete file was fetched again"
    );
    assert_eq!(fs::read(target.join(&biggest)).unwrap(), bytes);

    // 2. Killed after the copy, before the rename: a complete staging directory.
    fs::remove_dir_all(&target).unwrap();
    copy_dir(store_copy, &staging, |_| true);
    install_serves_one(&config);
    assert!(!staging.exists());
    assert!(ShardManifest::read_verified(&target, &schema).is_ok());

    // 3. Killed while replacing an older copy: the replica directory half-removed. It
    //    must not verify (so nothing serves it), and the rerun replaces it.
    fs::remove_file(target.join(&biggest)).unwrap();
    assert!(
        ShardManifest::read_verified(&target, &schema).is_err(),
        "a half-removed replica verifies"
    );
    install_serves_one(&config);
    assert!(ShardManifest::read_verified(&target, &schema).is_ok());
    let leftovers: Vec<String> = fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TMP_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
