//! Which index generation a front-end serves, and the watch that moves it to a new one
//! (`shard_proto::generation` describes generations and the alias).
//!
//! Each generation the front-end knows is a [`Table`]: its shards, their document counts
//! and its own cache of global statistics, so scores stay exactly those of one index.
//! Every search takes one table at its start ([`Generations::pinned`]) and uses it for its
//! statistics, query and fetch rounds: requests name the table's generation, nodes answer
//! from that generation's replicas, and the answer says which generation it is.
//!
//! The watch reads the store's alias every `[generations] poll_ms`. When it names another
//! generation, the front-end reads that generation's manifests and asks every node's
//! health which replicas of it they serve verified; it switches only once every shard of
//! the new generation is served by `replication` nodes (or by every node that answers, if
//! fewer are up). Until then it keeps serving the old one. Tables once live stay
//! retained, so `/search?generation=G` can still ask for them while nodes hold them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use shard_proto::generation::{self, BASE};
use shard_proto::manifest::ShardManifest;
use shard_proto::store::ShardStore;
use shard_proto::wire::HealthResponse;
use shard_proto::{Analysis, ShardId};
use tokio::task::JoinHandle;

use crate::cluster::ClusterConfig;
use crate::frontend::membership::Members;
use crate::frontend::nodes::NodeHandle;
use crate::frontend::stats_cache::StatsCache;

/// Most generations kept in memory besides the live one.
const MAX_RETAINED: usize = 8;

/// One generation as a front-end searches it.
pub struct Table {
    pub id: String,
    /// Shard → documents, from the generation's manifests.
    pub shard_docs: BTreeMap<ShardId, u64>,
    pub shards: Vec<ShardId>,
    /// How its shards' text was analyzed (queries on it are parsed the same way).
    pub analysis: Analysis,
    /// Global statistics of this generation only.
    pub stats: StatsCache,
}

impl Table {
    pub fn new(id: &str, shard_docs: BTreeMap<ShardId, u64>, analysis: Analysis) -> Self {
        Table {
            id: id.to_string(),
            shards: shard_docs.keys().copied().collect(),
            shard_docs,
            analysis,
            stats: StatsCache::default(),
        }
    }

    /// A table of `manifests`, with the analysis they were built with.
    pub fn of_manifests(id: &str, manifests: &[ShardManifest]) -> Self {
        Table::new(
            id,
            manifests.iter().map(|m| (m.shard, m.docs)).collect(),
            analysis_of(manifests),
        )
    }

    /// The generation as requests name it (`None`: the base one).
    pub fn wire_id(&self) -> Option<String> {
        (self.id != BASE).then(|| self.id.clone())
    }

    /// Reads generation `id`'s table from `store`: refused if incomplete.
    pub fn read(store: &ShardStore, id: &str) -> shard_proto::Result<Self> {
        let manifests = generation::check_complete(store, id)?;
        Ok(Table::of_manifests(id, &manifests))
    }
}

/// The analysis of a generation's shards (all built from one input, so one analysis; if
/// they disagree, the first shard's, logged: its queries then miss on the others).
pub fn analysis_of(manifests: &[ShardManifest]) -> Analysis {
    let found: BTreeSet<Analysis> = manifests.iter().filter_map(|m| m.analysis()).collect();
    if found.len() > 1 {
        tracing::error!(
            ?found,
            "the shards of one generation were analyzed differently"
        );
    }
    (manifests.iter())
        .find_map(|m| m.analysis())
        .unwrap_or_default()
}

/// The live table and the retained ones.
pub struct Generations {
    live: RwLock<Arc<Table>>,
    retained: RwLock<BTreeMap<String, Arc<Table>>>,
    store: Option<ShardStore>,
}

impl Generations {
    /// Serving `live`; `store` is where other generations are read (`None`: only `live`).
    pub fn new(live: Table, store: Option<ShardStore>) -> Self {
        Generations {
            live: RwLock::new(Arc::new(live)),
            retained: RwLock::new(BTreeMap::new()),
            store,
        }
    }

    /// The table searches use unless they ask for another.
    pub fn live(&self) -> Arc<Table> {
        Arc::clone(&self.live.read())
    }

    /// The table a search is pinned to: the live one, or the generation `asked` if it is
    /// live, retained, or complete in the store; otherwise why not.
    pub async fn pinned(&self, asked: Option<&str>) -> Result<Arc<Table>, String> {
        let live = self.live();
        let Some(asked) = asked.filter(|id| *id != live.id) else {
            return Ok(live);
        };
        generation::check_id(asked).map_err(|e| e.to_string())?;
        if let Some(table) = self.retained.read().get(asked) {
            return Ok(Arc::clone(table));
        }
        let Some(store) = self.store.clone() else {
            return Err(format!("generation {asked:?} is not served here"));
        };
        let id = asked.to_string();
        let table = tokio::task::spawn_blocking(move || Table::read(&store, &id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("generation {asked:?} cannot be searched: {e}"))?;
        let table = Arc::new(table);
        self.retain(Arc::clone(&table));
        Ok(table)
    }

    fn retain(&self, table: Arc<Table>) {
        let mut retained = self.retained.write();
        if retained.len() >= MAX_RETAINED {
            retained.pop_first();
        }
        retained.insert(table.id.clone(), table);
    }

    /// Makes `table` live; the old live table stays retained.
    fn switch_to(&self, table: Arc<Table>) {
        let old = std::mem::replace(&mut *self.live.write(), Arc::clone(&table));
        self.retained.write().remove(&table.id);
        tracing::info!(from = %old.id, to = %table.id, shards = table.shards.len(), "generation switched");
        self.retain(old);
    }
}

/// The live generation's table when a front-end starts: the alias's generation, read from
/// its manifests (the base one without an alias, read as before generations existed).
pub fn startup_table(
    config: &ClusterConfig,
    base: impl FnOnce() -> crate::error::Result<Vec<ShardManifest>>,
) -> crate::error::Result<Table> {
    let store = config.open_store()?;
    match generation::live(&store)? {
        live if live == BASE => Ok(Table::of_manifests(BASE, &base()?)),
        live => Ok(Table::read(&store, &live)?),
    }
}

/// Follows the alias until dropped (see the module docs).
pub fn spawn_watch(
    generations: Arc<Generations>,
    members: Arc<Members>,
    config: &ClusterConfig,
) -> Option<JoinHandle<()>> {
    let store = generations.store.clone()?;
    let interval = config.generations.poll();
    let probe_timeout = config.timeouts.attempt();
    let replication = config.replication;
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let set = members.current();
            let nodes: Vec<Arc<NodeHandle>> =
                set.members().map(|i| Arc::clone(&set.nodes[i])).collect();
            let watch = Poll {
                generations: &generations,
                nodes: &nodes,
                store: &store,
                replication,
                probe_timeout,
            };
            if let Err(reason) = watch.run().await {
                tracing::info!(%reason, "generation switch waiting");
            }
        }
    }))
}

/// One poll of the alias.
struct Poll<'a> {
    generations: &'a Generations,
    nodes: &'a [Arc<NodeHandle>],
    store: &'a ShardStore,
    replication: usize,
    probe_timeout: Duration,
}

impl Poll<'_> {
    /// Switches to the alias's generation if it is new and ready; else why not.
    async fn run(&self) -> Result<(), String> {
        let store = self.store.clone();
        let live = tokio::task::spawn_blocking(move || generation::live(&store))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if live == self.generations.live().id {
            return Ok(());
        }
        let retained = self.generations.retained.read().get(&live).cloned();
        let table = match retained {
            Some(table) => table,
            None => {
                let (store, id) = (self.store.clone(), live.clone());
                let read = tokio::task::spawn_blocking(move || Table::read(&store, &id));
                Arc::new(
                    read.await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?,
                )
            }
        };
        self.check_ready(&table).await?;
        self.generations.switch_to(table);
        Ok(())
    }

    /// Ok once every shard of `table` is served verified by enough nodes.
    async fn check_ready(&self, table: &Table) -> Result<(), String> {
        let probes = self.nodes.iter().map(|node| node.probe(self.probe_timeout));
        let answers: Vec<HealthResponse> = futures::future::join_all(probes)
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        let need = self.replication.min(answers.len()).max(1);
        let serving: Vec<BTreeSet<ShardId>> = answers
            .iter()
            .map(|health| serving_in(health, &table.id))
            .collect();
        let short: Vec<String> = table
            .shards
            .iter()
            .filter(|shard| serving.iter().filter(|s| s.contains(shard)).count() < need)
            .map(ShardId::to_string)
            .collect();
        match short.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "generation {}: {} of {} shards have fewer than {need} verified replicas ({})",
                table.id,
                short.len(),
                table.shards.len(),
                short.join(", ")
            )),
        }
    }
}

/// The shards a node reports serving verified in generation `id`.
pub fn serving_in(health: &HealthResponse, id: &str) -> BTreeSet<ShardId> {
    health
        .generations
        .iter()
        .filter(|g| g.generation == id)
        .flat_map(|g| g.shards.iter().copied())
        .collect()
}
