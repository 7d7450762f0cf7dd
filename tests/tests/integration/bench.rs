//! The load generator against the real single-process baseline: `indexer build --shards 1
//! --nodes 1` over the English sample dump, `searcher baseline serve` on a loopback port,
//! and `searcher bench` / `searcher baseline in-process` driving the shared benchmark
//! queries for a few seconds. Asserts what was answered and printed, never timings.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{
    bin, free_port, get_json, run_ok, shared_corpus, shared_queries, temp_dir, wait_for, ChildGuard,
};

/// Builds the single index of the English sample into `dir/single`.
fn build_single_index(dir: &Path) -> std::path::PathBuf {
    build_store(dir, "single", 1)
}

/// `indexer build --shards N` of the English sample into `dir/name`.
fn build_store(dir: &Path, name: &str, shards: u32) -> std::path::PathBuf {
    let out = dir.join(name);
    run_ok(
        Command::new(bin("indexer"))
            .args(["build", "--input"])
            .arg(shared_corpus("enwiki-sample.xml.bz2"))
            .arg("--out")
            .arg(&out)
            .args([
                "--shards",
                &shards.to_string(),
                "--node",
                "0",
                "--nodes",
                "1",
            ]),
    );
    out
}

/// Starts `searcher baseline serve` and waits until it answers a search.
fn serve_baseline(index: &Path) -> (ChildGuard, String) {
    let url = format!("http://127.0.0.1:{}", free_port());
    let server = ChildGuard::spawn(
        "baseline-serve",
        Command::new(bin("wikisearch"))
            .args(["baseline", "serve", "--index"])
            .arg(index)
            .arg("--listen")
            .arg(url.trim_start_matches("http://")),
    );
    wait_for("the baseline to answer", Duration::from_secs(60), || {
        get_json(&format!("{url}/search?q=anarchism&size=3")).filter(|(status, _)| *status == 200)
    });
    (server, url)
}

fn summary_of(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}):\n{text}"))
}

#[test]
fn bench_drives_the_baseline_server_without_errors() {
    let tmp = temp_dir("bench-baseline");
    let index = build_single_index(tmp.path());
    let (server, url) = serve_baseline(&index);

    let (status, page) = get_json(&format!("{url}/search?q=anarchism&size=3")).unwrap();
    assert_eq!(status, 200);
    let hit = &page["hits"][0];
    for field in ["id", "title", "url", "score", "snippet"] {
        assert!(!hit[field].is_null(), "{field} missing in {page}");
    }
    assert_eq!(page["partial"], false);

    // Closed loop, JSON summary.
    let output = run_ok(
        Command::new(bin("wikisearch"))
            .args(["bench", "--url", &url, "--queries"])
            .arg(shared_queries())
            .args(["--concurrency", "4", "--duration", "3", "--json"]),
    );
    let summary = summary_of(&output.stdout);
    assert_eq!(summary["overall"]["errors"], 0, "{summary}");
    assert_eq!(summary["overall"]["partial"], 0, "{summary}");
    assert!(
        summary["overall"]["requests"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(
        summary["overall"]["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    for kind in ["intersection", "phrase", "union"] {
        assert!(
            summary["kinds"][kind]["requests"].as_u64().unwrap() > 0,
            "{kind}: {summary}"
        );
    }

    // Open loop with the live timeline, as text.
    let output = run_ok(
        Command::new(bin("wikisearch"))
            .args(["bench", "--url", &url, "--queries"])
            .arg(shared_queries())
            .args(["--rate", "200", "--duration", "3", "--timeline"]),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.lines().next().unwrap().contains("hedges"), "{text}");
    let rows = text
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .collect::<Vec<_>>();
    assert!(rows.len() >= 2, "a row per second expected:\n{text}");
    assert!(
        rows.iter().all(|row| row.trim_end().ends_with('-')),
        "no /metrics → '-':\n{text}"
    );
    let all = text
        .lines()
        .find(|l| l.starts_with("all"))
        .unwrap_or_else(|| panic!("{text}"));
    let errors: u64 = all.split_whitespace().nth(7).unwrap().parse().unwrap();
    assert_eq!(errors, 0, "{text}");

    // Timeline rows as JSON lines, then the summary.
    let output = run_ok(
        Command::new(bin("wikisearch"))
            .args(["bench", "--url", &url, "--queries"])
            .arg(shared_queries())
            .args([
                "--concurrency",
                "2",
                "--duration",
                "2",
                "--timeline",
                "--json",
            ]),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, rows) = lines.split_last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert!(
        !rows.is_empty()
            && rows
                .iter()
                .all(|r| r["type"] == "second" && r["hedges"].is_null())
    );
    assert_eq!(summary["overall"]["errors"], 0, "{text}");

    assert!(
        tests::process_alive(server.pid()),
        "the baseline survived the load"
    );
}

#[test]
fn in_process_baseline_reports_the_same_figures_over_one_index_or_a_store() {
    let tmp = temp_dir("bench-in-process");
    let index = build_single_index(tmp.path());
    let store = build_store(tmp.path(), "store", 3);
    for (flag, dir) in [("--index", &index), ("--store", &store)] {
        let output = run_ok(
            Command::new(bin("wikisearch"))
                .args(["baseline", "in-process", flag])
                .arg(dir)
                .arg("--queries")
                .arg(shared_queries())
                .args(["--threads", "2", "--duration", "2", "--json"]),
        );
        let summary = summary_of(&output.stdout);
        assert_eq!(summary["mode"], "in-process");
        assert_eq!(summary["overall"]["errors"], 0, "{flag}: {summary}");
        assert!(
            summary["overall"]["requests"].as_u64().unwrap() > 0,
            "{flag}: {summary}"
        );
        assert!(
            summary["kinds"]["phrase"]["latency_ms"]["p50"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
}

#[test]
fn bad_query_files_and_flags_are_refused_with_a_message() {
    let tmp = temp_dir("bench-bad-input");
    let queries = tmp.path().join("queries.jsonl");
    std::fs::write(
        &queries,
        "anarchism\n{\"query\": \"+a +b\"}\n{\"query\": 7}\n",
    )
    .unwrap();
    let output = Command::new(bin("wikisearch"))
        .args(["bench", "--url", "http://127.0.0.1:9", "--queries"])
        .arg(&queries)
        .args(["--duration", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");

    let output = Command::new(bin("wikisearch"))
        .args(["bench", "--url", "http://127.0.0.1:9", "--queries"])
        .arg(shared_queries())
        .args(["--concurrency", "0", "--duration", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("concurrency"));

    let output = Command::new(bin("wikisearch"))
        .args(["baseline", "serve", "--index"])
        .arg(tmp.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no tantivy index"));
}
