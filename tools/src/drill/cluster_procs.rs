//! What the drill knows about the running cluster and how it acts on its processes.
//!
//! - [`Frontend`]: a small HTTP client for the front-end's public JSON API (`/cluster`,
//!   `/search`), the only source of node pids and states, as an operator would see them;
//! - [`Monitor`]: polls `/cluster` every 100 ms in the background and records each node's
//!   state transitions with their time, which is how "time until ejected" and "time until
//!   serving again" are measured, and each node's *incarnation* (a new pid, or a smaller
//!   uptime: in a container the pid stays 1), which is how "started again" is told apart
//!   from "never left";
//! - [`start_node`]: starting a node again from the `searcher` binary, detached into its
//!   own process group (so the drill's Ctrl-C does not reach it) with its output appended
//!   to a log file, and bound to the life of the process that started the node it
//!   replaces ([`crate::keep`]). Signals and waiting for exits are the
//!   [`crate::supervisor`]'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use searcher::model::ClusterView;

/// How often the monitor reads `/cluster`.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// One request to the front-end; the front-end must answer its own API while nodes fail.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP client for one front-end.
#[derive(Clone)]
pub struct Frontend {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Frontend {
    /// A client for `http://addr`.
    pub fn new(base: String) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Frontend { base, client }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path_and_query`, returning the status and the parsed JSON body.
    pub async fn get_json(&self, path_and_query: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let uri: hyper::Uri = format!("{}{}", self.base, path_and_query)
            .parse()
            .with_context(|| format!("bad URL {}{}", self.base, path_and_query))?;
        let exchange = async {
            let response = self.client.get(uri.clone()).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("GET {uri}: no answer within {REQUEST_TIMEOUT:?}"))?
            .with_context(|| format!("GET {uri}"))?;
        let json = serde_json::from_slice(&body)
            .with_context(|| format!("GET {uri}: status {status}, body is not JSON"))?;
        Ok((status, json))
    }

    /// The front-end's view of the cluster.
    pub async fn cluster(&self) -> anyhow::Result<ClusterView> {
        let (status, json) = self.get_json("/cluster").await?;
        if status != 200 {
            bail!("GET /cluster answered {status}: {json}");
        }
        serde_json::from_value(json).context("GET /cluster: unexpected JSON shape")
    }
}

/// A node's state change seen by the monitor.
#[derive(Clone, Debug)]
pub struct Transition {
    pub at: Instant,
    pub node: String,
    pub from: String,
    pub to: String,
    pub last_error: Option<String>,
}

/// A node as last seen.
#[derive(Clone, Debug)]
struct Latest {
    state: String,
    pid: Option<u32>,
    uptime_ms: Option<u64>,
    /// Counts the node's processes seen so far (0: the first).
    incarnation: u64,
}

impl Latest {
    /// The node as `node` shows it, a new process if its pid changed or its uptime went
    /// back.
    fn next(previous: Option<&Latest>, node: &searcher::model::NodeView) -> Latest {
        let restarted = previous.is_some_and(|p| {
            let new_pid = matches!((p.pid, node.pid), (Some(a), Some(b)) if a != b);
            let younger = matches!((p.uptime_ms, node.uptime_ms), (Some(a), Some(b)) if b < a);
            new_pid || younger
        });
        Latest {
            state: node.state.as_str().to_string(),
            pid: node.pid.or(previous.and_then(|p| p.pid)),
            uptime_ms: node.uptime_ms.or(previous.and_then(|p| p.uptime_ms)),
            incarnation: previous.map_or(0, |p| p.incarnation + u64::from(restarted)),
        }
    }
}

/// Latest view plus every transition since the monitor started.
#[derive(Debug, Default)]
struct Seen {
    latest: BTreeMap<String, Latest>,
    transitions: Vec<Transition>,
    poll_errors: u64,
}

/// Background poller of `/cluster`.
#[derive(Clone)]
pub struct Monitor {
    seen: Arc<Mutex<Seen>>,
}

impl Monitor {
    /// Starts polling; `on_transition` is called for each state change as it is seen.
    pub fn start(
        frontend: Frontend,
        on_transition: impl Fn(&Transition) + Send + 'static,
    ) -> (Monitor, tokio::task::JoinHandle<()>) {
        let monitor = Monitor {
            seen: Arc::default(),
        };
        let seen = monitor.seen.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match frontend.cluster().await {
                    Ok(doc) => record(&seen, &doc, &on_transition),
                    Err(_) => seen.lock().expect("monitor lock").poll_errors += 1,
                }
            }
        });
        (monitor, task)
    }

    /// The node's latest pid.
    pub fn pid(&self, node: &str) -> Option<u32> {
        let seen = self.seen.lock().expect("monitor lock");
        seen.latest.get(node).and_then(|l| l.pid)
    }

    /// The node's latest incarnation (how many times it was seen restarted).
    pub fn incarnation(&self, node: &str) -> Option<u64> {
        let seen = self.seen.lock().expect("monitor lock");
        seen.latest.get(node).map(|l| l.incarnation)
    }

    /// First time at or after `since` the node was seen in `state`.
    pub fn first_seen(&self, node: &str, state: &str, since: Instant) -> Option<Instant> {
        let seen = self.seen.lock().expect("monitor lock");
        seen.transitions
            .iter()
            .find(|t| t.node == node && t.to == state && t.at >= since)
            .map(|t| t.at)
    }

    /// The node's state as last seen at or before `at`.
    pub fn state_at(&self, node: &str, at: Instant) -> Option<String> {
        let seen = self.seen.lock().expect("monitor lock");
        seen.transitions
            .iter()
            .rev()
            .find(|t| t.node == node && t.at <= at)
            .map(|t| t.to.clone())
    }

    /// How many polls of `/cluster` failed (the front-end API itself did not answer).
    pub fn poll_errors(&self) -> u64 {
        self.seen.lock().expect("monitor lock").poll_errors
    }

    /// Waits until the node's latest state is `up` — in a later incarnation than `old`
    /// when given (a restarted process). Returns when it became `up`, or `since` if it
    /// never left `up`; `None` on timeout.
    pub async fn wait_up(
        &self,
        node: &str,
        since: Instant,
        old: Option<u64>,
        timeout: Duration,
    ) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.up_since(node, old) {
                return Some(at.max(since));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_EVERY / 2).await;
        }
    }

    /// Since when the node serves without a break: `up`, or on `probation` after a rejoin
    /// (it answers a bounded share of the searches until it has proved itself).
    fn up_since(&self, node: &str, old: Option<u64>) -> Option<Instant> {
        let serving = |state: &str| state == "up" || state == "probation";
        let seen = self.seen.lock().expect("monitor lock");
        let latest = seen.latest.get(node)?;
        let restarted = old.is_none_or(|old| latest.incarnation > old);
        if !serving(&latest.state) || !restarted {
            return None;
        }
        let mut since = None;
        for transition in seen.transitions.iter().rev().filter(|t| t.node == node) {
            if !serving(&transition.to) {
                break;
            }
            since = Some(transition.at);
        }
        since
    }
}

/// A state or incarnation change counts as a transition: a node restarted between two
/// polls shows up as `up → up` in a new incarnation.
fn record(seen: &Mutex<Seen>, doc: &ClusterView, on_transition: &impl Fn(&Transition)) {
    let now = Instant::now();
    let mut seen = seen.lock().expect("monitor lock");
    for node in &doc.nodes {
        let current = Latest::next(seen.latest.get(&node.id), node);
        let previous = seen.latest.insert(node.id.clone(), current.clone());
        let changed = previous
            .as_ref()
            .is_none_or(|p| p.state != current.state || p.incarnation != current.incarnation);
        if changed {
            let transition = Transition {
                at: now,
                node: node.id.clone(),
                from: previous.map(|p| p.state).unwrap_or_default(),
                to: current.state,
                last_error: node.last_error.clone(),
            };
            if !transition.from.is_empty() {
                on_transition(&transition);
            }
            seen.transitions.push(transition);
        }
    }
}

/// Starts `searcher node --config CONFIG --id ID`, in its own process group, output
/// appended to `<log_dir>/node-<id>.log`; with an `owner`, through `wikisearch keep`, so
/// it lives no longer than the owner (the demo that started the node it replaces).
pub fn start_node(
    searcher: &Path,
    config: &Path,
    id: &str,
    log_dir: &Path,
    owner: Option<u32>,
) -> anyhow::Result<(Child, PathBuf)> {
    use std::os::unix::process::CommandExt;
    let mut command = match owner {
        Some(owner) => {
            let keeper = std::env::current_exe().context("cannot locate this executable")?;
            let mut command = Command::new(keeper);
            command.args(["keep", "--owner", &owner.to_string(), "--"]);
            command.arg(searcher);
            command
        }
        None => Command::new(searcher),
    };
    std::fs::create_dir_all(log_dir)
        .with_context(|| format!("cannot create log directory {}", log_dir.display()))?;
    let log_path = log_dir.join(format!("node-{id}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let child = command
        .arg("node")
        .arg("--config")
        .arg(config)
        .arg("--id")
        .arg(id)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start node {id}"))?;
    Ok((child, log_path))
}
