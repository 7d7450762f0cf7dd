//! The drill's hands on a Compose cluster (`--compose PROJECT`): each node is the
//! container of the Compose service named like the node's id (as in `deploy/compose/`),
//! and a fault is what happens to a host, not to a process: `docker kill` (then
//! `docker start`), `docker pause` (a hung host that keeps its sockets, then `unpause`),
//! `docker network disconnect` from every network of the project (a real partition, both
//! directions; reconnected under the service's name), `docker stop` (SIGTERM and drain,
//! then `start`). A generation switch runs `indexer generations` inside a node's container,
//! which has the store's address and credentials (the store need not be reachable from
//! where the drill runs).
//!
//! As with local processes, every harm is registered before it is done and undone if the
//! drill ends early (dropped): paused containers are unpaused, disconnected ones
//! reconnected, killed ones started.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{Done, Event, Injury, DRAIN_TIMEOUT};

/// The label Compose puts on the containers of a project, and of a service.
const PROJECT_LABEL: &str = "com.docker.compose.project";
const SERVICE_LABEL: &str = "com.docker.compose.service";

/// One node's container.
#[derive(Clone, Debug)]
struct Container {
    id: String,
    /// Each network it was on, with the names it answered to there.
    networks: Vec<(String, Vec<String>)>,
}

/// The containers of a Compose project.
pub struct ComposeHands {
    project: String,
    containers: BTreeMap<String, Container>,
    /// The cluster file's shard store, as the containers reach it.
    store: String,
    /// Harms not yet undone (node ids).
    paused: Vec<String>,
    stopped: Vec<String>,
    disconnected: Vec<String>,
}

impl ComposeHands {
    /// Finds the container of every node in `nodes` (the targets and any node a generation
    /// command may run in).
    pub async fn new(project: &str, nodes: &[String], store: &str) -> anyhow::Result<Self> {
        let mut containers = BTreeMap::new();
        for node in nodes {
            let id = container_of(project, node).await?;
            let networks = networks_of(&id).await?;
            containers.insert(node.clone(), Container { id, networks });
        }
        Ok(ComposeHands {
            project: project.to_string(),
            containers,
            store: store.to_string(),
            paused: Vec::new(),
            stopped: Vec::new(),
            disconnected: Vec::new(),
        })
    }

    fn container(&self, node: &str) -> anyhow::Result<&Container> {
        self.containers
            .get(node)
            .with_context(|| format!("no container of node {node} was looked up"))
    }

    /// A short name for the timeline: the container id's first 12 characters.
    fn short(&self, node: &str) -> String {
        self.containers
            .get(node)
            .map(|c| c.id.chars().take(12).collect())
            .unwrap_or_default()
    }

    pub async fn inject(&mut self, injury: Injury, node: &str) -> anyhow::Result<Done> {
        let id = self.container(node)?.id.clone();
        let short = self.short(node);
        let at = Instant::now();
        let line = match injury {
            Injury::Kill { permanent } => {
                if !permanent {
                    self.stopped.push(node.to_string());
                }
                docker(&["kill", &id]).await?;
                let note = if permanent { ", for good" } else { "" };
                format!("docker kill node {node} (container {short}){note}")
            }
            Injury::Pause => {
                self.paused.push(node.to_string());
                docker(&["pause", &id]).await?;
                format!("docker pause node {node} (container {short})")
            }
            Injury::Partition => {
                self.disconnected.push(node.to_string());
                let networks = self.container(node)?.networks.clone();
                for (network, _) in &networks {
                    docker(&["network", "disconnect", network, &id]).await?;
                }
                let names: Vec<&str> = networks.iter().map(|n| n.0.as_str()).collect();
                format!(
                    "docker network disconnect node {node} (container {short}) from {}",
                    names.join(", ")
                )
            }
        };
        Ok(Done { at, line })
    }

    pub async fn heal(&mut self, injury: Injury, node: &str) -> anyhow::Result<Done> {
        let container = self.container(node)?.clone();
        let short = self.short(node);
        let mut at = Instant::now();
        let line = match injury {
            Injury::Kill { .. } => {
                wait_exited(&container.id).await?;
                at = Instant::now();
                docker(&["start", &container.id]).await?;
                self.stopped.retain(|n| n != node);
                format!("docker start node {node} (container {short})")
            }
            Injury::Pause => {
                docker(&["unpause", &container.id]).await?;
                self.paused.retain(|n| n != node);
                format!("docker unpause node {node} (container {short})")
            }
            Injury::Partition => {
                for command in connect_commands(&container) {
                    let args: Vec<&str> = command.iter().map(String::as_str).collect();
                    docker(&args).await?;
                }
                self.disconnected.retain(|n| n != node);
                format!("docker network connect node {node} (container {short}) again")
            }
        };
        Ok(Done { at, line })
    }

    /// `docker stop` (SIGTERM; SIGKILL after the drain timeout), then `docker start`.
    pub async fn restart(&mut self, node: &str, event: &Event<'_>) -> anyhow::Result<Instant> {
        let id = self.container(node)?.id.clone();
        let short = self.short(node);
        self.stopped.push(node.to_string());
        event(
            Instant::now(),
            format!("docker stop node {node} (container {short}): SIGTERM, drain"),
        );
        let grace = DRAIN_TIMEOUT.as_secs().to_string();
        docker(&["stop", "-t", &grace, &id]).await?;
        let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &id]).await?;
        let started = Instant::now();
        docker(&["start", &id]).await?;
        self.stopped.retain(|n| n != node);
        event(
            started,
            format!("node {node} exited with code {}; docker start", code.trim()),
        );
        Ok(started)
    }

    /// A node container to run `indexer generations` in.
    fn exec_container(&self) -> anyhow::Result<String> {
        let running = self
            .containers
            .iter()
            .find(|(node, _)| !self.paused.contains(node) && !self.stopped.contains(node));
        running
            .map(|(_, c)| c.id.clone())
            .with_context(|| format!("no running container of project {}", self.project))
    }

    async fn generations(&self, command: &[&str]) -> anyhow::Result<String> {
        let id = self.exec_container()?;
        let mut args = vec![
            "exec",
            &id,
            "indexer",
            "generations",
            "--store",
            &self.store,
        ];
        args.extend_from_slice(command);
        docker(&args).await
    }

    pub async fn live_generation(&self) -> anyhow::Result<String> {
        let listing = self.generations(&["list"]).await?;
        live_in_listing(&listing).with_context(|| {
            format!("`indexer generations list` marks no live generation:\n{listing}")
        })
    }

    /// Moves the alias to `to`; the generation it named.
    pub async fn switch_generation(&self, to: &str) -> anyhow::Result<String> {
        let from = self.live_generation().await?;
        self.generations(&["switch", to]).await?;
        Ok(from)
    }
}

impl Drop for ComposeHands {
    fn drop(&mut self) {
        let now = |args: &[&str]| {
            let status = Command::new("docker")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !status.is_ok_and(|s| s.success()) {
                eprintln!("drill: `docker {}` failed", args.join(" "));
            }
        };
        for node in std::mem::take(&mut self.paused) {
            now(&["unpause", &self.containers[&node].id]);
        }
        for node in std::mem::take(&mut self.disconnected) {
            for command in connect_commands(&self.containers[&node]) {
                let args: Vec<&str> = command.iter().map(String::as_str).collect();
                now(&args);
            }
        }
        for node in std::mem::take(&mut self.stopped) {
            now(&["start", &self.containers[&node].id]);
            eprintln!("drill: started node {node}'s container again");
        }
    }
}

/// `docker network connect --alias NAME... NETWORK ID` for each network it was on.
fn connect_commands(container: &Container) -> Vec<Vec<String>> {
    container
        .networks
        .iter()
        .map(|(network, aliases)| {
            let mut command = vec!["network".to_string(), "connect".to_string()];
            for alias in aliases {
                command.extend(["--alias".to_string(), alias.clone()]);
            }
            command.extend([network.clone(), container.id.clone()]);
            command
        })
        .collect()
}

/// The generation `indexer generations list` marks live (`* ID\t...`).
fn live_in_listing(listing: &str) -> Option<String> {
    let line = listing.lines().find(|l| l.starts_with('*'))?;
    let id = line[1..].split_whitespace().next()?;
    Some(id.to_string())
}

/// Runs `docker ARGS`; its standard output, or an error with its standard error.
async fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run `docker` (is Docker installed?)")?;
    crate::supervisor::stdout_of("docker", args, output)
}

/// The id of the one container of service `node` in `project` (stopped ones included).
async fn container_of(project: &str, node: &str) -> anyhow::Result<String> {
    let project_filter = format!("label={PROJECT_LABEL}={project}");
    let service_filter = format!("label={SERVICE_LABEL}={node}");
    let listing = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &project_filter,
        "--filter",
        &service_filter,
    ])
    .await?;
    let ids: Vec<&str> = listing.split_whitespace().collect();
    match ids.as_slice() {
        [id] => Ok(id.to_string()),
        [] => bail!(
            "Compose project {project} has no container of service {node} (node ids must \
             be service names; the project is the prefix of its container names, `compose` \
             for deploy/compose/)"
        ),
        _ => bail!(
            "Compose project {project} has {} containers of service {node}: scale it to one",
            ids.len()
        ),
    }
}

/// The networks a container is on, with its aliases on each (its own id left out: Docker
/// adds that one itself).
async fn networks_of(id: &str) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let json = docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", id]).await?;
    let networks: BTreeMap<String, serde_json::Value> = serde_json::from_str(json.trim())
        .with_context(|| format!("unexpected `docker inspect` output: {json}"))?;
    Ok(networks
        .into_iter()
        .map(|(name, settings)| {
            let aliases = settings["Aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str())
                .filter(|a| !id.starts_with(a))
                .map(str::to_string)
                .collect();
            (name, aliases)
        })
        .collect())
}

/// Waits until the container is no longer running (a `docker kill` is asynchronous).
async fn wait_exited(id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let running = docker(&["inspect", "-f", "{{.State.Running}}", id]).await?;
        if running.trim() == "false" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("container {id} still runs {DRAIN_TIMEOUT:?} after docker kill");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_generation_is_the_starred_line() {
        let listing = "  base\t6 shards\t1000 documents\n* g2\t6 shards\t1200 documents\n";
        assert_eq!(live_in_listing(listing).as_deref(), Some("g2"));
        assert_eq!(live_in_listing("  base\tincomplete: x\n"), None);
    }

    #[test]
    fn a_container_is_reconnected_under_its_names() {
        let container = Container {
            id: "abc".into(),
            networks: vec![("p_cluster".into(), vec!["search-1".into()])],
        };
        assert_eq!(
            connect_commands(&container),
            vec![vec![
                "network",
                "connect",
                "--alias",
                "search-1",
                "p_cluster",
                "abc"
            ]]
        );
    }
}
