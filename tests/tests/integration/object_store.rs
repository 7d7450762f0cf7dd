//! The shard store on S3, against a real Garage server the test starts
//! (`tests::garage`): `indexer build --out s3://...` uploads, nodes download, verify and
//! serve from their own disk.
//!
//! - the same searches answer the same hits, scores included, from an S3 store as from a
//!   directory store built from the same dump;
//! - a corrupted object is refused, and the refusal names the object;
//! - a store that is down while a node starts: the node says so and retries with backoff,
//!   and starts once the store is back; with its retries exhausted it exits with an
//!   error naming the store.
//! - a file above the multipart threshold goes up in parts and comes back verified.
//! - a node killed (SIGKILL) in the middle of a download, behind a slow link to the store:
//!   nothing in its data directory looks installed (the half copy sits in a staging
//!   directory without its manifest), and started again it resumes (the files that were
//!   complete are kept, not downloaded again), verifies and serves every shard, leaving no
//!   staging directory behind.
//!
//! Waits are conditions with generous deadlines, never timings.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shard_proto::manifest::{FileEntry, ShardManifest};
use shard_proto::remote::{RemoteStore, S3Config};
use tests::cluster_secret::{write_secret, AUTH_TABLE};
use tests::garage::{require_garage, Garage, BUCKET, REGION};
use tests::slow_link::SlowLink;
use tests::{
    bin, free_port, get_json, run_ok, shared_corpus, spawn_searcher, temp_dir, wait_for,
    ChildGuard, Signal,
};

const PATIENCE: Duration = Duration::from_secs(90);
const QUERIES: [&str; 6] = [
    "anarchism",
    "political philosophy",
    "\"natural science\"",
    "+albedo",
    "title:autism",
    "the",
];

/// `indexer build` of the English sample into `out` (a directory or `s3://...`, then
/// staged in `staging`), with the store's variables for an S3 one.
fn build(out: &str, shards: u32, garage: Option<&Garage>, staging: &Path) {
    let mut cmd = Command::new(bin("indexer"));
    cmd.args(["build", "--threads", "2", "--memory-mb", "256", "--shards"])
        .arg(shards.to_string())
        .arg("--input")
        .arg(shared_corpus("enwiki-sample.xml.bz2"))
        .args(["--out", out])
        .arg("--staging")
        .arg(staging)
        .stdout(Stdio::null());
    for (key, value) in garage.map(Garage::env).unwrap_or_default() {
        cmd.env(key, value);
    }
    run_ok(&mut cmd);
}

/// A cluster file for `nodes` nodes over `store`, `extra` appended (an `[s3]` table).
fn cluster_file(dir: &Path, store: &str, nodes: usize, replication: usize, extra: &str) -> PathBuf {
    let frontend = free_port();
    let mut toml = format!(
        "shard_store = {store:?}\nreplication = {replication}\n\n[frontend]\n\
         listen = \"127.0.0.1:{frontend}\"\n{AUTH_TABLE}{extra}"
    );
    for i in 0..nodes {
        toml.push_str(&format!(
            "\n[[node]]\nid = \"node{i}\"\nrpc = \"127.0.0.1:{}\"\n",
            free_port()
        ));
    }
    write_secret(dir);
    std::fs::create_dir_all(dir.join("logs")).expect("log dir");
    let path = dir.join("cluster.toml");
    std::fs::write(&path, toml).expect("write the cluster file");
    path
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join("logs").join(format!("{name}.log"))).unwrap_or_default()
}

/// The front-end's URL from the cluster file in `dir`.
fn frontend_url(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("cluster.toml")).expect("cluster file");
    let listen = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .expect("listen line");
    format!("http://{}", listen.trim_matches('"'))
}

/// A running cluster's processes; if the test fails, the last lines of each one's log are
/// printed (a process that died says why there).
struct Running {
    dir: PathBuf,
    children: Vec<ChildGuard>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for child in &self.children {
            let path = self.dir.join("logs").join(format!("{}.log", child.name));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            eprintln!("--- last lines of {}", path.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A front-end and `nodes` nodes over the cluster file in `dir`, until every node is up.
fn start_cluster(dir: &Path, nodes: usize) -> Running {
    let mut children: Vec<ChildGuard> = (0..nodes)
        .map(|i| {
            let id = format!("node{i}");
            spawn_searcher(dir, &id, &["node", "--id", &id])
        })
        .collect();
    children.push(spawn_searcher(dir, "frontend", &["frontend"]));
    let url = frontend_url(dir);
    // `up` with a pid: the front-end has had a health answer from the node (a node it
    // has not probed yet is shown `up` without one, and may be ejected a moment later).
    wait_for("every node up and answering", PATIENCE, || {
        let (_, view) = get_json(&format!("{url}/cluster"))?;
        let all = view["nodes"].as_array()?;
        all.iter()
            .all(|n| n["state"] == "up" && n["pid"].is_u64())
            .then_some(())
    });
    Running {
        dir: dir.to_path_buf(),
        children,
    }
}

/// `(id, score)` of the first page of `q`, and the answer's shard accounting.
fn hits(url: &str, q: &str) -> (Vec<(u64, f64)>, Value) {
    let query: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, answer) =
        get_json(&format!("{url}/search?q={query}&size=10")).expect("the front-end answers");
    assert_eq!(status, 200, "{q}: {answer}");
    let hits = answer["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["id"].as_u64().expect("id"),
                h["score"].as_f64().expect("score"),
            )
        })
        .collect();
    (hits, answer["shards"].clone())
}

/// A client of the test's store, for what the test does behind the cluster's back.
fn client(garage: &Garage, prefix: &str) -> RemoteStore {
    let config = S3Config {
        endpoint: Some(garage.endpoint()),
        region: Some(REGION.into()),
        access_key_id: Some(garage.key_id.clone()),
        secret_access_key: Some(garage.secret_key.clone()),
        ..S3Config::default()
    };
    let at = format!("s3://{BUCKET}/{prefix}").parse().expect("url");
    RemoteStore::open(&at, &config).expect("open the store")
}

#[test]
fn an_s3_store_serves_the_same_hits_as_a_directory_store() {
    let Some(binary) = require_garage("an_s3_store_serves_the_same_hits_as_a_directory_store")
    else {
        return;
    };
    let tmp = temp_dir("s3-same-hits");
    let garage = Garage::start(&binary, &tmp.path().join("garage"));
    let url = format!("s3://{BUCKET}/wiki/en");
    build(&url, 3, Some(&garage), &tmp.path().join("staging"));
    // A second build of the slice publishes generation 2 and removes generation 1.
    build(&url, 3, Some(&garage), &tmp.path().join("staging"));
    let listing = client(&garage, "wiki/en").list().expect("list the store");
    assert!(
        listing.dirs.iter().all(|d| d.ends_with(".g2")),
        "{listing:?}"
    );
    assert_eq!(listing.dirs.len(), 3, "{listing:?}");

    let (s3_dir, local_dir) = (tmp.path().join("s3"), tmp.path().join("dir"));
    std::fs::create_dir_all(&s3_dir).expect("dir");
    std::fs::create_dir_all(&local_dir).expect("dir");
    let store = local_dir.join("store");
    build(
        store.to_str().expect("utf-8 path"),
        3,
        None,
        &tmp.path().join("staging"),
    );
    cluster_file(&s3_dir, &url, 3, 2, &garage.s3_table(""));
    cluster_file(&local_dir, "store", 3, 2, "");
    let _s3 = start_cluster(&s3_dir, 3);
    let _local = start_cluster(&local_dir, 3);
    for q in QUERIES {
        let (from_s3, shards) = hits(&frontend_url(&s3_dir), q);
        let (from_dir, _) = hits(&frontend_url(&local_dir), q);
        assert_eq!(shards["successful"], 3, "{q}: {shards}");
        let ids = |h: &[(u64, f64)]| h.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(ids(&from_s3), ids(&from_dir), "{q}");
        for (a, b) in from_s3.iter().zip(&from_dir) {
            assert!((a.1 - b.1).abs() < 1e-4, "{q}: scores {a:?} vs {b:?}");
        }
    }
    assert!(!hits(&frontend_url(&s3_dir), "anarchism").0.is_empty());
    // Served from the nodes' own disks: together they hold R = 2 verified copies of
    // each of the 3 shards.
    let copies: usize = (0..3)
        .map(|i| {
            let data = s3_dir.join(format!("nodes/node{i}"));
            let entries = std::fs::read_dir(data).map(|d| d.flatten().count());
            entries.unwrap_or(0)
        })
        .sum();
    assert_eq!(copies, 6);
}

#[test]
fn a_corrupted_object_is_refused_and_named() {
    let Some(binary) = require_garage("a_corrupted_object_is_refused_and_named") else {
        return;
    };
    let tmp = temp_dir("s3-corrupt");
    let garage = Garage::start(&binary, &tmp.path().join("garage"));
    build(
        &format!("s3://{BUCKET}/corrupt"),
        2,
        Some(&garage),
        &tmp.path().join("staging"),
    );
    let store = client(&garage, "corrupt");
    let shard = store.list().expect("list").dirs.remove(0);
    let manifest_bytes = store
        .get(&format!("{shard}/manifest.json"))
        .expect("get")
        .expect("a manifest");
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("json");
    let victim = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .max_by_key(|f| f["bytes"].as_u64())
        .and_then(|f| f["name"].as_str())
        .expect("a file")
        .to_string();
    let object = format!("{shard}/{victim}");
    let mut bytes = store
        .get(&object)
        .expect("get")
        .expect("the object")
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    store.put(&object, bytes).expect("put the corrupted copy");

    let dir = tmp.path().join("cluster");
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("s3://{BUCKET}/corrupt");
    cluster_file(&dir, &url, 1, 1, &garage.s3_table(""));
    let _node = spawn_searcher(&dir, "node0", &["node", "--id", "node0"]);
    let named = format!("{url}/{object} is corrupted");
    let line = wait_for("the node to refuse the corrupted replica", PATIENCE, || {
        let text = log(&dir, "node0");
        text.lines()
            .find(|l| l.contains("replica refused"))
            .map(str::to_string)
    });
    assert!(line.contains(&named), "{line}");
    // The refused replica left nothing that looks installed; the other shard serves.
    // (Healing retries the refused shard in the background: its staging directory,
    // `.installing-<shard>`, may be there at any moment and is never served.)
    wait_for("the good replica to serve", PATIENCE, || {
        log(&dir, "node0").contains("replica serving").then_some(())
    });
    let installed: Vec<_> = std::fs::read_dir(dir.join("nodes/node0"))
        .expect("data dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".installing-"))
        .collect();
    let corrupted = shard.split('.').next().expect("a shard id").to_string();
    assert_eq!(installed.len(), 1, "{installed:?}");
    assert_ne!(installed[0], corrupted, "{installed:?}");
}

#[test]
fn a_node_retries_while_the_store_is_down_and_names_it_when_it_gives_up() {
    let test = "a_node_retries_while_the_store_is_down_and_names_it_when_it_gives_up";
    let Some(binary) = require_garage(test) else {
        return;
    };
    let tmp = temp_dir("s3-down");
    let mut garage = Garage::start(&binary, &tmp.path().join("garage"));
    let url = format!("s3://{BUCKET}/down");
    build(&url, 2, Some(&garage), &tmp.path().join("staging"));
    garage.stop();

    // Patient retries: the node waits for the store and starts once it is back.
    let patient = tmp.path().join("patient");
    std::fs::create_dir_all(&patient).expect("dir");
    let table = garage.s3_table("max_retries = 30\nretry_timeout_s = 120");
    cluster_file(&patient, &url, 1, 1, &table);
    let mut node = spawn_searcher(&patient, "node0", &["node", "--id", "node0"]);
    wait_for("the node to log a retry", PATIENCE, || {
        let text = log(&patient, "node0");
        text.contains("backing off").then_some(())
    });
    assert!(
        node.child.try_wait().expect("wait").is_none(),
        "the node gave up early"
    );
    garage.restart();
    wait_for("both replicas to serve", PATIENCE, || {
        let serving = log(&patient, "node0").matches("replica serving").count();
        (serving == 2).then_some(())
    });

    // Few retries: the node exits with an error naming the store.
    garage.stop();
    let impatient = tmp.path().join("impatient");
    std::fs::create_dir_all(&impatient).expect("dir");
    let table = garage.s3_table("max_retries = 1\nretry_timeout_s = 5");
    cluster_file(&impatient, &url, 1, 1, &table);
    let mut quick = spawn_searcher(&impatient, "node0", &["node", "--id", "node0"]);
    let status = wait_for("the node to give up", PATIENCE, || {
        quick.child.try_wait().expect("wait")
    });
    assert!(!status.success());
    let text = log(&impatient, "node0");
    assert!(text.contains(&format!("{url}/")), "{text}");
}

/// A file above the multipart threshold (16 MiB) goes up in 8 MiB parts, several in
/// flight, and comes back byte for byte: the download checks size and blake3 as it
/// streams. A download held to another checksum is refused, naming the object.
#[test]
fn a_file_above_the_multipart_threshold_goes_up_in_parts_and_comes_back_verified() {
    let Some(binary) = require_garage("multipart") else {
        return;
    };
    let tmp = temp_dir("s3-multipart");
    let garage = Garage::start(&binary, &tmp.path().join("garage"));
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).expect("dir");
    // 41 MiB + 3 bytes: five full parts and a short one; xorshift bytes, so no two parts
    // are alike.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..(41usize << 20) + 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(source.join("big.bin"), &bytes).expect("write");
    let entry = ShardManifest::describe_files(&source)
        .expect("describe")
        .remove(0);
    let store = client(&garage, "multipart");
    store
        .upload_file("shard/big.bin", &source.join("big.bin"))
        .expect("multipart upload");
    let listed = store.sub("shard").list().expect("list");
    assert_eq!(listed.files, vec!["big.bin".to_string()], "{listed:?}");

    let back = tmp.path().join("back.bin");
    store
        .download_file("shard/big.bin", &back, &entry)
        .expect("download, verified");
    assert!(
        std::fs::read(&back).expect("read") == bytes,
        "the bytes that came back differ"
    );

    let wrong = FileEntry {
        blake3: "0".repeat(64),
        ..entry
    };
    let error = store
        .download_file("shard/big.bin", &tmp.path().join("again.bin"), &wrong)
        .expect_err("a wrong checksum is refused")
        .to_string();
    assert!(
        error.contains("multipart/shard/big.bin") && error.contains("blake3"),
        "{error}"
    );
}

/// A file seen in a staging directory: name, bytes, inode.
type StagedFile = (String, u64, u64);

/// The staging directories (`.installing-*`) in `data` and, for each, its files.
fn staging(data: &Path) -> Vec<(PathBuf, Vec<StagedFile>)> {
    let Ok(entries) = std::fs::read_dir(data) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".installing-"))
        .map(|e| {
            let files = std::fs::read_dir(e.path())
                .map(|files| {
                    files
                        .flatten()
                        .filter_map(|f| {
                            let meta = f.metadata().ok()?;
                            let name = f.file_name().to_string_lossy().into_owned();
                            Some((name, meta.len(), meta.ino()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (e.path(), files)
        })
        .collect()
}

/// The replica directories of `data` (not staging ones): each must verify in full.
fn assert_installed_copies_verify(data: &Path) -> usize {
    let schema = shard_proto::WikiSchema::new();
    let mut verified = 0;
    for entry in std::fs::read_dir(data).expect("data dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        ShardManifest::read_verified(&entry.path(), &schema).unwrap_or_else(|e| {
            panic!("{} looks installed but is not: {e}", entry.path().display())
        });
        verified += 1;
    }
    verified
}

#[test]
fn a_node_killed_in_the_middle_of_a_download_leaves_nothing_that_looks_installed() {
    let Some(binary) = require_garage(
        "a_node_killed_in_the_middle_of_a_download_leaves_nothing_that_looks_installed",
    ) else {
        return;
    };
    let tmp = temp_dir("s3-kill-mid-copy");
    let garage = Garage::start(&binary, &tmp.path().join("garage"));
    let url = format!("s3://{BUCKET}/wiki/slow");
    build(&url, 2, Some(&garage), &tmp.path().join("staging"));
    // 64 KiB/s back from the store: a shard of the sample takes many seconds.
    let upstream = format!("127.0.0.1:{}", garage.s3_port)
        .parse()
        .expect("address");
    let link = SlowLink::start(upstream, 64 * 1024);
    let dir = tmp.path().join("cluster");
    std::fs::create_dir_all(&dir).expect("dir");
    let table = garage.s3_table("").replace(
        &garage.endpoint(),
        &format!("http://127.0.0.1:{}", link.port),
    );
    cluster_file(&dir, &url, 1, 1, &table);
    let data = dir.join("nodes/node0");

    let sizes = file_sizes(&garage, "wiki/slow");

    let mut node = spawn_searcher(&dir, "node0", &["node", "--id", "node0"]);
    // Killed once a file is cut short (some bytes, not all) after a complete one: files
    // download one after another.
    let half = wait_for("a file half downloaded", PATIENCE, || {
        let (dir, _) = staging(&data).into_iter().find(|(dir, files)| {
            let shard = shard_of(dir);
            let size = |name: &str| sizes.get(&(shard.clone(), name.to_string())).copied();
            let cut = |(name, bytes, _): &StagedFile| *bytes > 0 && Some(*bytes) < size(name);
            let whole = |(name, bytes, _): &StagedFile| Some(*bytes) == size(name);
            files.iter().any(cut) && files.iter().any(whole)
        })?;
        Some(dir)
    });
    node.signal(Signal::SIGKILL);
    let status = node.child.wait().expect("wait for the node");
    assert!(!status.success(), "{status}");
    let (_, at_kill) = staging(&data)
        .into_iter()
        .find(|(dir, _)| *dir == half)
        .expect("the interrupted staging directory stays");
    println!(
        "killed while downloading into {}: {at_kill:?}",
        half.display()
    );
    // The interrupted copy has no manifest, so nothing takes it for a replica; any
    // directory under a replica's name verifies in full.
    assert!(
        (at_kill.iter()).all(|(name, _, _)| name != shard_proto::manifest::MANIFEST_FILE),
        "{at_kill:?}"
    );
    assert_installed_copies_verify(&data);

    // Started again (the link fast now): it installs what it lacks, verifies, serves.
    link.set_rate(0);
    let _cluster = start_cluster(&dir, 1);
    let url = frontend_url(&dir);
    let (found, shards) = hits(&url, "the");
    assert_eq!(shards["successful"], 2, "{shards}");
    assert!(!found.is_empty());
    assert_eq!(assert_installed_copies_verify(&data), 2);
    assert!(staging(&data).is_empty(), "{:?}", staging(&data));
    // Resumed: every file complete at the kill is the same file (inode) in the replica
    // now; the one cut short was fetched again, whole.
    let shard = shard_of(&half);
    let installed = data.join(&shard);
    let (mut kept, mut fetched) = (Vec::new(), Vec::new());
    for (file, bytes, inode) in &at_kill {
        let now = std::fs::metadata(installed.join(file)).expect("installed file");
        assert_eq!(
            Some(now.len()),
            sizes.get(&(shard.clone(), file.clone())).copied()
        );
        match now.len() == *bytes {
            true => {
                assert_eq!(now.ino(), *inode, "{file} was complete yet fetched again");
                kept.push(file);
            }
            false => fetched.push(file),
        }
    }
    println!("resumed: kept {kept:?}, fetched again {fetched:?}");
    // (A file seen cut just before the kill may have completed in the instant between.)
    assert!(!kept.is_empty(), "{at_kill:?}");
}

/// The shard a staging directory `.installing-<shard>` is for.
fn shard_of(staging: &Path) -> String {
    let name = staging.file_name().expect("name").to_string_lossy();
    name.trim_start_matches(".installing-").to_string()
}

/// (shard, file) -> bytes, from the manifests of the store at `prefix`.
fn file_sizes(garage: &Garage, prefix: &str) -> std::collections::BTreeMap<(String, String), u64> {
    let store = client(garage, prefix);
    let mut sizes = std::collections::BTreeMap::new();
    for dir in store.list().expect("list the store").dirs {
        let name = format!("{dir}/{}", shard_proto::manifest::MANIFEST_FILE);
        let bytes = store.get(&name).expect("get").expect("a manifest");
        let manifest = ShardManifest::from_bytes(&bytes, Path::new(&name)).expect("manifest");
        for file in manifest.files {
            sizes.insert((manifest.shard.to_string(), file.name), file.bytes);
        }
    }
    sizes
}
