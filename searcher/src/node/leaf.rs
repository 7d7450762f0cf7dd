//! The leaf's three phases, as plain synchronous functions over the node's replicas:
//! term statistics, query (top-k by globally-scored BM25 plus the hit count) and fetch
//! (stored fields and a highlighted snippet); and title suggestions for a prefix (one
//! shard's walk is [`super::suggest`]).
//!
//! One request covers every shard the node is asked for. Its shards (and a page's
//! snippets) are spread over the caller's rayon pool only while other search threads sit
//! idle: at low load that cuts latency, under load every thread already has a request and
//! splitting one only adds task hops and wake-ups (about 5% of the node's CPU at c=8).
//! Anything wrong with the request as a whole (a query over the cluster's limits, or
//! that does not parse in the strict syntax, unknown field ids, a term without a value or
//! on an unindexed field) is a [`BadRequest`]; anything wrong with one shard is that shard's `ShardOutcome::Failed`, never the others'. A panic inside
//! tantivy on odd input is caught and becomes a failed shard rather than a dead node.
//!
//! A node never trusts its caller: lists are bounded and free of repeats (a frame naming
//! one shard a million times is refused, not searched a million times), terms and fields
//! must be indexed ones, and every phase stops when its call's [`Stop`] says so (deadline
//! passed or caller gone), between shards, between documents and inside tantivy's loop.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use parking_lot::RwLock;

use rayon::prelude::*;
use shard_proto::ranking::{SharedBar, TopRanked};
use shard_proto::stats::ShardTermStats;
use shard_proto::wire::{
    DocRef, FetchRequest, FetchResponse, FetchedDoc, LeafHit, ReplicaState, SearchRequest,
    SearchResponse, ShardHits, ShardOutcome, StatsRequest, StatsResponse, SuggestRequest,
    SuggestResponse, MAX_FIELDS_PER_CALL, MAX_SHARDS_PER_CALL, MAX_SUGGESTIONS_PER_CALL,
    MAX_SUGGEST_PREFIX_BYTES, MAX_TERMS_PER_CALL,
};
use shard_proto::{Analysis, GlobalStats, QueryLimits, ShardId, WikiSchema};
use tantivy::collector::Count;
use tantivy::query::Query;
use tantivy::schema::{Field, Type, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, TantivyDocument, Term};

use super::generations::HeldGenerations;
use super::parsed::{Parsers, QueryFor};
use super::replicas::Replica;
use super::stop::{Stop, Stoppable};
use super::suggest::suggest_shard;
use crate::in_flight::InFlight;
use crate::snippets::{self, snippet_html};

/// Most documents in one fetch request.
pub const MAX_FETCH_DOCS: usize = 10_000;
/// Longest snippet, in characters.
pub const MAX_SNIPPET_CHARS: u32 = 2_000;
/// What a shard this node does not hold answers.
pub const NOT_SERVED: &str = "not served here";

/// A request refused as a whole (answered with 400 and this message).
#[derive(Debug, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// The schema, the query parsers and the open replicas of one node.
pub struct Leaf {
    pub node_id: String,
    /// The fields (the same under every analysis).
    schema: WikiSchema,
    /// The open replicas. Behind a lock because healing adds and removes copies while the
    /// node serves; a call takes its replica's `Arc` and keeps it to the end, so a copy
    /// removed meanwhile stays readable for the calls already holding it.
    replicas: RwLock<BTreeMap<ShardId, Arc<Replica>>>,
    /// The replicas of the named index generations the node holds beside the base ones
    /// ([`super::generations`]); a request names its generation.
    pub generations: HeldGenerations,
    /// A parser per analysis, with the query limits (checked again here whatever the
    /// front-end checked) and a cache of parsed queries.
    parsers: Parsers,
    /// Requests being worked on now, to decide whether one may spread over the pool.
    running: AtomicUsize,
}

/// Whether a request may spread over the pool: while others leave threads idle.
/// (Outside a rayon pool, in tests, the thread count is the machine's parallelism.)
fn may_spread(running: &InFlight) -> bool {
    running.others + 1 < rayon::current_num_threads()
}

/// `f` over `items` in order: in parallel when `spread` and there are several.
fn map_spread<T: Sync, R: Send>(
    items: &[T],
    spread: bool,
    f: impl Fn(&T) -> R + Sync + Send,
) -> Vec<R> {
    match spread && items.len() > 1 {
        true => items.par_iter().map(f).collect(),
        false => items.iter().map(f).collect(),
    }
}

impl Leaf {
    pub fn new(
        node_id: String,
        schema: WikiSchema,
        replicas: BTreeMap<ShardId, Arc<Replica>>,
    ) -> Self {
        Leaf {
            node_id,
            schema,
            replicas: RwLock::new(replicas),
            generations: HeldGenerations::default(),
            parsers: Parsers::new(QueryLimits::default()),
            running: AtomicUsize::new(0),
        }
    }

    /// The cluster file's query limits instead of the defaults.
    pub fn with_limits(mut self, limits: QueryLimits) -> Self {
        self.parsers.limits = limits;
        self
    }

    /// The replica of `shard` if it serves, else why not (not held here, or dropped by the
    /// scrub).
    pub(crate) fn replica(
        &self,
        generation: Option<&str>,
        shard: &ShardId,
    ) -> Result<Arc<Replica>, String> {
        let named = generation.filter(|g| *g != shard_proto::generation::BASE);
        let found = match named {
            Some(generation) => self.generations.replica(generation, shard)?,
            None => self.replicas.read().get(shard).cloned(),
        };
        match &found {
            None => Err(NOT_SERVED.to_string()),
            Some(replica) => match replica.dropped() {
                Some(reason) => Err(format!("replica dropped: {reason}")),
                None => Ok(Arc::clone(replica)),
            },
        }
    }

    /// The base generation's open replicas (to link a new generation's files from).
    pub fn base_replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().values().cloned().collect()
    }

    /// Starts serving `replica` (a copy installed while healing), replacing any older one.
    pub fn insert(&self, replica: Arc<Replica>) {
        self.replicas.write().insert(replica.shard, replica);
    }

    /// Stops serving `shard`; calls already holding the replica finish with it.
    pub fn remove(&self, shard: &ShardId) -> Option<Arc<Replica>> {
        self.replicas.write().remove(shard)
    }

    /// The shards it serves (opened and not dropped by the scrub).
    pub fn serving(&self) -> BTreeSet<ShardId> {
        self.replicas
            .read()
            .iter()
            .filter(|(_, replica)| replica.dropped().is_none())
            .map(|(shard, _)| *shard)
            .collect()
    }

    /// What the node reports holding: every open replica but the `hidden` ones (retiring
    /// temporary copies), those dropped since reported as failed, and the replicas refused
    /// at start (`refused`) that have not been installed since.
    pub fn current_states(
        &self,
        refused: &[(ShardId, ReplicaState)],
        hidden: &BTreeSet<ShardId>,
    ) -> Vec<(ShardId, ReplicaState)> {
        let replicas = self.replicas.read();
        let open = replicas
            .iter()
            .filter(|(shard, _)| !hidden.contains(shard))
            .map(|(shard, replica)| match replica.dropped() {
                Some(reason) => (
                    *shard,
                    ReplicaState::Failed(format!("replica dropped: {reason}")),
                ),
                None => (*shard, replica.serving_state()),
            });
        let refused = refused
            .iter()
            .filter(|(shard, state)| {
                matches!(state, ReplicaState::Failed(_)) && !replicas.contains_key(shard)
            })
            .cloned();
        let mut states: Vec<(ShardId, ReplicaState)> = open.chain(refused).collect();
        states.sort_by_key(|(shard, _)| *shard);
        states
    }

    /// `text` checked as a whole and parsed under the analysis of the first of `shards`
    /// (the others, if analyzed otherwise, parse it when they meet it).
    fn query<'a>(
        &'a self,
        text: &'a str,
        syntax: shard_proto::query::Syntax,
        generation: Option<&str>,
        shards: &[ShardId],
    ) -> Result<QueryFor<'a>, BadRequest> {
        let likely = shards
            .first()
            .and_then(|shard| self.replica(generation, shard).ok())
            .map_or(Analysis::Plain, |replica| replica.analysis);
        QueryFor::checked(&self.parsers, text, syntax, likely)
    }

    /// An indexed field of the schema (statistics of any other are meaningless, and tantivy
    /// logs a warning for each one asked).
    fn field(&self, id: u32) -> Result<Field, BadRequest> {
        let count = self.schema.schema.fields().count();
        if (id as usize) >= count {
            return Err(BadRequest(format!(
                "unknown field id {id} (schema has {count})"
            )));
        }
        let field = Field::from_field_id(id);
        let entry = self.schema.schema.get_field_entry(field);
        match entry.is_indexed() {
            true => Ok(field),
            false => Err(BadRequest(format!(
                "field {} (id {id}) is not indexed",
                entry.name()
            ))),
        }
    }

    /// A term of an indexed field whose value has that field's type (tantivy panics on a
    /// term with no type tag, and on an unknown one).
    fn check_term(&self, term: &Term) -> Result<(), BadRequest> {
        let field = self.field(term.field().field_id())?;
        let expected = self
            .schema
            .schema
            .get_field_entry(field)
            .field_type()
            .value_type();
        let tag = term.value().as_serialized().first().copied();
        match tag.and_then(Type::from_code) == Some(expected) {
            true => Ok(()),
            false => Err(BadRequest(format!(
                "a term without a value type of its field ({expected:?})"
            ))),
        }
    }

    /// Statistics phase: each shard's document count, token totals and document
    /// frequencies for the requested fields and terms.
    pub fn stats(&self, request: &StatsRequest, stop: &Stop) -> Result<StatsResponse, BadRequest> {
        distinct_within("shards", &request.shards, MAX_SHARDS_PER_CALL)?;
        distinct_within("fields", &request.fields, MAX_FIELDS_PER_CALL)?;
        if request.terms.len() > MAX_TERMS_PER_CALL {
            return Err(BadRequest(format!(
                "{} terms asked, at most {MAX_TERMS_PER_CALL}",
                request.terms.len()
            )));
        }
        let fields = request
            .fields
            .iter()
            .map(|&id| self.field(id))
            .collect::<Result<Vec<_>, _>>()?;
        for term in &request.terms {
            self.check_term(term)?;
        }
        let running = InFlight::enter(&self.running);
        let spread = may_spread(&running);
        let generation = request.generation.as_deref();
        let shards = self.per_shard(generation, &request.shards, spread, stop, |replica| {
            ShardTermStats::collect(&replica.searcher, &fields, &request.terms)
                .map_err(|e| e.to_string())
        });
        Ok(StatsResponse {
            node: self.node_id.clone(),
            shards,
        })
    }

    /// Query phase: each shard's top `top_k` (or the prefix of it that can still enter
    /// the top `top_k` over the request's shards) and hit count, scored with global
    /// statistics.
    pub fn search(
        &self,
        request: &SearchRequest,
        stop: &Stop,
    ) -> Result<SearchResponse, BadRequest> {
        self.parsers
            .limits
            .check_window(request.top_k as usize, 0)
            .map_err(|e| BadRequest(format!("top_k refused: {e}")))?;
        distinct_within("shards", &request.shards, MAX_SHARDS_PER_CALL)?;
        let generation = request.generation.as_deref();
        let query = self.query(&request.query, request.syntax, generation, &request.shards)?;
        let running = InFlight::enter(&self.running);
        let spread = may_spread(&running);
        // The k-th best score of any of its shards so far bars the others (scores are
        // global): what falls below it cannot reach the front-end's top k.
        let bar = SharedBar::default();
        let mut shards = self.per_shard(generation, &request.shards, spread, stop, |replica| {
            search_shard(
                replica,
                query.on(replica)?.as_ref(),
                request.top_k as usize,
                &request.stats,
                (stop, &bar),
            )
        });
        if let Some(fetch) = request.fetch {
            let how = HowToFetch {
                query: &query,
                stats: &request.stats,
                chars: fetch.snippet_chars.min(MAX_SNIPPET_CHARS) as usize,
                spread,
                stop,
                generation,
            };
            let docs = (fetch.docs.min(request.top_k) as usize).min(MAX_FETCH_DOCS);
            self.attach_docs(&how, &mut shards, docs);
        }
        Ok(SearchResponse {
            node: self.node_id.clone(),
            shards,
        })
    }

    /// Query-and-fetch: fetches the node's best `count` hits over all `shards` (ordered as
    /// the front-end merges: score, then page id) into each shard's `docs`. With `count` =
    /// the page size, any hit of the global first page is among them, since fewer than
    /// `count` hits of any subset of the shards can beat it; a smaller `count` covers the
    /// page's hits from this node in most queries (the rest are fetched in a fetch phase).
    fn attach_docs(
        &self,
        how: &HowToFetch,
        shards: &mut [(ShardId, ShardOutcome<ShardHits>)],
        count: usize,
    ) {
        let mut ranked = Vec::new();
        for (position, (_, outcome)) in shards.iter_mut().enumerate() {
            if let ShardOutcome::Ok(found) = outcome {
                found.hits.sort_by(LeafHit::merge_order);
                ranked.extend(found.hits.iter().map(|hit| (*hit, position)));
            }
        }
        ranked.sort_by(|a, b| LeafHit::merge_order(&a.0, &b.0));
        let mut wanted = vec![0usize; shards.len()];
        for (_, position) in ranked.iter().take(count) {
            wanted[*position] += 1;
        }
        let fetch_prefix =
            |((shard, outcome), count): (&mut (ShardId, ShardOutcome<ShardHits>), usize)| {
                let (ShardOutcome::Ok(found), Ok(replica)) =
                    (outcome, self.replica(how.generation, shard))
                else {
                    return;
                };
                let replica = &replica;
                let refs: Vec<(usize, DocRef)> = found.hits[..count]
                    .iter()
                    .enumerate()
                    .map(|(slot, hit)| (slot, hit.doc_ref(*shard)))
                    .collect();
                found.docs = fetch_shard(replica, &self.schema, how, &refs)
                    .into_iter()
                    .map_while(|(_, outcome)| match outcome {
                        ShardOutcome::Ok(doc) => Some(doc),
                        ShardOutcome::Failed(_) => None,
                    })
                    .collect();
            };
        let work: Vec<_> = shards
            .iter_mut()
            .zip(wanted)
            .filter(|(_, n)| *n > 0)
            .collect();
        match how.spread && work.len() > 1 {
            true => work.into_par_iter().for_each(fetch_prefix),
            false => work.into_iter().for_each(fetch_prefix),
        }
    }

    /// Runs `phase` on every requested shard (in parallel if `spread`), in request order.
    fn per_shard<T: Send>(
        &self,
        generation: Option<&str>,
        shards: &[ShardId],
        spread: bool,
        stop: &Stop,
        phase: impl Fn(&Replica) -> Result<T, String> + Sync,
    ) -> Vec<(ShardId, ShardOutcome<T>)> {
        let run = |shard: &ShardId| {
            let outcome = match (self.replica(generation, shard), stop.check()) {
                (_, Err(stopped)) => ShardOutcome::Failed(stopped.to_string()),
                (Ok(replica), Ok(())) => guarded(|| phase(&replica)),
                (Err(reason), Ok(())) => ShardOutcome::Failed(reason),
            };
            if let (ShardOutcome::Failed(_), Ok(replica)) =
                (&outcome, self.replica(generation, shard))
            {
                // Maybe a bad query, maybe a bad block: the scrub checks the files.
                replica.mark_suspect();
            }
            (*shard, outcome)
        };
        map_spread(shards, spread, run)
    }

    /// Fetch phase: stored fields and a snippet for each address, in request order.
    pub fn fetch(&self, request: &FetchRequest, stop: &Stop) -> Result<FetchResponse, BadRequest> {
        distinct_within("documents", &request.docs, MAX_FETCH_DOCS)?;
        let generation = request.generation.as_deref();
        let first = request.docs.first().map(|d| d.shard);
        let query = self.query(&request.query, request.syntax, generation, first.as_slice())?;
        let running = InFlight::enter(&self.running);
        let how = HowToFetch {
            query: &query,
            stats: &request.stats,
            chars: request.snippet_chars.min(MAX_SNIPPET_CHARS) as usize,
            spread: may_spread(&running),
            stop,
            generation,
        };
        let mut by_shard: BTreeMap<ShardId, Vec<(usize, DocRef)>> = BTreeMap::new();
        for (slot, doc) in request.docs.iter().enumerate() {
            by_shard.entry(doc.shard).or_default().push((slot, *doc));
        }
        let groups: Vec<_> = by_shard.into_iter().collect();
        let fetch_group = |(shard, docs): &(ShardId, Vec<(usize, DocRef)>)| match self
            .replica(how.generation, shard)
        {
            Ok(replica) => fetch_shard(&replica, &self.schema, &how, docs),
            Err(reason) => failed_all(docs, &reason),
        };
        let fetched = map_spread(&groups, how.spread, fetch_group);
        let mut docs: Vec<Option<ShardOutcome<FetchedDoc>>> = vec![None; request.docs.len()];
        for (slot, outcome) in fetched.into_iter().flatten() {
            docs[slot] = Some(outcome);
        }
        Ok(FetchResponse {
            node: self.node_id.clone(),
            docs: docs
                .into_iter()
                .map(|d| d.unwrap_or_else(|| ShardOutcome::Failed("not fetched".into())))
                .collect(),
        })
    }

    /// Title suggestions: each shard's best `size` titles and redirect titles starting
    /// with the prefix, most linked first.
    pub fn suggest(
        &self,
        request: &SuggestRequest,
        stop: &Stop,
    ) -> Result<SuggestResponse, BadRequest> {
        distinct_within("shards", &request.shards, MAX_SHARDS_PER_CALL)?;
        if request.prefix.len() > MAX_SUGGEST_PREFIX_BYTES {
            return Err(BadRequest(format!(
                "a {}-byte prefix, at most {MAX_SUGGEST_PREFIX_BYTES}",
                request.prefix.len()
            )));
        }
        if request.size > MAX_SUGGESTIONS_PER_CALL {
            return Err(BadRequest(format!(
                "{} suggestions asked, at most {MAX_SUGGESTIONS_PER_CALL}",
                request.size
            )));
        }
        let key = shard_proto::prefix_key(&request.prefix);
        let running = InFlight::enter(&self.running);
        let spread = may_spread(&running);
        let generation = request.generation.as_deref();
        let shards = self.per_shard(generation, &request.shards, spread, stop, |replica| {
            suggest_shard(
                &replica.searcher,
                &self.schema,
                &key,
                request.size as usize,
                stop,
            )
        });
        Ok(SuggestResponse {
            node: self.node_id.clone(),
            shards,
        })
    }
}

/// Refuses a list longer than `max` or naming an item twice: the caller never needs either,
/// and both multiply the work of one frame.
fn distinct_within<T: Eq + Hash + std::fmt::Debug>(
    what: &str,
    items: &[T],
    max: usize,
) -> Result<(), BadRequest> {
    if items.len() > max {
        return Err(BadRequest(format!(
            "{} {what} asked, at most {max}",
            items.len()
        )));
    }
    let mut seen = HashSet::with_capacity(items.len());
    match items.iter().find(|item| !seen.insert(*item)) {
        Some(repeated) => Err(BadRequest(format!("{what}: {repeated:?} is listed twice"))),
        None => Ok(()),
    }
}

/// Runs one shard's work, turning an error or a panic into a failed outcome.
fn guarded<T>(work: impl FnOnce() -> Result<T, String>) -> ShardOutcome<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(value)) => ShardOutcome::Ok(value),
        Ok(Err(reason)) => ShardOutcome::Failed(reason),
        Err(panic) => ShardOutcome::Failed(format!("internal error: {}", panic_message(&panic))),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// One shard's query phase.
fn search_shard(
    replica: &Replica,
    query: &dyn Query,
    top_k: usize,
    stats: &GlobalStats,
    (stop, bar): (&Stop, &SharedBar),
) -> Result<ShardHits, String> {
    let searcher = &replica.searcher;
    let provider = stats.provider(searcher);
    if top_k == 0 {
        // A count-only request just counts.
        let counting = Stoppable { inner: Count, stop };
        let total = searcher
            .search_with_statistics_provider(query, &counting, &provider)
            .map_err(|e| e.to_string())?;
        return Ok(ShardHits {
            hits: Vec::new(),
            total: total as u64,
            docs: Vec::new(),
        });
    }
    let check = || stop.check_collecting();
    let collector =
        (TopRanked::new(top_k).interrupted_by(&check).sharing(bar)).with_links(&replica.links);
    let (top, total) = collector
        .search(searcher, query, Some(&provider))
        .map_err(|e| e.to_string())?;
    let hits = top
        .into_iter()
        .map(|(score, address)| {
            let id = replica
                .page_id(address)
                .ok_or_else(|| format!("document {address:?} has no id"))?;
            Ok(LeafHit {
                score,
                id,
                segment: address.segment_ord,
                doc: address.doc_id,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ShardHits {
        hits,
        total: total as u64,
        docs: Vec::new(),
    })
}

fn failed_all(docs: &[(usize, DocRef)], reason: &str) -> Vec<(usize, ShardOutcome<FetchedDoc>)> {
    docs.iter()
        .map(|(slot, _)| (*slot, ShardOutcome::Failed(reason.to_string())))
        .collect()
}

/// What a fetch needs besides the addresses.
struct HowToFetch<'a> {
    query: &'a QueryFor<'a>,
    /// The search's global statistics, for the snippets' term weights.
    stats: &'a GlobalStats,
    /// Longest snippet (0: none).
    chars: usize,
    /// Whether the documents may be cut in parallel (see [`may_spread`]).
    spread: bool,
    stop: &'a Stop,
    /// The index generation of the request.
    generation: Option<&'a str>,
}

/// One shard's fetch phase: one snippet generator for all of its documents.
fn fetch_shard(
    replica: &Replica,
    schema: &WikiSchema,
    how: &HowToFetch,
    docs: &[(usize, DocRef)],
) -> Vec<(usize, ShardOutcome<FetchedDoc>)> {
    let chars = how.chars;
    let stats = how.stats.provider(&replica.searcher);
    let generator = match (chars, how.query.on(replica)) {
        (0, _) => Ok(None),
        (_, Err(e)) => Err(tantivy::TantivyError::InvalidArgument(e)),
        (_, Ok(query)) => snippets::generator(
            &replica.searcher,
            query.as_ref(),
            schema.fields.body,
            &stats,
            chars,
        )
        .map(Some),
    };
    let generator = match generator {
        Ok(generator) => generator,
        Err(e) => return failed_all(docs, &format!("snippets: {e}")),
    };
    let fetch_one = |(slot, doc): &(usize, DocRef)| {
        let outcome = match how.stop.check() {
            Ok(()) => guarded(|| fetch_doc(replica, schema, generator.as_ref(), doc, chars)),
            Err(stopped) => ShardOutcome::Failed(stopped.to_string()),
        };
        (*slot, outcome)
    };
    // A snippet costs tens of microseconds (the whole body is tokenized): on an idle node
    // the page's documents are cut on every core rather than one after another.
    map_spread(docs, how.spread, fetch_one)
}

fn fetch_doc(
    replica: &Replica,
    schema: &WikiSchema,
    generator: Option<&SnippetGenerator>,
    doc: &DocRef,
    chars: usize,
) -> Result<FetchedDoc, String> {
    if !replica.contains(doc.segment, doc.doc) {
        return Err(format!(
            "no document {}/{} in shard {}",
            doc.segment, doc.doc, doc.shard
        ));
    }
    let address = DocAddress::new(doc.segment, doc.doc);
    let stored: TantivyDocument = replica.searcher.doc(address).map_err(|e| e.to_string())?;
    let text = |field: Field| {
        stored
            .get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or("")
    };
    let f = &schema.fields;
    let snippet = match generator {
        None => String::new(),
        Some(generator) => snippet_html(generator, text(f.body), chars),
    };
    Ok(FetchedDoc {
        id: replica.page_id(address).ok_or("document has no id")?,
        title: text(f.title).to_string(),
        url: text(f.url).to_string(),
        snippet_html: snippet,
    })
}
