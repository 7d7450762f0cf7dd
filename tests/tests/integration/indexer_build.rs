//! `indexer build` end to end, through the real binary: K concurrent nodes cover a real
//! dump exactly once, a shard opens with plain tantivy, a SIGKILLed build reruns to the
//! same result as a clean one, a truncated dump fails without publishing anything, and
//! the manifest verifier catches damaged shards.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use corpus::{classify, OpenOptions, PageEvent, PageKind};
use shard_proto::manifest::{ShardManifest, MANIFEST_FILE};
use shard_proto::{ShardId, WikiSchema};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::Value;
use tantivy::{Index, ReloadPolicy, TantivyDocument};
use tests::Signal;
use tests::{bin, run_ok, shared_corpus, temp_dir, wait_for, ChildGuard};

/// `indexer build` of slice `node` of `nodes` into `out`, with a JSON summary.
fn build_cmd(input: &Path, out: &Path, node: u32, nodes: u32, shards: u32) -> Command {
    build_cmd_with_memory(input, out, node, nodes, shards, 200)
}

/// [`build_cmd`] with another `--memory-mb` (a small budget flushes segments early).
fn build_cmd_with_memory(
    input: &Path,
    out: &Path,
    node: u32,
    nodes: u32,
    shards: u32,
    memory_mb: u32,
) -> Command {
    let mut cmd = Command::new(bin("indexer"));
    cmd.arg("build")
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--node", &node.to_string(), "--nodes", &nodes.to_string()])
        .args(["--shards", &shards.to_string()])
        .args([
            "--threads",
            "2",
            "--memory-mb",
            &memory_mb.to_string(),
            "--json",
        ]);
    cmd
}

fn summary(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad summary {stdout:?}: {e}"))
}

/// Ids of the articles (ns 0, not redirects) of `input`, by corpus's own reader.
fn article_ids(input: &Path) -> Vec<u64> {
    let reader = corpus::open(input, &OpenOptions::default()).expect("open input");
    let mut ids = Vec::new();
    for event in reader {
        if let PageEvent::Page(page) = event.expect("sample reads cleanly") {
            if classify(&page) == PageKind::Article {
                ids.push(page.id);
            }
        }
    }
    ids.sort_unstable();
    ids
}

/// Stored ids of every document of a shard, read with plain tantivy.
fn stored_ids(shard: &Path) -> Vec<u64> {
    let schema = WikiSchema::new();
    let index = Index::open_in_dir(shard).expect("open shard");
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .expect("reader");
    let searcher = reader.searcher();
    let mut ids = Vec::new();
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        for doc in segment.doc_ids_alive() {
            let stored: TantivyDocument = searcher
                .doc(tantivy::DocAddress::new(ord as u32, doc))
                .expect("stored doc");
            let id = stored.get_first(schema.fields.id).and_then(|v| v.as_u64());
            ids.push(id.expect("every doc stores its id"));
        }
    }
    ids.sort_unstable();
    ids
}

/// Published (live) shard directories of `out`, sorted.
fn published(out: &Path) -> Vec<(ShardId, PathBuf)> {
    shard_proto::store::live_shard_dirs(out).expect("read out dir")
}

/// Verified manifests and stored ids of every published shard.
fn verified_ids(out: &Path) -> BTreeMap<ShardId, Vec<u64>> {
    let schema = WikiSchema::new();
    published(out)
        .into_iter()
        .map(|(id, dir)| {
            let manifest = ShardManifest::read_verified(&dir, &schema)
                .unwrap_or_else(|e| panic!("{} does not verify: {e}", dir.display()));
            assert_eq!(manifest.shard, id);
            let ids = stored_ids(&dir);
            assert_eq!(ids.len() as u64, manifest.docs, "{id}: manifest doc count");
            for doc in &ids {
                assert_eq!(
                    ShardId::route(*doc, id.shards),
                    id.shard,
                    "{doc} routed to {id}"
                );
            }
            (id, ids)
        })
        .collect()
}

/// Runs the K = 3 nodes of one build at once and checks they cover the input exactly once.
/// Three nodes of `shards` shards each (on 2 threads: 2 shards are two lanes indexed
/// while the input is read, 4 are two lanes of two, the second of each spooled; 3 are one
/// lane of 2 threads).
fn three_nodes_cover_exactly_once(sample: &str, index: Option<&str>, shards: u32, test: &str) {
    let input = shared_corpus(sample);
    let tmp = temp_dir(test);
    let out = tmp.path().join("shards");
    let children: Vec<_> = (0..3)
        .map(|node| {
            let mut cmd = build_cmd(&input, &out, node, 3, shards);
            if let Some(index) = index {
                cmd.arg("--index").arg(shared_corpus(index));
            }
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn indexer")
        })
        .collect();
    let mut summaries = Vec::new();
    for child in children {
        let output = child.wait_with_output().expect("wait indexer");
        assert!(
            output.status.success(),
            "indexer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        summaries.push(summary(&output));
    }
    let per_shard = verified_ids(&out);
    assert_eq!(
        per_shard.len(),
        3 * shards as usize,
        "3 nodes x {shards} shards: {:?}",
        per_shard.keys()
    );
    let mut all: Vec<u64> = per_shard.values().flatten().copied().collect();
    all.sort_unstable();
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a document is in two shards");
    assert_eq!(all, article_ids(&input), "shards != articles of the input");
    for s in &summaries {
        let n = |key: &str| s[key].as_u64().unwrap_or_else(|| panic!("{key} in {s}"));
        let skipped: u64 = s["skipped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(n("docs"), n("articles"), "nothing lost: {s}");
        assert_eq!(
            n("pages"),
            n("articles") + n("redirects") + n("other_namespaces") + skipped
        );
        assert_eq!(s["shards"].as_array().unwrap().len(), shards as usize);
        assert!(n("index_bytes") > 0);
    }
    let docs: u64 = summaries.iter().map(|s| s["docs"].as_u64().unwrap()).sum();
    assert_eq!(docs as usize, all.len());
    assert_no_leftovers(&out);
}

/// Nothing but live shards, the slices' records and their lock files.
fn assert_no_leftovers(out: &Path) {
    let live = published(out);
    for entry in fs::read_dir(out).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            live.iter().any(|(_, dir)| *dir == entry.path())
                || name.ends_with(shard_proto::store::RECORD_SUFFIX)
                || name.starts_with(".lock-"),
            "unexpected {name} in the output directory"
        );
    }
}

#[test]
fn three_concurrent_nodes_cover_enwiki_exactly_once() {
    three_nodes_cover_exactly_once("enwiki-sample.xml.bz2", None, 2, "k3-enwiki");
}

#[test]
fn three_concurrent_nodes_cover_elwikivoyage_exactly_once() {
    three_nodes_cover_exactly_once("elwikivoyage-sample.xml.bz2", None, 3, "k3-elwikivoyage");
}

#[test]
fn three_concurrent_nodes_cover_a_multistream_dump_with_its_index_exactly_once() {
    three_nodes_cover_exactly_once(
        "elwikivoyage-multistream.xml.bz2",
        Some("elwikivoyage-multistream-index.txt.bz2"),
        4,
        "k3-multistream",
    );
}

#[test]
fn shard_opens_with_plain_tantivy_and_finds_anarchism_by_title() {
    let tmp = temp_dir("anarchism");
    let out = tmp.path().join("shards");
    let output = run_ok(&mut build_cmd(
        &shared_corpus("enwiki-sample.xml.bz2"),
        &out,
        0,
        1,
        1,
    ));
    assert_eq!(summary(&output)["docs"], 106);
    let (_, dir) = published(&out).pop().expect("one shard");
    let index = Index::open_in_dir(&dir).expect("plain tantivy opens the shard");
    let title = index.schema().get_field("title").unwrap();
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .unwrap();
    let searcher = reader.searcher();
    let query = QueryParser::for_index(&index, vec![title])
        .parse_query("anarchism")
        .unwrap();
    let hits = searcher
        .search(&query, &TopDocs::with_limit(5).order_by_score())
        .unwrap();
    let titles: Vec<String> = hits
        .iter()
        .map(|(_, addr)| {
            let doc: TantivyDocument = searcher.doc(*addr).unwrap();
            doc.get_first(title)
                .and_then(|v| v.as_str())
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        titles.first().map(String::as_str),
        Some("Anarchism"),
        "{titles:?}"
    );
}

#[test]
fn sigkilled_build_reruns_to_the_same_result_as_a_clean_build() {
    let tmp = temp_dir("sigkill");
    let dump = tmp.path().join("synth.xml.bz2");
    run_ok(
        Command::new(bin("indexer"))
            .args(["synth", "--pages", "20000", "--out"])
            .arg(&dump),
    );
    let clean = tmp.path().join("clean");
    let clean_summary = summary(&run_ok(&mut build_cmd_with_memory(
        &dump, &clean, 0, 1, 2, 64,
    )));

    let out = tmp.path().join("killed");
    let mut child = ChildGuard::spawn(
        "indexer build",
        build_cmd_with_memory(&dump, &out, 0, 1, 2, 64)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    // Midway: the shards are being written in their temporary directories.
    wait_for(
        "a segment file in a temporary shard directory",
        Duration::from_secs(120),
        || {
            let has_segment = |dir: PathBuf| {
                fs::read_dir(dir)
                    .ok()?
                    .flatten()
                    .find(|f| f.file_name().to_string_lossy().ends_with(".idx"))
            };
            fs::read_dir(&out).ok()?.flatten().find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    has_segment(e.path())
                } else {
                    None
                }
            })
        },
    );
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "the build finished before it could be killed: use a bigger dump"
    );
    child.signal(Signal::SIGKILL);
    let _ = child.child.wait();
    assert!(
        published(&out).is_empty(),
        "a killed build published a shard"
    );

    let rerun = run_ok(&mut build_cmd_with_memory(&dump, &out, 0, 1, 2, 64));
    assert_eq!(summary(&rerun)["docs"], clean_summary["docs"]);
    assert_eq!(verified_ids(&out), verified_ids(&clean));
    assert_no_leftovers(&out);
}

#[test]
fn truncated_dump_fails_naming_file_and_offset_and_publishes_nothing() {
    let tmp = temp_dir("truncated");
    let bytes = fs::read(shared_corpus("enwiki-sample.xml.bz2")).unwrap();
    let input = tmp.path().join("truncated.xml.bz2");
    fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();
    let out = tmp.path().join("shards");
    let output = build_cmd(&input, &out, 0, 1, 2).output().unwrap();
    assert!(
        !output.status.success(),
        "a truncated dump must fail the build"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("truncated.xml.bz2") && stderr.contains("offset"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was published"), "{stderr}");
    assert!(published(&out).is_empty());
    assert_no_leftovers(&out);
}

#[test]
fn damaged_shards_and_manifests_are_detected_by_the_verifier() {
    let tmp = temp_dir("damaged");
    let out = tmp.path().join("shards");
    run_ok(&mut build_cmd(
        &shared_corpus("elwikivoyage-sample.xml.bz2"),
        &out,
        0,
        1,
        4,
    ));
    let shards = published(&out);
    assert_eq!(shards.len(), 4);
    let schema = WikiSchema::new();
    let verify = |dir: &Path| ShardManifest::read_verified(dir, &schema).map(|_| ());

    // One flipped byte in the biggest segment file of shard 0.
    let dir = &shards[0].1;
    let manifest = ShardManifest::read(dir).unwrap();
    let victim = manifest
        .files
        .iter()
        .max_by_key(|f| f.bytes)
        .unwrap()
        .name
        .clone();
    let path = dir.join(&victim);
    let mut data = fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x20;
    fs::write(&path, &data).unwrap();
    let err = verify(dir).unwrap_err().to_string();
    assert!(err.contains(&victim), "{err}");

    // A truncated segment file in shard 1.
    let dir = &shards[1].1;
    let victim = ShardManifest::read(dir).unwrap().files[0].name.clone();
    let path = dir.join(&victim);
    let len = fs::metadata(&path).unwrap().len();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = verify(dir).unwrap_err().to_string();
    assert!(err.contains(&victim), "{err}");

    // A truncated manifest in shard 2, an edited one in shard 3.
    let path = shards[2].1.join(MANIFEST_FILE);
    let text = fs::read(&path).unwrap();
    fs::write(&path, &text[..text.len() / 2]).unwrap();
    assert!(verify(&shards[2].1)
        .unwrap_err()
        .to_string()
        .contains("invalid manifest"));
    let path = shards[3].1.join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).unwrap();
    let docs = ShardManifest::read(&shards[3].1).unwrap().docs;
    let edited = text.replace(
        &format!("\"docs\": {docs}"),
        &format!("\"docs\": {}", docs + 1),
    );
    assert_ne!(edited, text);
    fs::write(&path, edited).unwrap();
    assert!(verify(&shards[3].1)
        .unwrap_err()
        .to_string()
        .contains("checksum"));
}
