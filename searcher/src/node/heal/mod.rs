//! Self-healing: a node restores the cluster's replicas without a person or a front-end.
//!
//! Every node probes the others ([`peers`]). Every probe interval it runs the pure
//! decision ([`decide`]) over what it sees and carries it out: installs the shards the
//! placement over the live nodes gives it (through the one install path,
//! `replicas::install_replica`: copy into a temporary directory, verify every file
//! against the manifest, rename, open) and serves them at once; retires temporary copies
//! once the lost holders serve again and a cool-down has passed (first unannounced, so
//! front-ends stop routing to it, then removed). Installs are limited to
//! `concurrent_installs` at a time and paced to `mib_per_s`, most urgent first, and a
//! failed one is retried with exponential backoff up to `retry_max_ms`, forever.
//!
//! The pace is kept per shard (an install starts once the bytes before it are paid for
//! at the configured rate), not inside the copy: the copy itself belongs to the shard
//! store layer (`replicas.rs`), which this module only calls.
//!
//! What it is doing is reported in the node's health answer ([`Healer::report`]), so
//! `/cluster` can say why any shard is under-replicated.
//!
//! Every index generation the node holds is healed the same way, each on its own: the
//! base one (the store's top-level shards) and each named one (`super::generations`),
//! deciding over what the peers report serving *of that generation*, so a node lost while
//! a generation is live, or before a switch to it, has its share of that generation
//! reinstalled too (a front-end switches only once every shard of it has R copies). A
//! named generation's copy is installed from the store into the generation's directory,
//! linking files the node already holds (the live-replica fallback serves the base
//! generation only); the install slots and the byte pace are shared by all of them, the
//! live generation's installs first. The
//! health answer's healing report covers the base generation (what `/cluster` shows).
//!
//! Growing and shrinking: every round the loop also looks at the cluster file
//! ([`crate::cluster_watch`]). When it changed and reads well, the node follows its node list:
//! it probes added nodes, stops probing removed ones, and the decision leaves nodes
//! marked `drain` (or this node, once removed from the file) out of the placement, so
//! replicas move to their new holders before the old copies go ([`decide`]). Other
//! settings take effect at the next restart.

pub mod decide;
pub mod from_peer;
pub mod peers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use shard_proto::generation::{self, BASE};
use shard_proto::manifest::ShardManifest;
use shard_proto::store::{ShardSource, ShardStore};
use shard_proto::wire::HealState;
use shard_proto::{ShardId, WikiSchema};
use tokio::task::JoinHandle;

use super::generations::{self as named, Hidden};
use super::leaf::Leaf;
use super::replicas::{install_replica, install_replica_from_peer, Installed, Replica, TMP_PREFIX};
use crate::cluster::ClusterConfig;
use crate::cluster_watch::WatchedClusterFile;
use decide::{decide, Decision, Task, Timing, View};
use from_peer::PeerLinks;
use peers::{Peers, ProbeTiming, Probes};

/// `[heal]` of the cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealConfig {
    /// A node unreachable this long (by every other node's own probes) is replaced: its
    /// shards get new holders. 0 turns healing off.
    pub after_ms: u64,
    /// A temporary copy is dropped this long after its lost holder serves again.
    pub cool_down_ms: u64,
    /// Install pace, MiB per second over all installs of a node (0: unpaced).
    pub mib_per_s: u64,
    /// Installs running at once on a node.
    pub concurrent_installs: usize,
    /// Longest wait between retries of a failing install (the first is 1 s, doubling).
    pub retry_max_ms: u64,
}

impl Default for HealConfig {
    fn default() -> Self {
        HealConfig {
            after_ms: 120_000,
            cool_down_ms: 60_000,
            mib_per_s: 32,
            concurrent_installs: 1,
            retry_max_ms: 60_000,
        }
    }
}

impl HealConfig {
    pub fn validate(&self) -> Result<(), String> {
        match self.concurrent_installs {
            0 => Err("heal: concurrent_installs must be > 0".into()),
            _ => Ok(()),
        }
    }
}

/// First wait before retrying a failed install.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// A retired copy stays open this long after it stopped being announced (front-ends
/// probe every `probe_interval_ms`; this many intervals, at least the floor).
const DRAIN_PROBES: u32 = 4;
const DRAIN_FLOOR: Duration = Duration::from_secs(2);

/// Where installs come from and go, and what the decision needs to know of the cluster.
struct Setup {
    me: String,
    replication: usize,
    /// The shard store, opened once (or why it could not be: every install then fails with it).
    store: Result<ShardStore, String>,
    data_dir: PathBuf,
    schema: WikiSchema,
    config: HealConfig,
    timing: Timing,
}

/// What the loop remembers between rounds, for one generation.
#[derive(Default)]
struct State {
    tasks: BTreeMap<ShardId, Task>,
    /// Shards waiting for their lost holders' grace to end: when it ends, and who.
    waiting: Vec<(ShardId, Instant, Vec<String>)>,
    /// Installs the last round wanted but had no slot for.
    queued: Vec<ShardId>,
    /// Bytes of each running install.
    copying: BTreeMap<ShardId, u64>,
}

/// The cluster file's node list, as last read.
#[derive(Clone, Debug, Default, PartialEq)]
struct Membership {
    nodes: Vec<String>,
    draining: BTreeSet<String>,
}

impl Membership {
    fn of(config: &ClusterConfig) -> Membership {
        Membership {
            nodes: config.nodes.iter().map(|n| n.id.clone()).collect(),
            draining: config
                .nodes
                .iter()
                .filter(|n| n.drain)
                .map(|n| n.id.clone())
                .collect(),
        }
    }
}

/// A node's healing: its loop, its state and its report.
pub struct Healer {
    setup: Setup,
    membership: Mutex<Membership>,
    leaf: Arc<Leaf>,
    peers: Peers,
    /// Per generation healed (the base one is [`BASE`]).
    scopes: Mutex<BTreeMap<String, State>>,
    /// When the byte budget allows the next install to start.
    pace: Mutex<Instant>,
    /// Bytes copied by healing installs (0 for a reused copy).
    pub copied_bytes: AtomicU64,
    /// How to reach the peers, to copy from a live replica (set when the loop starts).
    links: Mutex<Option<PeerLinks>>,
}

impl Healer {
    /// The healer of node `me` over `leaf`; nothing runs until [`Healer::spawn`].
    pub fn new(config: &ClusterConfig, me: &str, leaf: Arc<Leaf>, schema: WikiSchema) -> Self {
        let heal = config.heal.clone();
        let drain = (config.timeouts.probe_interval() * DRAIN_PROBES).max(DRAIN_FLOOR);
        let data_dir = config
            .node(me)
            .map(|n| n.data_dir().to_path_buf())
            .unwrap_or_default();
        Healer {
            membership: Mutex::new(Membership::of(config)),
            setup: Setup {
                me: me.to_string(),
                replication: config.replication,
                store: config.open_store().map_err(|e| e.to_string()),
                data_dir,
                schema,
                timing: Timing {
                    after: Duration::from_millis(heal.after_ms),
                    cool_down: Duration::from_millis(heal.cool_down_ms),
                    drain,
                },
                config: heal,
            },
            leaf,
            peers: Peers::default(),
            scopes: Mutex::new(BTreeMap::new()),
            pace: Mutex::new(Instant::now()),
            copied_bytes: AtomicU64::new(0),
            links: Mutex::new(None),
        }
    }

    /// Starts the peer probes and the healing loop over the store's `shards` (nothing if
    /// healing is off); abort the handles to stop them.
    pub fn spawn(
        self: &Arc<Self>,
        config: &ClusterConfig,
        shards: Vec<ShardId>,
    ) -> Vec<JoinHandle<()>> {
        if config.heal.after_ms == 0 {
            return Vec::new();
        }
        let key = match config.cluster_key() {
            Ok(key) => key,
            Err(error) => {
                tracing::error!(%error, "healing off: no cluster key");
                return Vec::new();
            }
        };
        let timing = ProbeTiming {
            interval: config.timeouts.probe_interval(),
            timeout: config.timeouts.attempt(),
            connect: config.timeouts.connect(),
        };
        *self.links.lock() = Some(PeerLinks::new(config, key.clone()));
        // Owned by the loop: aborting it drops them, which stops every probe.
        let mut probes = Probes::start(&self.setup.me, &config.nodes, &key, timing, &self.peers);
        let mut file = WatchedClusterFile::of(config);
        let this = Arc::clone(self);
        vec![tokio::spawn(async move {
            let mut ticker = tokio::time::interval(timing.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Some(config) = file.as_mut().and_then(WatchedClusterFile::changed) {
                    this.follow(&config, &mut probes);
                }
                this.round(&shards, Instant::now());
            }
        })]
    }

    /// Takes the node list of a changed cluster file.
    fn follow(&self, config: &ClusterConfig, probes: &mut Probes) {
        let membership = Membership::of(config);
        let mut current = self.membership.lock();
        if *current == membership {
            return;
        }
        let me = &self.setup.me;
        match (
            membership.nodes.contains(me),
            membership.draining.contains(me),
        ) {
            (false, _) => tracing::warn!("this node is no longer in the cluster file: draining"),
            (true, true) => tracing::warn!("this node is marked drain: draining"),
            (true, false) => {}
        }
        tracing::info!(
            nodes = ?membership.nodes,
            draining = ?membership.draining,
            "cluster file changed: following its node list"
        );
        probes.follow(&config.nodes);
        if let Some(links) = self.links.lock().as_mut() {
            links.follow(config);
        }
        *current = membership;
    }

    /// The copies it does not announce (retiring temporary copies), per generation.
    pub fn hidden(&self) -> Hidden {
        let retiring = |(shard, task): (&ShardId, &Task)| {
            matches!(task, Task::Retiring { .. }).then_some(*shard)
        };
        (self.scopes.lock().iter())
            .map(|(scope, state)| {
                (
                    scope.clone(),
                    state.tasks.iter().filter_map(retiring).collect(),
                )
            })
            .collect()
    }

    /// One round: for each generation held (the base one's shards are `shards`), decide
    /// over what is seen now, then act.
    fn round(self: &Arc<Self>, shards: &[ShardId], now: Instant) {
        let all_peers = self.peers.lock().clone();
        let hidden = self.hidden();
        let unhidden = |scope: &str, serving: BTreeSet<ShardId>| -> BTreeSet<ShardId> {
            match hidden.get(scope) {
                Some(hidden) => serving.difference(hidden).copied().collect(),
                None => serving,
            }
        };
        let mut plans = vec![(
            BASE.to_string(),
            shards.to_vec(),
            unhidden(BASE, self.leaf.serving()),
        )];
        for (scope, shards, serving) in self.leaf.generations.scopes() {
            let held = unhidden(&scope, serving);
            plans.push((scope, shards, held));
        }
        // The live generation's installs take the free slots first.
        let live = self.leaf.generations.live();
        plans.sort_by_key(|(scope, _, _)| *scope != live);
        let membership = self.membership.lock().clone();
        let mut scopes = self.scopes.lock();
        // A retired generation's state goes with it (once no install of it runs).
        scopes.retain(|id, state| plans.iter().any(|p| p.0 == *id) || !state.copying.is_empty());
        let running: usize = scopes.values().map(|s| s.copying.len()).sum();
        let mut slots = self
            .setup
            .config
            .concurrent_installs
            .saturating_sub(running);
        for (scope, shards, held) in plans {
            let peers = match scope.as_str() {
                BASE => all_peers.clone(),
                named => (all_peers.iter())
                    .map(|(id, peer)| (id.clone(), peer.in_generation(named)))
                    .collect(),
            };
            let state = scopes.entry(scope.clone()).or_default();
            let decision = decide(&View {
                me: &self.setup.me,
                nodes: &membership.nodes,
                draining: &membership.draining,
                replication: self.setup.replication,
                shards: &shards,
                peers: &peers,
                held: &held,
                tasks: &state.tasks,
                now,
                timing: self.setup.timing,
            });
            self.apply(&scope, state, decision, now, &mut slots);
        }
    }

    /// Carries out `decision` for generation `scope`, starting at most `slots` installs.
    fn apply(
        self: &Arc<Self>,
        scope: &str,
        state: &mut State,
        decision: Decision,
        now: Instant,
        slots: &mut usize,
    ) {
        for shard in decision.forget.iter().chain(&decision.keep) {
            state.tasks.remove(shard);
        }
        for shard in decision.surplus {
            tracing::info!(%shard, generation = scope, "temporary copy redundant: cooling down");
            state.tasks.insert(shard, Task::Surplus { since: now });
        }
        for shard in decision.retire {
            tracing::info!(%shard, generation = scope, "temporary copy retired: no longer announced");
            state.tasks.insert(shard, Task::Retiring { since: now });
        }
        for shard in decision.remove {
            state.tasks.remove(&shard);
            self.remove(scope, shard);
        }
        state.waiting = decision
            .waiting
            .into_iter()
            .map(|(shard, left, lost)| (shard, now + left, lost))
            .collect();
        let (start, queued) = decision
            .install
            .split_at((*slots).min(decision.install.len()));
        *slots -= start.len();
        state.queued = queued.to_vec();
        for &shard in start {
            let attempts = match state.tasks.get(&shard) {
                Some(Task::Failing { attempts, .. }) => *attempts,
                _ => 0,
            };
            state.tasks.insert(shard, Task::Installing);
            state.copying.insert(shard, 0);
            let (this, scope) = (Arc::clone(self), scope.to_string());
            tokio::spawn(async move { this.install(scope, shard, attempts).await });
        }
    }

    /// Installs `shard` of generation `scope` off the runtime; serves it, or records the
    /// failure for a retry.
    async fn install(self: Arc<Self>, scope: String, shard: ShardId, attempts: u32) {
        tracing::info!(%shard, generation = %scope, attempt = attempts + 1, "healing: installing");
        let (this, of) = (Arc::clone(&self), scope.clone());
        let outcome = tokio::task::spawn_blocking(move || this.install_blocking(&of, shard))
            .await
            .unwrap_or_else(|e| Err(format!("install task failed: {e}")));
        let mut scopes = self.scopes.lock();
        let state = scopes.entry(scope.clone()).or_default();
        state.copying.remove(&shard);
        match outcome {
            Ok(installed) => {
                let copied = installed.copied_bytes;
                self.copied_bytes.fetch_add(copied, Ordering::Relaxed);
                self.serve(&scope, installed.replica);
                state.tasks.remove(&shard);
                tracing::info!(%shard, generation = %scope, copied_bytes = copied, "healing: replica serving");
            }
            Err(error) => {
                let wait = backoff(attempts, self.setup.config.retry_max_ms);
                tracing::warn!(%shard, generation = %scope, %error, retry_in = ?wait, "healing: install failed");
                state.tasks.insert(
                    shard,
                    Task::Failing {
                        attempts: attempts + 1,
                        retry_at: Instant::now() + wait,
                        error,
                    },
                );
            }
        }
    }

    /// Starts serving a healed copy of generation `scope`.
    fn serve(&self, scope: &str, replica: Replica) {
        if scope == BASE {
            return self.leaf.insert(Arc::new(replica));
        }
        let dir = replica.dir.clone();
        if !self.leaf.generations.add(scope, Arc::new(replica)) {
            tracing::info!(
                generation = scope,
                "healed copy of a retired generation: removed"
            );
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Finds the shard of generation `scope` in the store, waits for the byte budget,
    /// installs and opens it.
    fn install_blocking(&self, scope: &str, shard: ShardId) -> Result<Installed, String> {
        let (source, manifest) = find_in_store(self.setup.store.as_ref()?, scope, shard)?;
        let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
        if let Some(state) = self.scopes.lock().get_mut(scope) {
            state.copying.insert(shard, bytes);
        }
        std::thread::sleep(self.pace_for(bytes));
        let (dir, schema) = (&self.setup.data_dir, &self.setup.schema);
        if scope != BASE {
            return named::install_healed(&self.leaf, dir, scope, &source, &manifest, schema);
        }
        let store_error = match install_replica(&source, dir, &manifest, schema) {
            Ok(installed) => return Ok(installed),
            Err(error) => error,
        };
        let holders = match self.links.lock().as_ref() {
            Some(links) => links.holders(&self.peers.lock(), &shard),
            None => Vec::new(),
        };
        if holders.is_empty() {
            return Err(store_error);
        }
        tracing::warn!(%shard, error = %store_error, "the store's copy failed: copying a live replica");
        let mut errors = vec![store_error];
        for peer in holders {
            match install_replica_from_peer(&peer, &source, dir, &manifest, schema) {
                Ok(installed) => {
                    tracing::info!(%shard, node = peer.node_id(), "installed from a live replica");
                    return Ok(installed);
                }
                Err(error) => errors.push(error),
            }
        }
        Err(errors.join("; "))
    }

    /// How long an install of `bytes` must wait so that installs average at most
    /// `mib_per_s`; books its share of the budget.
    fn pace_for(&self, bytes: u64) -> Duration {
        let rate = self.setup.config.mib_per_s;
        if rate == 0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut next = self.pace.lock();
        let start = (*next).max(now);
        *next = start + Duration::from_secs_f64(bytes as f64 / (rate as f64 * 1024.0 * 1024.0));
        start - now
    }

    /// Stops serving a retired copy of generation `scope` and deletes it (calls holding
    /// it finish first: the files stay readable while mapped).
    fn remove(&self, scope: &str, shard: ShardId) {
        let removed = match scope {
            BASE => self.leaf.remove(&shard),
            named => self.leaf.generations.remove_replica(named, &shard),
        };
        let Some(replica) = removed else {
            return;
        };
        tracing::info!(%shard, generation = scope, "temporary copy removed");
        let dir = replica.dir.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "removing a retired copy");
            }
        });
    }

    /// What the node is doing to heal the base generation, per shard, for its health
    /// answer.
    pub fn report(&self, now: Instant) -> Vec<(ShardId, HealState)> {
        let scopes = self.scopes.lock();
        let Some(state) = scopes.get(BASE) else {
            return Vec::new();
        };
        let millis = |at: Instant| at.saturating_duration_since(now).as_millis() as u64;
        let mut report: Vec<(ShardId, HealState)> = Vec::new();
        for (shard, until, lost) in &state.waiting {
            let heal_in_millis = millis(*until);
            let lost = lost.clone();
            report.push((
                *shard,
                HealState::Waiting {
                    heal_in_millis,
                    lost,
                },
            ));
        }
        report.extend(state.queued.iter().map(|s| (*s, HealState::Queued)));
        for (shard, total) in &state.copying {
            let copied_bytes = staged_bytes(&self.setup.data_dir, shard);
            let total_bytes = *total;
            report.push((
                *shard,
                HealState::Copying {
                    copied_bytes,
                    total_bytes,
                },
            ));
        }
        for (shard, task) in &state.tasks {
            let entry = match task {
                Task::Failing {
                    attempts,
                    retry_at,
                    error,
                } => HealState::Failing {
                    error: error.clone(),
                    attempts: *attempts,
                    retry_in_millis: millis(*retry_at),
                },
                Task::Surplus { since } => HealState::Surplus {
                    drop_in_millis: millis(*since + self.setup.timing.cool_down),
                },
                Task::Installing | Task::Retiring { .. } => continue,
            };
            report.push((*shard, entry));
        }
        report
    }
}

/// Wait before retry number `attempts + 1`: 1 s, doubling, at most `max_ms`.
fn backoff(attempts: u32, max_ms: u64) -> Duration {
    let doubled = RETRY_FIRST.saturating_mul(1u32 << attempts.min(20));
    doubled.min(Duration::from_millis(max_ms.max(1)))
}

/// The store's live copy of `shard` of generation `scope`, and its manifest.
fn find_in_store(
    store: &ShardStore,
    scope: &str,
    shard: ShardId,
) -> Result<(ShardSource, ShardManifest), String> {
    let live = generation::open(store, scope)
        .live_shards()
        .map_err(|e| e.to_string())?;
    let (_, source) = live
        .into_iter()
        .find(|(id, _)| *id == shard)
        .ok_or_else(|| format!("shard {shard} of generation {scope} is not in the shard store"))?;
    let manifest = source.read_manifest().map_err(|e| e.to_string())?;
    if manifest.shard != shard {
        return Err(format!(
            "{} holds the manifest of {}",
            source.location(),
            manifest.shard
        ));
    }
    Ok((source, manifest))
}

/// Bytes already in the staging directory of an install of `shard`.
fn staged_bytes(data_dir: &Path, shard: &ShardId) -> u64 {
    let staging = data_dir.join(format!("{TMP_PREFIX}{shard}"));
    let Ok(entries) = std::fs::read_dir(staging) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let waits: Vec<u64> = (0..8).map(|a| backoff(a, 20_000).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 20, 20, 20]);
        assert_eq!(backoff(1_000, 60_000), Duration::from_secs(60));
    }

    #[test]
    fn the_config_has_defaults_and_refuses_zero_installs() {
        let config: HealConfig = toml::from_str("after_ms = 5000").unwrap();
        assert_eq!(config.after_ms, 5_000);
        assert_eq!(config.concurrent_installs, 1);
        assert!(config.validate().is_ok());
        let none = HealConfig {
            concurrent_installs: 0,
            ..config
        };
        assert!(none.validate().unwrap_err().contains("concurrent_installs"));
    }
}
