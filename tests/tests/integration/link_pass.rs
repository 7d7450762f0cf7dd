//! The link pass as an operator runs it: `indexer links` on every slice, then `indexer
//! build --links` on every slice, one process after another, over the real English
//! sample.
//!
//! - the ranking does not depend on K: for K = 1, 2 and 4 indexers the top 10 (ids and
//!   scores, global statistics over every shard) of queries made from titles, redirect
//!   titles, anchor texts and body words is the same;
//! - no redirect is lost: over the K builds, attached + unresolved = the dump's redirects;
//! - a redirect title finds its target first, and `--no-aliases` leaves redirects out;
//! - a build whose link tables are missing fails at once, naming the command to run;
//! - a build reading the link pass's page spool (`--spool`) builds the same index as one
//!   reading the dump, and a spool of another slice is not used.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use shard_proto::stats::ShardTermStats;
use shard_proto::{query_parser, rank, title_key, GlobalStats, WikiSchema};
use tantivy::collector::TopDocs;
use tantivy::schema::Value as _;
use tantivy::{Index, ReloadPolicy, Searcher, TantivyDocument};
use tests::{bin, run_ok, shared_corpus, temp_dir};

/// ns-0 redirects of the English sample (100 redirects, one of them in ns 4).
const SAMPLE_REDIRECTS: u64 = 99;

fn indexer(args: &[&str], input: &Path) -> Command {
    let mut cmd = Command::new(bin("indexer"));
    cmd.args(args).arg("--input").arg(input);
    cmd
}

/// Runs the link pass and the builds of K slices into `store`; returns the summaries.
fn build_store(store: &Path, nodes: u32, extra: &[&str]) -> Vec<Value> {
    build_store_with(store, nodes, &[], extra)
        .into_iter()
        .map(|(summary, _)| summary)
        .collect()
}

/// [`build_store`] with flags for the link pass too; returns each build's summary and
/// log (stderr).
fn build_store_with(
    store: &Path,
    nodes: u32,
    links_extra: &[&str],
    extra: &[&str],
) -> Vec<(Value, String)> {
    let input = shared_corpus("enwiki-sample.xml.bz2");
    let links = store.join("links");
    for node in 0..nodes {
        let (node, nodes) = (node.to_string(), nodes.to_string());
        let args = [
            "links",
            "--threads",
            "2",
            "--node",
            &node,
            "--nodes",
            &nodes,
        ];
        run_ok(
            indexer(&args, &input)
                .args(links_extra)
                .arg("--out")
                .arg(&links)
                .stdout(Stdio::null()),
        );
    }
    (0..nodes)
        .map(|node| {
            let (node, nodes) = (node.to_string(), nodes.to_string());
            let args = [
                "build",
                "--threads",
                "2",
                "--memory-mb",
                "256",
                "--shards",
                "2",
                "--json",
                "--node",
                &node,
                "--nodes",
                &nodes,
            ];
            let out = run_ok(
                indexer(&args, &input)
                    .args(extra)
                    .arg("--links")
                    .arg(&links)
                    .arg("--out")
                    .arg(store),
            );
            let summary = serde_json::from_slice(&out.stdout).expect("build summary");
            (summary, String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

/// Every shard of a store searched in-process with summed statistics, as the cluster does.
struct Store {
    searchers: Vec<Searcher>,
    schema: WikiSchema,
}

impl Store {
    fn open(store: &Path) -> Store {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(store)
            .expect("store")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("manifest.json").exists())
            .collect();
        dirs.sort();
        let index = |dir: &PathBuf| Index::open_in_dir(dir).expect("open shard");
        let schema = WikiSchema::of_index(&index(&dirs[0])).expect("a known schema");
        let searchers = dirs
            .iter()
            .map(|dir| {
                let reader = index(dir)
                    .reader_builder()
                    .reload_policy(ReloadPolicy::Manual)
                    .try_into()
                    .expect("reader");
                reader.searcher()
            })
            .collect();
        Store { searchers, schema }
    }

    /// Top 10 (id, score), best first, ties by id.
    fn top(&self, q: &str) -> Vec<(u64, f32)> {
        let parsed = query_parser(&self.schema).parse_query(q).expect("parses");
        let query = rank(&self.schema, parsed, q);
        let fields = self.schema.scored_fields();
        let terms = GlobalStats::query_terms(query.as_ref());
        let per_shard: Vec<ShardTermStats> = self
            .searchers
            .iter()
            .map(|s| ShardTermStats::collect(s, &fields, &terms).expect("stats"))
            .collect();
        let stats = GlobalStats::merge(&fields, &terms, per_shard.iter());
        let mut hits = Vec::new();
        for searcher in &self.searchers {
            let provider = stats.provider(searcher);
            let collector = TopDocs::with_limit(10).order_by_score();
            let top = searcher
                .search_with_statistics_provider(query.as_ref(), &collector, &provider)
                .expect("search");
            for (score, address) in top {
                let doc: TantivyDocument = searcher.doc(address).expect("doc");
                let id = doc
                    .get_first(self.schema.fields.id)
                    .and_then(|v| v.as_u64());
                hits.push((id.expect("id"), score));
            }
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(10);
        hits
    }

    /// (title, stored redirect titles) of every article.
    fn articles(&self) -> Vec<(u64, String, Vec<String>)> {
        let f = self.schema.fields;
        let mut out = Vec::new();
        for searcher in &self.searchers {
            for (ord, segment) in searcher.segment_readers().iter().enumerate() {
                for doc in segment.doc_ids_alive() {
                    let address = tantivy::DocAddress::new(ord as u32, doc);
                    let doc: TantivyDocument = searcher.doc(address).expect("doc");
                    let title = doc
                        .get_first(f.title)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string();
                    let redirects = doc
                        .get_all(f.redirects)
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect();
                    let id = doc.get_first(f.id).and_then(|v| v.as_u64()).expect("id");
                    out.push((id, title, redirects));
                }
            }
        }
        out.sort();
        out
    }
}

fn redirects_accounted(summaries: &[Value]) -> u64 {
    summaries
        .iter()
        .map(|s| {
            let links = &s["links"];
            links["redirects_attached"].as_u64().expect("attached")
                + links["redirects_unresolved"].as_u64().expect("unresolved")
        })
        .sum()
}

#[test]
fn same_top_10_for_1_2_and_4_indexers_and_no_redirect_lost() {
    let dir = temp_dir("link-pass");
    let stores: Vec<(u32, Store)> = [1u32, 2, 4]
        .into_iter()
        .map(|k| {
            let store = dir.path().join(format!("k{k}"));
            let summaries = build_store(&store, k, &[]);
            assert_eq!(
                redirects_accounted(&summaries),
                SAMPLE_REDIRECTS,
                "K = {k}: {summaries:?}"
            );
            (k, Store::open(&store))
        })
        .collect();
    let articles = stores[0].1.articles();
    let mut queries: Vec<String> = Vec::new();
    for (_, title, redirects) in &articles {
        queries.push(title_key(title));
        queries.extend(redirects.iter().map(|r| title_key(r)));
    }
    queries.extend(
        [
            "anarchism history",
            "the",
            "\"natural science\"",
            "+aristotle +logic",
        ]
        .map(String::from),
    );
    queries.retain(|q| !q.is_empty());
    assert!(queries.len() >= 100, "{} queries", queries.len());
    let mut redirect_first = (0, 0);
    for q in &queries {
        let expected = stores[0].1.top(q);
        for (k, store) in &stores[1..] {
            let got = store.top(q);
            let ids = |h: &[(u64, f32)]| h.iter().map(|x| x.0).collect::<Vec<_>>();
            assert_eq!(ids(&got), ids(&expected), "{q}: K = {k} vs K = 1");
            for (a, b) in got.iter().zip(&expected) {
                assert!(
                    (a.1 - b.1).abs() <= 1e-4,
                    "{q}: K = {k}: {got:?} vs {expected:?}"
                );
            }
        }
    }
    for (id, _, redirects) in &articles {
        for r in redirects {
            redirect_first.1 += 1;
            if stores[0].1.top(&title_key(r)).first().map(|h| h.0) == Some(*id) {
                redirect_first.0 += 1;
            }
        }
    }
    // 13 of the sample's redirects point to one of its 106 articles.
    assert!(redirect_first.1 >= 10, "{redirect_first:?}");
    assert!(
        redirect_first.0 * 10 >= redirect_first.1 * 9,
        "redirect titles found their article first {} of {} times",
        redirect_first.0,
        redirect_first.1
    );
}

#[test]
fn no_aliases_leaves_redirects_out_and_missing_tables_are_named() {
    let dir = temp_dir("link-pass-options");
    let store = dir.path().join("store");
    let summaries = build_store(&store, 1, &["--no-aliases"]);
    assert_eq!(summaries[0]["links"]["redirects_attached"], 0);
    let held_out = Store::open(&store);
    assert!(held_out.articles().iter().all(|(_, _, r)| r.is_empty()));
    let linked: u64 = summaries[0]["links"]["linked_articles"]
        .as_u64()
        .expect("linked");
    assert!(linked > 20, "{linked} articles with incoming links");

    let output = indexer(
        &["build", "--memory-mb", "256", "--node", "1", "--nodes", "2"],
        &shared_corpus("enwiki-sample.xml.bz2"),
    )
    .arg("--links")
    .arg(store.join("links"))
    .arg("--out")
    .arg(dir.path().join("other"))
    .output()
    .expect("run indexer");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("indexer links --node 1 --nodes 2"),
        "{stderr}"
    );
}

#[test]
fn a_page_spool_builds_the_same_index_and_one_of_another_slice_is_not_used() {
    let dir = temp_dir("link-pass-spool");
    let spool = dir.path().join("spool");
    let spool_flag = ["--spool", spool.to_str().expect("utf-8 path")];
    let spooled = dir.path().join("spooled");
    let logs = build_store_with(&spooled, 2, &spool_flag, &spool_flag);
    for (node, (_, log)) in logs.iter().enumerate() {
        let file = format!("pages-n{node}of2.spool");
        assert!(log.contains("reading the slice's pages from"), "{log}");
        assert!(log.contains(&file), "{log}");
    }
    let from_dump = dir.path().join("from-dump");
    let summaries = build_store(&from_dump, 2, &[]);
    for ((spooled, _), read) in logs.iter().zip(&summaries) {
        for count in [
            "pages",
            "articles",
            "redirects",
            "other_namespaces",
            "shard_docs",
        ] {
            assert_eq!(spooled[count], read[count], "{count}: {spooled} vs {read}");
        }
    }
    let (spooled, from_dump) = (Store::open(&spooled), Store::open(&from_dump));
    let articles = from_dump.articles();
    assert_eq!(spooled.articles(), articles);
    for (_, title, _) in articles.iter().take(40) {
        let q = title_key(title);
        assert_eq!(spooled.top(&q), from_dump.top(&q), "{q}");
    }

    // A K = 1 build given the K = 2 spools: node 0 of 1 has none, then one of another
    // slice renamed to its name; both times the dump is read, and nothing is lost.
    let whole = spool.join("pages-n0of1.spool");
    for stale in [false, true] {
        if stale {
            std::fs::copy(spool.join("pages-n0of2.spool"), &whole).expect("copy spool");
        }
        let store = dir.path().join(format!("k1-{stale}"));
        let (_, log) = &build_store_with(&store, 1, &[], &spool_flag)[0];
        assert!(!log.contains("reading the slice's pages from"), "{log}");
        let why = if stale {
            "not from this input and slice"
        } else {
            "pages-n0of1.spool"
        };
        assert!(log.contains(why) && log.contains("instead"), "{log}");
        assert_eq!(Store::open(&store).articles(), articles);
    }
}
