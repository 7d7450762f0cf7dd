//! What the demo reads from its own front-end (`GET /cluster`) and prints: waiting until
//! every node it started is up and answering as that very process, then the page URL, the
//! node table and the failover hint.
//!
//! A node counts as ready only once the front-end reports the pid the demo spawned: the
//! front-end learns pids from the nodes' health answers, so this proves the node answered,
//! not merely that the front-end has not noticed a problem yet.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::StopSignals;
use crate::supervisor::{describe_exit, log_tail, Supervisor};
use searcher::cluster::ClusterConfig;
use searcher::model::{ClusterView, NodeHealth};

/// One request to the front-end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A client for the demo's own front-end.
pub struct Frontend {
    client: Client<HttpConnector, Empty<Bytes>>,
    cluster_uri: hyper::Uri,
}

impl Frontend {
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Frontend {
            client: Client::builder(TokioExecutor::new()).build_http(),
            cluster_uri: format!("http://{addr}/cluster").parse()?,
        })
    }

    pub async fn cluster(&self) -> anyhow::Result<ClusterView> {
        let request = self.client.get(self.cluster_uri.clone());
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| anyhow!("no answer within {REQUEST_TIMEOUT:?}"))??;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{status}: {}", String::from_utf8_lossy(&body));
        }
        serde_json::from_slice(&body).context("unexpected /cluster answer")
    }
}

/// What a node lacks before it counts as ready, if anything.
fn not_ready(doc: &ClusterView, id: &str, pid: u32) -> Option<String> {
    let Some(node) = doc.nodes.iter().find(|n| n.id == id) else {
        return Some("not listed by the front-end".into());
    };
    if node.pid != Some(pid) {
        return Some(match &node.last_error {
            Some(err) => format!("not answering yet ({err})"),
            None => "not answering yet".into(),
        });
    }
    (node.state != NodeHealth::Up).then(|| {
        format!(
            "{} ({})",
            node.state.as_str(),
            node.last_error.as_deref().unwrap_or("no error")
        )
    })
}

/// Waits until the front-end answers and reports every node up with the pid the demo
/// started. Fails early, with the log's end, if a child exits; `Ok(None)` on a stop signal.
pub async fn wait_ready(
    frontend: &Frontend,
    config: &ClusterConfig,
    procs: &mut Supervisor,
    stop: &mut StopSignals,
    timeout: Duration,
) -> anyhow::Result<Option<ClusterView>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(exited) = procs.reap_exited().first() {
            bail!(
                "{} (pid {}) exited during start-up ({}); the end of {}:\n{}",
                exited.name,
                exited.pid,
                describe_exit(exited.exit()),
                exited.log.display(),
                log_tail(&exited.log, 25)
            );
        }
        let pending = match frontend.cluster().await {
            Ok(doc) => {
                let waiting: Vec<String> = config
                    .nodes
                    .iter()
                    .filter_map(|node| {
                        let pid = procs.get(&node.id)?.pid;
                        not_ready(&doc, &node.id, pid).map(|why| format!("{}: {why}", node.id))
                    })
                    .collect();
                if waiting.is_empty() {
                    return Ok(Some(doc));
                }
                waiting.join("; ")
            }
            Err(e) => format!("the front-end does not answer /cluster: {e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{}", timeout_report(timeout, &pending, config, procs));
        }
        tokio::select! {
            _ = stop.recv() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

fn timeout_report(
    timeout: Duration,
    pending: &str,
    config: &ClusterConfig,
    procs: &Supervisor,
) -> String {
    let mut report = format!("the cluster did not come up within {timeout:?}: {pending}");
    let names = std::iter::once("frontend").chain(config.nodes.iter().map(|n| n.id.as_str()));
    for name in names {
        if let Some(managed) = procs.get(name) {
            report.push_str(&format!(
                "\n\nthe end of {} (pid {}):\n{}",
                managed.log.display(),
                managed.pid,
                log_tail(&managed.log, 10)
            ));
        }
    }
    report
}

/// The banner printed once the cluster is up.
pub fn print_ready(
    doc: &ClusterView,
    config: &ClusterConfig,
    procs: &Supervisor,
    searcher: &Path,
    config_path: &Path,
    data: &Path,
) {
    let listen = config.frontend.listen;
    println!();
    println!("Search page:  http://{listen}/");
    println!("JSON API:     curl 'http://{listen}/search?q=anarchism&size=3'");
    println!("Cluster view: curl 'http://{listen}/cluster'");
    println!(
        "{} articles in {} shards over {} nodes, {} replicas of each shard.",
        doc.docs_total,
        doc.shards.len(),
        config.nodes.len(),
        config.replication
    );
    println!();
    println!(
        "  {:<10} {:>8} {:>7}  shards held",
        "process", "pid", "port"
    );
    for node in &config.nodes {
        let pid = procs.get(&node.id).map_or(0, |m| m.pid);
        let held = doc
            .nodes
            .iter()
            .find(|n| n.id == node.id)
            .map(|n| n.replicas.join(" "))
            .unwrap_or_default();
        println!(
            "  {:<10} {:>8} {:>7}  {held}",
            node.id,
            pid,
            node.rpc.port()
        );
    }
    if let Some(frontend) = procs.get("frontend") {
        println!(
            "  {:<10} {:>8} {:>7}  (front-end)",
            "frontend",
            frontend.pid,
            listen.port()
        );
    }
    let coordinators: Vec<String> = config
        .public_addresses()
        .iter()
        .map(|(id, http)| format!("{id} http://{http}/"))
        .collect();
    if !coordinators.is_empty() {
        println!();
        println!(
            "Every node coordinates too (page and API): {}",
            coordinators.join(", ")
        );
    }
    if let Some(first) = config.nodes.first() {
        let pid = procs.get(&first.id).map_or(0, |m| m.pid);
        println!();
        println!(
            "kill -9 {pid} to watch failover; restart it with: {}",
            restart_command(searcher, config_path, &first.id)
        );
    }
    println!(
        "Logs are in {}. Ctrl-C stops the cluster.",
        data.join("logs").display()
    );
}

/// The exact shell command that starts node `id` again (it works while the demo runs:
/// the node takes its old port and its replicas back).
pub fn restart_command(searcher: &Path, config_path: &Path, id: &str) -> String {
    let exe = searcher.display().to_string();
    let config = config_path.display().to_string();
    format!(
        "{} node --config {} --id {}",
        shell_quote(&exe),
        shell_quote(&config),
        shell_quote(id)
    )
}

/// The exact shell command that starts the demo's front-end again.
pub fn frontend_restart_command(searcher: &Path, config_path: &Path, listen: SocketAddr) -> String {
    format!(
        "{} frontend --config {} --listen {listen}",
        shell_quote(&searcher.display().to_string()),
        shell_quote(&config_path.display().to_string()),
    )
}

/// Quotes a word for a POSIX shell, only when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("/usr/bin/searcher"), "/usr/bin/searcher");
        assert_eq!(shell_quote("/tmp/my data/c.toml"), "'/tmp/my data/c.toml'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_node_is_ready_only_when_it_reports_our_pid() {
        let doc: ClusterView = serde_json::from_str(
            r#"{"nodes":[
                 {"id":"node-1","addr":"a","state":"up","pid":42,"replicas":["n0of1-s0of1"],
                  "last_error":null,"latency_ms":1.0,"in_flight":0},
                 {"id":"node-2","addr":"a","state":"up","pid":null,"replicas":[],
                  "last_error":"connection refused","latency_ms":1.0,"in_flight":0},
                 {"id":"node-3","addr":"a","state":"down","pid":7,"replicas":[],
                  "last_error":"timeout","latency_ms":1.0,"in_flight":0}],
                "shards":[],"docs_total":106}"#,
        )
        .unwrap();
        assert_eq!(not_ready(&doc, "node-1", 42), None);
        assert!(not_ready(&doc, "node-1", 43).is_some());
        assert!(not_ready(&doc, "node-2", 9)
            .unwrap()
            .contains("connection refused"));
        assert!(not_ready(&doc, "node-3", 7).unwrap().contains("down"));
        assert!(not_ready(&doc, "node-4", 1).unwrap().contains("not listed"));
    }
}
