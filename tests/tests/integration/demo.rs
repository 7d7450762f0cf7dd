//! `searcher demo` as a user runs it (from the workspace root, on the real English sample):
//! the page and the API answer, the printed restart command brings a killed node back, a
//! stopped demo leaves no child behind (SIGTERM: clean stop; SIGKILL: the children's death
//! signal), a second start reuses the build, and bad invocations fail fast and clearly.

use std::process::Command;
use std::time::Duration;

use tests::Signal;
use tests::{
    bin, get_json, process_alive, run_ok, send_signal, temp_dir, wait_for, ChildGuard, Demo,
};

/// Children must be gone this soon after the demo stops (SIGTERM drains, then SIGKILL at 10 s).
const CHILDREN_GONE: Duration = Duration::from_secs(30);

fn search(demo: &Demo, q: &str) -> serde_json::Value {
    let url = format!("{}/search?q={q}&size=5", demo.url);
    let (status, body) = get_json(&url).unwrap_or_else(|| panic!("no answer from {url}"));
    assert_eq!(status, 200, "{url}: {body}");
    body
}

fn assert_full_results(body: &serde_json::Value) {
    assert_eq!(body["partial"], false, "{body}");
    assert!(body["total"].as_u64().unwrap_or(0) > 0, "{body}");
    let hits = body["hits"].as_array().expect("hits");
    assert!(!hits.is_empty(), "{body}");
    for hit in hits {
        assert!(
            hit["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{hit}"
        );
        assert!(hit["shard"].is_string() && hit["node"].is_string(), "{hit}");
    }
}

fn cluster_node(demo: &Demo, id: &str) -> serde_json::Value {
    let (_, body) = get_json(&format!("{}/cluster", demo.url)).expect("/cluster answers");
    body["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no {id} in /cluster: {body}"))
}

fn assert_all_gone(demo: &Demo) {
    for (name, pid) in &demo.pids {
        wait_for(
            &format!("{name} (pid {pid}) to be gone"),
            CHILDREN_GONE,
            || (!process_alive(*pid)).then_some(()),
        );
    }
}

fn page(demo: &Demo) -> String {
    let url = format!("{}/", demo.url);
    let mut response = ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.body_mut().read_to_string().expect("page body")
}

#[test]
fn demo_serves_page_and_search_restarts_a_node_and_stops_every_child_on_sigterm() {
    let dir = temp_dir("demo-sigterm");
    let mut demo = Demo::start(dir.path(), &[]);
    let output = demo.output();
    assert!(
        output.contains("Search page:  http://127.0.0.1:"),
        "{output}"
    );
    assert_eq!(demo.node_ids(), ["node-1", "node-2", "node-3"], "{output}");
    assert!(dir.path().join("cluster.toml").is_file());
    assert!(dir.path().join("logs/node-1.log").is_file());

    let html = page(&demo);
    assert!(
        html.contains("id=\"q\"") && html.contains("/cluster"),
        "unexpected page:\n{html}"
    );
    let body = search(&demo, "anarchism");
    assert_full_results(&body);
    assert!(
        body["hits"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Anarchism"),
        "{body}"
    );

    // kill -9 a node as the banner suggests, then run the printed restart command.
    let old_pid = demo.pid("node-1");
    assert!(send_signal(old_pid, Signal::SIGKILL));
    wait_for(
        "the demo to report node-1's exit",
        Duration::from_secs(30),
        || {
            demo.output()
                .contains(&format!("node-1 (pid {old_pid}) exited"))
                .then_some(())
        },
    );
    assert_full_results(&search(&demo, "albedo"));
    let restart = demo.restart_command();
    assert!(restart.contains("--id node-1"), "{restart}");
    let log = std::fs::File::create(dir.path().join("restarted-node-1.log")).unwrap();
    let restarted = ChildGuard::spawn(
        "restarted node-1",
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec {restart}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    wait_for(
        "the restarted node-1 to be up",
        Duration::from_secs(120),
        || {
            let node = cluster_node(&demo, "node-1");
            (node["state"] == "up" && node["pid"] == restarted.pid()).then_some(())
        },
    );
    assert_full_results(&search(&demo, "autism"));

    assert!(send_signal(demo.guard.pid(), Signal::SIGTERM));
    let status = demo.wait_exit(Duration::from_secs(60));
    assert!(
        status.success(),
        "demo exited with {status}:\n{}",
        demo.output()
    );
    assert!(demo.output().contains("Stopped."), "{}", demo.output());
    assert_all_gone(&demo);
}

#[test]
fn sigkilled_demo_leaves_no_child_and_a_restart_reuses_the_build() {
    let dir = temp_dir("demo-sigkill");
    let first = Demo::start(dir.path(), &[]);
    assert!(first.output().contains("indexer-1:"), "{}", first.output());
    assert!(send_signal(first.guard.pid(), Signal::SIGKILL));
    assert_all_gone(&first);
    drop(first);

    let mut second = Demo::start(dir.path(), &[]);
    assert!(
        second.output().contains("Reusing the index"),
        "{}",
        second.output()
    );
    assert_full_results(&search(&second, "albedo"));

    // The data directory is locked while a demo uses it.
    let other_port = tests::free_port();
    let output = Command::new(bin("wikisearch"))
        .current_dir(tests::workspace_root())
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{other_port}"),
            "--data",
        ])
        .arg(dir.path())
        .output()
        .expect("run a second demo");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another demo"), "{stderr}");

    assert!(send_signal(second.guard.pid(), Signal::SIGTERM));
    assert!(
        second.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        second.output()
    );
    assert_all_gone(&second);
}

#[test]
fn bad_invocations_fail_before_any_work_with_clear_messages() {
    let dir = temp_dir("demo-bad");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--listen", &taken_addr], "already in use"),
        (&["--dump", "/no/such/dump.xml.bz2"], "Pass --dump PATH"),
        (&["--shards", "5"], "not a multiple of --indexers"),
        (&["--replicas", "4"], "between 1 and --nodes 3"),
    ];
    for (args, expected) in cases {
        let data = dir.path().join("data");
        let output = Command::new(bin("wikisearch"))
            .current_dir(tests::workspace_root())
            .arg("demo")
            .arg("--data")
            .arg(&data)
            .args(*args)
            .output()
            .expect("run searcher demo");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!data.join("shards").exists(), "{args:?} started building");
    }
    // The same flags are what `searcher demo --help` documents.
    let help = run_ok(Command::new(bin("wikisearch")).args(["demo", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--dump",
        "--listen",
        "--data",
        "--indexers",
        "--nodes",
        "--replicas",
        "--shards",
        "--rebuild",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
