//! A node following the shard store's live index generation (`shard_proto::generation`).
//!
//! Every `[generations] poll_ms` the node reads the store's alias. When it names a
//! generation the node does not hold yet, the node installs that generation's replicas
//! placed on it *beside* the ones it serves, under `DATA_DIR/generations/<id>/<shard>`:
//! each file whose blake3 and size equal a file of a replica it already holds (of any
//! generation) is hard-linked from it (shards are immutable, so the link shares bytes that
//! never change; the scrub of either copy checks the common inode), the others are fetched
//! from the store; the copy is then verified against its manifest like every install and
//! renamed into place, so nothing half-installed ever looks complete. Only then does the
//! node report the generation's shards in its health answer
//! (`HealthResponse::generations`), which is what a front-end waits for before it moves
//! its searches to the new generation.
//!
//! Requests name their generation; [`HeldGenerations`] answers them and remembers when
//! each generation was last asked for. A named generation that is neither live nor asked
//! for during `retire_after_ms` is retired: dropped from the leaf and its files deleted
//! (searches running on it keep their replica's `Arc`, so they finish). The base
//! generation (the shards at the top of the store, installed at start and healed) is never
//! retired. The watch installs what the placement over every node of the cluster file
//! gives this node; the node's healer (`super::heal`) heals every generation it holds like
//! the base one (a lost node's share of it gets new holders, added with
//! [`HeldGenerations::add`] through [`install_healed`]; temporary copies are dropped once
//! the lost node serves again), and the scrub re-verifies them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use shard_proto::generation::{self, BASE};
use shard_proto::manifest::ShardManifest;
use shard_proto::store::{ShardSource, ShardStore};
use shard_proto::wire::{GenerationReplicas, ReplicaState};
use shard_proto::{ShardId, WikiSchema};

use super::leaf::Leaf;
use super::replicas::{self, Replica, TMP_PREFIX};
use crate::cluster::ClusterConfig;
use crate::placement::Placement;

/// The directory of a node's data directory holding the named generations.
pub const DIR: &str = "generations";

/// `[generations]` of the cluster file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationsConfig {
    /// How often nodes and front-ends read the store's alias.
    pub poll_ms: u64,
    /// A generation neither live nor asked for this long is deleted from the nodes.
    pub retire_after_ms: u64,
}

impl Default for GenerationsConfig {
    fn default() -> Self {
        GenerationsConfig {
            poll_ms: 5_000,
            retire_after_ms: 600_000,
        }
    }
}

impl GenerationsConfig {
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms.max(100))
    }

    pub fn retire_after(&self) -> Duration {
        Duration::from_millis(self.retire_after_ms)
    }
}

/// The replicas of one named generation on this node.
struct Held {
    /// Every shard of the generation (held here or not), for healing.
    shards: Vec<ShardId>,
    replicas: BTreeMap<ShardId, Arc<Replica>>,
    /// Milliseconds since [`HeldGenerations::epoch`] when a request last named it.
    last_asked: AtomicU64,
}

/// The named generations a node holds (see the module docs).
pub struct HeldGenerations {
    held: RwLock<BTreeMap<String, Held>>,
    /// The live generation as the watch last read it (healing serves it first).
    live: RwLock<String>,
    epoch: Instant,
}

impl Default for HeldGenerations {
    fn default() -> Self {
        HeldGenerations {
            held: RwLock::new(BTreeMap::new()),
            live: RwLock::new(BASE.to_string()),
            epoch: Instant::now(),
        }
    }
}

impl HeldGenerations {
    /// The replica of `shard` in `generation` (`None`: not held here), or why the
    /// generation cannot answer at all.
    pub fn replica(
        &self,
        generation: &str,
        shard: &ShardId,
    ) -> Result<Option<Arc<Replica>>, String> {
        let held = self.held.read();
        let Some(set) = held.get(generation) else {
            return Err(format!("generation {generation:?} not held here"));
        };
        let now = self.epoch.elapsed().as_millis() as u64;
        set.last_asked.store(now, Ordering::Relaxed);
        Ok(set.replicas.get(shard).cloned())
    }

    /// Starts serving `replicas` as `generation`, whose shards are `shards` (replacing
    /// what it held of it).
    pub fn insert(
        &self,
        generation: &str,
        shards: Vec<ShardId>,
        replicas: BTreeMap<ShardId, Arc<Replica>>,
    ) {
        let now = self.epoch.elapsed().as_millis() as u64;
        let set = Held {
            shards,
            replicas,
            last_asked: AtomicU64::new(now),
        };
        self.held.write().insert(generation.to_string(), set);
    }

    /// Stops serving `generation`.
    fn remove(&self, generation: &str) {
        self.held.write().remove(generation);
    }

    /// Adds a healed copy to `generation`, replacing any older one; false (nothing
    /// added) if the generation was retired meanwhile.
    pub fn add(&self, generation: &str, replica: Arc<Replica>) -> bool {
        let mut held = self.held.write();
        let Some(set) = held.get_mut(generation) else {
            return false;
        };
        set.replicas.insert(replica.shard, replica);
        true
    }

    /// Stops serving `generation`'s copy of `shard` (a retired temporary copy); calls
    /// holding it finish with it.
    pub fn remove_replica(&self, generation: &str, shard: &ShardId) -> Option<Arc<Replica>> {
        self.held
            .write()
            .get_mut(generation)?
            .replicas
            .remove(shard)
    }

    /// Each held generation's shards and the ones it serves here (not dropped), for
    /// healing.
    pub fn scopes(&self) -> Vec<(String, Vec<ShardId>, BTreeSet<ShardId>)> {
        let held = self.held.read();
        held.iter()
            .map(|(id, set)| {
                let serving = (set.replicas.iter())
                    .filter(|(_, replica)| replica.dropped().is_none())
                    .map(|(shard, _)| *shard)
                    .collect();
                (id.clone(), set.shards.clone(), serving)
            })
            .collect()
    }

    /// The live generation as last read from the store's alias.
    pub fn live(&self) -> String {
        self.live.read().clone()
    }

    /// Whether the node serves `generation`.
    pub fn holds(&self, generation: &str) -> bool {
        self.held.read().contains_key(generation)
    }

    /// How long since a request last named `generation` (or it was installed).
    fn idle(&self, generation: &str) -> Option<Duration> {
        let held = self.held.read();
        let asked = held.get(generation)?.last_asked.load(Ordering::Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        Some(Duration::from_millis(now.saturating_sub(asked)))
    }

    /// The held generations' ids.
    fn ids(&self) -> Vec<String> {
        self.held.read().keys().cloned().collect()
    }

    /// Every held replica of every named generation (to link files from, to scrub).
    pub fn all_replicas(&self) -> Vec<Arc<Replica>> {
        let held = self.held.read();
        held.values()
            .flat_map(|set| set.replicas.values().cloned())
            .collect()
    }

    /// What the health answer reports: each generation's serving (not dropped) shards
    /// but the `hidden` ones (retiring temporary copies), `base` (the base generation's
    /// serving shards) first.
    pub fn report(&self, base: Vec<ShardId>, hidden: &Hidden) -> Vec<GenerationReplicas> {
        let named = self
            .held
            .read()
            .iter()
            .map(|(generation, set)| GenerationReplicas {
                generation: generation.clone(),
                shards: (set.replicas.iter())
                    .filter(|(shard, replica)| {
                        replica.dropped().is_none() && !is_hidden(hidden, generation, shard)
                    })
                    .map(|(shard, _)| *shard)
                    .collect(),
            })
            .collect::<Vec<_>>();
        let base = GenerationReplicas {
            generation: BASE.to_string(),
            shards: base,
        };
        std::iter::once(base).chain(named).collect()
    }

    /// A serving state of every shard some named generation serves here (and does not
    /// hide).
    pub fn serving_states(&self, hidden: &Hidden) -> Vec<(ShardId, ReplicaState)> {
        let mut states: BTreeMap<ShardId, ReplicaState> = BTreeMap::new();
        for (generation, set) in self.held.read().iter() {
            for (shard, replica) in &set.replicas {
                if replica.dropped().is_none() && !is_hidden(hidden, generation, shard) {
                    states
                        .entry(*shard)
                        .or_insert_with(|| replica.serving_state());
                }
            }
        }
        states.into_iter().collect()
    }
}

/// Copies a node does not announce, per generation (retiring temporary copies).
pub type Hidden = BTreeMap<String, BTreeSet<ShardId>>;

fn is_hidden(hidden: &Hidden, generation: &str, shard: &ShardId) -> bool {
    hidden.get(generation).is_some_and(|s| s.contains(shard))
}

/// What one poll of the alias finds to do.
pub struct Watch {
    config: ClusterConfig,
    node_id: String,
    schema: WikiSchema,
    /// Weak: the watch ends with the node's leaf.
    leaf: Weak<Leaf>,
    store: ShardStore,
    /// Named generations held but not live, and since when.
    not_live_since: HashMap<String, Instant>,
}

impl Watch {
    pub fn new(
        config: &ClusterConfig,
        node_id: &str,
        schema: WikiSchema,
        leaf: Arc<Leaf>,
    ) -> crate::error::Result<Self> {
        Ok(Watch {
            config: config.clone(),
            node_id: node_id.to_string(),
            schema,
            leaf: Arc::downgrade(&leaf),
            store: config.open_store()?,
            not_live_since: HashMap::new(),
        })
    }

    /// Polls the alias until the process ends (on a thread of its own: installs block).
    pub fn spawn(mut self) -> std::io::Result<std::thread::JoinHandle<()>> {
        let interval = self.config.generations.poll();
        std::thread::Builder::new()
            .name("generations".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                if !self.poll() {
                    return;
                }
            })
    }

    /// One poll: install the live generation if new, retire the idle ones. Errors are
    /// logged and retried at the next poll. False once the node is gone.
    pub fn poll(&mut self) -> bool {
        let Some(leaf) = self.leaf.upgrade() else {
            return false;
        };
        let live = match generation::live(&self.store) {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "reading the live generation");
                return true;
            }
        };
        *leaf.generations.live.write() = live.clone();
        if live != BASE && !leaf.generations.holds(&live) {
            match self.install(&leaf, &live) {
                Ok(count) => {
                    tracing::info!(generation = %live, replicas = count, "generation serving")
                }
                Err(e) => tracing::warn!(generation = %live, error = %e, "installing generation"),
            }
        }
        self.retire(&leaf, &live);
        true
    }

    /// Retires the held generations neither live nor asked for during `retire_after`.
    fn retire(&mut self, leaf: &Leaf, live: &str) {
        let now = Instant::now();
        let retire_after = self.config.generations.retire_after();
        self.not_live_since.remove(live);
        for id in leaf.generations.ids() {
            if id == live {
                continue;
            }
            let since = *self.not_live_since.entry(id.clone()).or_insert(now);
            let idle = leaf.generations.idle(&id).unwrap_or_default();
            if now.duration_since(since) >= retire_after && idle >= retire_after {
                leaf.generations.remove(&id);
                self.not_live_since.remove(&id);
                let dir = generation_dir(&self.config, &self.node_id, &id);
                match dir.map(|dir| fs::remove_dir_all(&dir)) {
                    Ok(Ok(())) | Ok(Err(_)) => {
                        tracing::info!(generation = %id, "generation retired")
                    }
                    Err(e) => tracing::warn!(generation = %id, error = %e, "retiring generation"),
                }
            }
        }
    }

    /// Installs every replica of generation `id` the placement puts on this node, then
    /// serves them as that generation; returns how many. One refused replica refuses the
    /// generation (retried next poll): a front-end needs all of them.
    pub fn install(&self, leaf: &Leaf, id: &str) -> Result<usize, String> {
        let started = Instant::now();
        let sources: BTreeMap<ShardId, ShardSource> = generation::open(&self.store, id)
            .live_shards()
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        if sources.is_empty() {
            return Err(format!("generation {id} has no shards"));
        }
        let placement = Placement::for_cluster(&self.config, sources.keys().copied());
        let dir = generation_dir(&self.config, &self.node_id, id).map_err(|e| e.to_string())?;
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let linkable = linkable_files(leaf);
        let (mut linked, mut fetched) = (0u64, 0u64);
        let mut installed = BTreeMap::new();
        for shard in placement.shards_of(&self.node_id) {
            let source = &sources[&shard];
            let manifest = source.read_manifest().map_err(|e| e.to_string())?;
            let (replica, bytes) =
                install_linked(source, &dir, &manifest, &self.schema, &linkable)?;
            linked += bytes.linked;
            fetched += bytes.fetched;
            installed.insert(shard, Arc::new(replica));
        }
        let count = installed.len();
        leaf.generations
            .insert(id, sources.keys().copied().collect(), installed);
        tracing::info!(
            generation = %id,
            linked_bytes = linked,
            fetched_bytes = fetched,
            millis = started.elapsed().as_millis() as u64,
            "generation installed"
        );
        Ok(count)
    }
}

/// Installs `source` (with `manifest`), a shard of named generation `id`, into
/// `data_dir`'s directory of that generation for the healer: linked from a held replica
/// where the files are the same, verified, renamed into place, opened. The bytes counted
/// are those fetched.
pub fn install_healed(
    leaf: &Leaf,
    data_dir: &Path,
    id: &str,
    source: &ShardSource,
    manifest: &ShardManifest,
    schema: &WikiSchema,
) -> Result<replicas::Installed, String> {
    generation::check_id(id).map_err(|e| e.to_string())?;
    let dir = data_dir.join(DIR).join(id);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (replica, moved) = install_linked(source, &dir, manifest, schema, &linkable_files(leaf))?;
    Ok(replicas::Installed {
        replica,
        copied_bytes: moved.fetched,
    })
}

/// blake3 → a file of a replica this node holds (any generation), to link from.
fn linkable_files(leaf: &Leaf) -> HashMap<(String, u64), PathBuf> {
    let mut replicas = leaf.generations.all_replicas();
    replicas.extend(leaf.base_replicas());
    let mut files = HashMap::new();
    for replica in replicas {
        for file in &replica.manifest.files {
            files
                .entry((file.blake3.clone(), file.bytes))
                .or_insert_with(|| replica.dir.join(&file.name));
        }
    }
    files
}

/// `DATA_DIR/generations/<id>` of `node_id`.
fn generation_dir(
    config: &ClusterConfig,
    node_id: &str,
    id: &str,
) -> crate::error::Result<PathBuf> {
    generation::check_id(id).map_err(|e| crate::error::Error::Other(e.to_string()))?;
    Ok(config.node(node_id)?.data_dir().join(DIR).join(id))
}

/// Bytes of an install linked from held replicas and fetched from the store.
#[derive(Default)]
struct Moved {
    linked: u64,
    fetched: u64,
}

/// Makes `dir/<shard>` a verified copy of `source` (reusing a verified copy already
/// there), linking the files `linkable` has, fetching the others; opens it.
fn install_linked(
    source: &ShardSource,
    dir: &Path,
    manifest: &ShardManifest,
    schema: &WikiSchema,
    linkable: &HashMap<(String, u64), PathBuf>,
) -> Result<(Replica, Moved), String> {
    let target = dir.join(manifest.shard.to_string());
    let mut moved = Moved::default();
    let reusable = ShardManifest::read_verified(&target, schema).is_ok_and(|m| m == *manifest);
    if !reusable {
        let staging = dir.join(format!("{TMP_PREFIX}{}", manifest.shard));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
        let assembled = assemble(source, &staging, manifest, linkable, &mut moved).and_then(|()| {
            match ShardManifest::read_verified(&staging, schema) {
                Ok(copy) if copy == *manifest => Ok(()),
                Ok(_) => Err(format!(
                    "{}: the copy's manifest differs",
                    staging.display()
                )),
                Err(e) => Err(format!("{e} (copied from {})", source.location())),
            }
        });
        if let Err(reason) = assembled {
            let _ = fs::remove_dir_all(&staging);
            return Err(reason);
        }
        if target.exists() {
            fs::remove_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        }
        fs::rename(&staging, &target).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    let replica = replicas::open(&target, manifest, schema)?;
    Ok((replica, moved))
}

/// Links the files a held replica has, fetches the others and writes the manifest.
fn assemble(
    source: &ShardSource,
    staging: &Path,
    manifest: &ShardManifest,
    linkable: &HashMap<(String, u64), PathBuf>,
    moved: &mut Moved,
) -> Result<(), String> {
    let mut missing = manifest.clone();
    missing.files.clear();
    for file in &manifest.files {
        let linked = linkable
            .get(&(file.blake3.clone(), file.bytes))
            .is_some_and(|from| fs::hard_link(from, staging.join(&file.name)).is_ok());
        match linked {
            true => moved.linked += file.bytes,
            false => {
                moved.fetched += file.bytes;
                missing.files.push(file.clone());
            }
        }
    }
    source
        .fetch_into(&missing, staging)
        .map_err(|e| e.to_string())?;
    // The fetch wrote the manifest of the files it fetched (or the store's): the copy
    // must carry the whole one.
    manifest.clone().write(staging).map_err(|e| e.to_string())
}
