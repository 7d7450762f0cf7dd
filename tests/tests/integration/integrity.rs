//! Data integrity under hostile conditions (issue 11): replicas that are independent
//! copies and a scrub that drops a corrupted one while the node serves the rest; an
//! indexer that publishes a slice all at once (also across a change of shard count) and
//! fails clearly, publishing nothing, when the disk fills up.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shard_proto::manifest::ShardManifest;
use shard_proto::store::live_shard_dirs;
use tests::cluster_secret::{write_secret, AUTH_TABLE};
use tests::{bin, free_port, process_alive, run_ok, shared_corpus, temp_dir, wait_for, ChildGuard};

const PATIENCE: Duration = Duration::from_secs(120);

fn build(out: &Path, shards: u32) -> Command {
    let mut cmd = Command::new(bin("indexer"));
    cmd.args(["build", "--threads", "2", "--memory-mb", "256", "--shards"])
        .arg(shards.to_string())
        .arg("--input")
        .arg(shared_corpus("enwiki-sample.xml.bz2"))
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null());
    cmd
}

fn live_names(store: &Path) -> Vec<String> {
    live_shard_dirs(store)
        .expect("read the store")
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect()
}

#[test]
fn a_corrupted_replica_is_dropped_by_the_scrub_reported_and_the_rest_served() {
    let dir = temp_dir("scrub");
    let store = dir.path().join("store");
    run_ok(&mut build(&store, 2));
    let (node_port, port) = (free_port(), free_port());
    let config = dir.path().join("cluster.toml");
    std::fs::write(
        &config,
        format!(
            "shard_store = {store:?}\nreplication = 1\n\n[frontend]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [scrub]\nmib_per_s = 64\npass_every_s = 1\n{AUTH_TABLE}\n[[node]]\nid = \"solo\"\nrpc = \"127.0.0.1:{node_port}\"\n"
        ),
    )
    .unwrap();
    write_secret(dir.path());
    let spawn = |args: &[&str]| {
        let mut cmd = Command::new(bin("searcher"));
        cmd.args(args)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        ChildGuard::spawn(args[0], &mut cmd)
    };
    let node = spawn(&["node", "--id", "solo"]);
    let _frontend = spawn(&["frontend"]);
    let url = format!("http://127.0.0.1:{port}");
    let search = || tests::get_json(&format!("{url}/search?q=the&size=5"));
    wait_for("a full answer", PATIENCE, || {
        search().filter(|(s, a)| *s == 200 && a["partial"] == false)
    });

    // The installed replicas are copies: another inode than the store's file.
    let (victim, source) = live_shard_dirs(&store).unwrap().remove(1);
    let installed = dir.path().join("nodes/solo").join(victim.to_string());
    let manifest = ShardManifest::read(&installed).unwrap();
    let file = manifest.files.iter().max_by_key(|f| f.bytes).unwrap();
    let (copy, original) = (installed.join(&file.name), source.join(&file.name));
    assert_ne!(
        std::fs::metadata(&copy).unwrap().ino(),
        std::fs::metadata(&original).unwrap().ino(),
        "the replica shares the store's inode"
    );

    // Bit rot in the replica, after install: the scrub drops it and says which file.
    // (In place, as bit rot would: truncating a file the node maps would be a SIGBUS.)
    let middle = file.bytes / 2;
    let mut byte = [0u8];
    let mut handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    handle.seek(SeekFrom::Start(middle)).unwrap();
    handle.read_exact(&mut byte).unwrap();
    handle.seek(SeekFrom::Start(middle)).unwrap();
    handle.write_all(&[byte[0] ^ 0x5a]).unwrap();
    drop(handle);
    let reported = wait_for(
        "the corrupted replica reported in /cluster",
        PATIENCE,
        || {
            let (_, view) = tests::get_json(&format!("{url}/cluster"))?;
            let text = view.to_string();
            text.contains(&file.name).then_some(view)
        },
    );
    eprintln!("reported: {reported}");
    // The node serves the other shard; the dropped one is a named failure, not a crash.
    let (status, answer): (u16, Value) = search().expect("the front-end answers");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partial"], true, "{answer}");
    assert!(answer.to_string().contains(&victim.to_string()), "{answer}");
    assert!(answer["total"].as_u64().unwrap() > 0, "{answer}");
    assert!(process_alive(node.pid()));
    // The store's copy is untouched.
    ShardManifest::read(&source)
        .unwrap()
        .verify_files(&source)
        .unwrap();
}

#[test]
fn a_slice_switches_whole_across_a_change_of_shard_count() {
    let dir = temp_dir("slice-switch");
    let store = dir.path().join("store");
    run_ok(&mut build(&store, 2));
    assert_eq!(live_names(&store), ["n0of1-s0of2", "n0of1-s1of2"]);
    run_ok(&mut build(&store, 3));
    assert_eq!(
        live_names(&store),
        ["n0of1-s0of3", "n0of1-s1of3", "n0of1-s2of3"]
    );
    let docs: u64 = live_shard_dirs(&store)
        .unwrap()
        .iter()
        .map(|(_, dir)| ShardManifest::read(dir).unwrap().docs)
        .sum();
    assert!(docs > 0);
    // Nothing of the 2-shard generation is left.
    let left: Vec<PathBuf> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("of2"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_full_disk_fails_the_build_clearly_and_publishes_nothing() {
    let dir = temp_dir("disk-full");
    let store = dir.path().join("store");
    run_ok(&mut build(&store, 1));
    let before = live_shard_dirs(&store).unwrap();
    // Writes past RLIMIT_FSIZE fail with EFBIG once SIGXFSZ is ignored: a disk that fills
    // up, without root or a small file system.
    let mut cmd = build(&store, 2);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            use nix::sys::resource::{setrlimit, Resource};
            use nix::sys::signal::{signal, SigHandler, Signal};
            signal(Signal::SIGXFSZ, SigHandler::SigIgn)?;
            setrlimit(Resource::RLIMIT_FSIZE, 64 * 1024, 64 * 1024)?;
            Ok(())
        });
    }
    let output = cmd.stderr(Stdio::piped()).output().expect("run the build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the build succeeded on a full disk: {stderr}"
    );
    assert!(stderr.contains("no space left"), "{stderr}");
    assert!(stderr.contains("nothing was published"), "{stderr}");
    assert_eq!(
        live_shard_dirs(&store).unwrap(),
        before,
        "the old build must stay live"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
