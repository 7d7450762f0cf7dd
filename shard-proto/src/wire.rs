//! The internal RPC between the front-end and searcher nodes: HTTP POST bodies encoded with
//! bincode 2 (serde), one request per node covering every shard it is asked for.
//!
//! Phases of a search, as in Quickwit's root/leaf split:
//! 1. statistics ([`StatsRequest`]): document frequencies of terms the front-end has not
//!    cached yet, per shard;
//! 2. query ([`SearchRequest`]): each shard's top `k` by score plus its hit count, scored
//!    with the [`GlobalStats`] sent along;
//! 3. fetch ([`FetchRequest`]): stored fields and a highlighted snippet for the final page's
//!    hits only, addressed by `(shard, segment, doc)` — valid because shards are immutable
//!    and a node opens each replica once.
//!
//! Elasticsearch's old `query_and_fetch` is the alternative to phase 3 when `k` is small: a
//! [`SearchRequest`] with [`SearchRequest::fetch`] set makes the node attach the stored
//! fields and snippet of each of its own best `n` hits ([`ShardHits::docs`]), which saves
//! the fetch round trip at the price of fetching more documents than the page shows (the
//! front-end picks `n` per node from the share of shards the node searches).
//!
//! Title suggestions ([`SuggestRequest`]) are one more phase of their own: each shard's
//! best titles and redirect titles starting with a prefix, most linked first, merged by
//! the front-end in the one order of [`Suggestion::merge_order`].
//!
//! Every request body is a [`Call`]: the request plus the time budget its caller gives it
//! (`budget_millis`, counted from when the caller sent it). A node refuses a call whose
//! budget is spent before it starts, and stops working on it when the budget runs out or
//! the caller hangs up, so a search nobody waits for costs nothing.
//!
//! Decoding is bounded ([`MAX_FRAME_BYTES`]) and never panics: a garbage or oversized frame
//! is an [`Error::BadFrame`], which servers answer with 400. Lists in requests are bounded
//! too ([`MAX_SHARDS_PER_CALL`], [`MAX_TERMS_PER_CALL`], [`MAX_FIELDS_PER_CALL`]), and so
//! are a suggestion's prefix and count ([`MAX_SUGGEST_PREFIX_BYTES`],
//! [`MAX_SUGGESTIONS_PER_CALL`]); a node refuses longer ones with 400 before doing any
//! work.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tantivy::Term;

use crate::error::{Error, Result};
use crate::query::Syntax;
use crate::stats::{GlobalStats, ShardTermStats};
use crate::ShardId;

/// Bumped on any change to these messages; sent as the `x-wire-version` header.
/// 9: requests name the index generation they are pinned to, and health answers report
/// the replicas of every generation a node holds ([`GenerationReplicas`]).
/// 8: nodes serve [`paths::SUGGEST`] and a [`Suggestion`] carries its `key` (a node of
/// an older version would answer a suggestion call 404, which ejects it: the version
/// says so first). 7: health answers carry what a node holds and its healing state.
pub const WIRE_VERSION: u32 = 9;
/// Header carrying [`WIRE_VERSION`].
pub const WIRE_VERSION_HEADER: &str = "x-wire-version";
/// Largest request or response body a node accepts or decodes.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Content type of every RPC body.
pub const CONTENT_TYPE: &str = "application/x-bincode";
/// Most shards one call may name (a node holds far fewer; repeats are refused).
pub const MAX_SHARDS_PER_CALL: usize = 1024;
/// Most terms one statistics call may ask for: a 4 KiB public query yields at most about
/// 1,400 distinct terms per default field, three default fields.
pub const MAX_TERMS_PER_CALL: usize = 8192;
/// Most field ids one statistics call may name (the schema has fewer; repeats are refused).
pub const MAX_FIELDS_PER_CALL: usize = 64;
/// Longest prefix one suggestion call may carry, in bytes: a title key is at most
/// [`crate::schema::MAX_KEY_BYTES`], so anything longer matches nothing anyway.
pub const MAX_SUGGEST_PREFIX_BYTES: usize = 1024;
/// Most suggestions one suggestion call may ask of each shard.
pub const MAX_SUGGESTIONS_PER_CALL: u32 = 100;

/// The body of every RPC request: the request and how long its caller waits for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call<T> {
    /// Milliseconds the caller waits for the answer, counted from when it sent the call; a
    /// node stops working on the call when they have passed (0: already too late).
    pub budget_millis: u32,
    pub request: T,
}

impl<T> Call<T> {
    /// `request` with `budget` (saturated to `u32::MAX` milliseconds, about 49 days).
    pub fn new(request: T, budget: std::time::Duration) -> Self {
        Call {
            budget_millis: u32::try_from(budget.as_millis()).unwrap_or(u32::MAX),
            request,
        }
    }
}

/// RPC paths served by `searcher node`.
pub mod paths {
    /// GET → [`super::HealthResponse`].
    pub const HEALTH: &str = "/rpc/health";
    /// POST [`super::Call`]`<`[`super::StatsRequest`]`>` → [`super::StatsResponse`].
    pub const STATS: &str = "/rpc/stats";
    /// POST [`super::Call`]`<`[`super::SearchRequest`]`>` → [`super::SearchResponse`].
    pub const SEARCH: &str = "/rpc/search";
    /// POST [`super::Call`]`<`[`super::FetchRequest`]`>` → [`super::FetchResponse`].
    pub const FETCH: &str = "/rpc/fetch";
    /// POST [`super::Call`]`<`[`super::SuggestRequest`]`>` → [`super::SuggestResponse`].
    pub const SUGGEST: &str = "/rpc/suggest";
    /// POST [`super::Call`]`<`[`super::ChunkRequest`]`>` → [`super::ChunkResponse`].
    pub const REPLICA_CHUNK: &str = "/rpc/replica-chunk";
}

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME_BYTES>,
> {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

/// Encodes a message for the wire; a message over [`MAX_FRAME_BYTES`] is an error (the
/// other side could not decode it).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    let bytes = bincode::serde::encode_to_vec(message, config())
        .map_err(|e| Error::BadFrame(e.to_string()))?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(Error::BadFrame(format!(
            "a {}-byte message exceeds the {MAX_FRAME_BYTES}-byte frame limit",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Decodes a message, refusing trailing bytes, oversized or malformed frames.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(Error::BadFrame(format!(
            "{} bytes exceeds the {MAX_FRAME_BYTES}-byte limit",
            bytes.len()
        )));
    }
    let (message, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| Error::BadFrame(e.to_string()))?;
    if read != bytes.len() {
        return Err(Error::BadFrame(format!(
            "{} trailing bytes after the message",
            bytes.len() - read
        )));
    }
    Ok(message)
}

/// The `budget_millis` of an encoded [`Call`], read without decoding the rest (its first
/// field), so a node can refuse a late call before queueing or decoding it.
pub fn call_budget(bytes: &[u8]) -> Result<u32> {
    let (budget, _) = bincode::serde::decode_from_slice::<u32, _>(bytes, config())
        .map_err(|e| Error::BadFrame(e.to_string()))?;
    Ok(budget)
}

/// Statistics phase request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsRequest {
    pub shards: Vec<ShardId>,
    /// Field ids whose token totals are wanted.
    pub fields: Vec<u32>,
    pub terms: Vec<Term>,
    /// The index generation asked for (`None`: the store's base generation, see
    /// [`crate::generation`]): a search is pinned to one generation in every phase.
    pub generation: Option<String>,
}

/// Statistics phase answer, one entry per requested shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsResponse {
    pub node: String,
    pub shards: Vec<(ShardId, ShardOutcome<ShardTermStats>)>,
}

/// Query phase request: top `top_k` of each listed shard. A shard may return fewer (a
/// prefix of its top `top_k`) when the rest cannot enter the top `top_k` over all the
/// listed shards (the shards of one request share a bar,
/// [`SharedBar`](crate::ranking::SharedBar)); its `total` is always its full hit count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    /// How `query` is read: every node parses it again ([`crate::query::parse`]).
    pub syntax: Syntax,
    pub shards: Vec<ShardId>,
    pub top_k: u32,
    pub stats: GlobalStats,
    /// Query-and-fetch: also fetch the node's best hits over all the listed shards.
    pub fetch: Option<PiggybackFetch>,
    /// The index generation asked for (`None`: the store's base generation, see
    /// [`crate::generation`]): a search is pinned to one generation in every phase.
    pub generation: Option<String>,
}

/// What a query-and-fetch request wants fetched along with the hits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PiggybackFetch {
    /// How many of the node's best hits (over all the shards of the request) to fetch;
    /// at most `top_k`.
    pub docs: u32,
    /// Longest snippet, in characters.
    pub snippet_chars: u32,
}

/// A shard-local hit: the score, the page id, and its address for the fetch phase.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeafHit {
    pub score: f32,
    pub id: u64,
    pub segment: u32,
    pub doc: u32,
}

impl LeafHit {
    /// The one order of merged results, on the front-end and (for query-and-fetch) on the
    /// nodes: score descending, then page id ascending, so pages are stable and a node
    /// ranks its hits exactly as the front-end will.
    pub fn merge_order(a: &LeafHit, b: &LeafHit) -> std::cmp::Ordering {
        b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
    }

    /// Its address in `shard`, for the fetch phase.
    pub fn doc_ref(&self, shard: ShardId) -> DocRef {
        DocRef {
            shard,
            segment: self.segment,
            doc: self.doc,
        }
    }
}

/// One shard's query-phase result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardHits {
    /// Hits sorted by descending score.
    pub hits: Vec<LeafHit>,
    /// Number of matching documents in the shard.
    pub total: u64,
    /// Query-and-fetch only: the documents of `hits[..docs.len()]`, the shard's hits among
    /// the node's best `fetch.docs` over all the shards of the request (empty otherwise; a
    /// document that could not be fetched ends the list, and is fetched in a fetch phase).
    pub docs: Vec<FetchedDoc>,
}

/// Per-shard outcome: partial failure is data, never swallowed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShardOutcome<T> {
    Ok(T),
    Failed(String),
}

/// Query phase answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    pub node: String,
    pub shards: Vec<(ShardId, ShardOutcome<ShardHits>)>,
}

/// Longest range one [`ChunkRequest`] may ask for: well inside a frame, and small enough
/// that a copy never holds a search permit for long.
pub const MAX_CHUNK_BYTES: u32 = 4 * 1024 * 1024;

/// A range of one file of a replica the node serves, for a node healing the shard when
/// the shard store cannot give it a good copy (a corrupted or missing object): it copies
/// the files from a live replica instead, chunk by chunk, and verifies them as always.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkRequest {
    pub shard: ShardId,
    /// A file name the shard's manifest lists.
    pub file: String,
    /// The file's blake3 in the asker's manifest: a node whose copy is of another build
    /// refuses, rather than send bytes that would fail the verification.
    pub blake3: String,
    pub offset: u64,
    /// At most [`MAX_CHUNK_BYTES`].
    pub len: u32,
}

/// The bytes of a [`ChunkRequest`]'s range (fewer at the end of the file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkResponse {
    /// The whole file's size.
    pub file_bytes: u64,
    pub data: Vec<u8>,
}

/// Address of a document on the node that produced it in the query phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocRef {
    pub shard: ShardId,
    pub segment: u32,
    pub doc: u32,
}

/// Fetch phase request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The query again, for snippet highlighting.
    pub query: String,
    pub syntax: Syntax,
    pub docs: Vec<DocRef>,
    /// Longest snippet, in characters.
    pub snippet_chars: u32,
    /// The search's global statistics: snippets weigh the query's terms by them, so the
    /// highlighted fragment does not depend on the sharding.
    pub stats: GlobalStats,
    /// The index generation asked for (`None`: the store's base generation, see
    /// [`crate::generation`]): a search is pinned to one generation in every phase.
    pub generation: Option<String>,
}

/// Stored fields of one document and its snippet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchedDoc {
    pub id: u64,
    pub title: String,
    pub url: String,
    /// HTML: text escaped, matched terms wrapped in `<b>`.
    pub snippet_html: String,
}

/// Fetch phase answer, in request order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchResponse {
    pub node: String,
    pub docs: Vec<ShardOutcome<FetchedDoc>>,
}

/// Title suggestions: each listed shard's best `size` titles and redirect titles that
/// start with `prefix` once both are keyed by [`crate::schema::prefix_key`] (the node keys
/// the prefix itself: what a person typed travels as typed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestRequest {
    pub prefix: String,
    pub shards: Vec<ShardId>,
    /// At most [`MAX_SUGGESTIONS_PER_CALL`].
    pub size: u32,
    /// The index generation asked for (`None`: the store's base generation, see
    /// [`crate::generation`]): a search is pinned to one generation in every phase.
    pub generation: Option<String>,
}

/// One suggested article.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub id: u64,
    /// The article's title.
    pub title: String,
    /// The redirect title that matched the prefix, when the title itself did not.
    pub redirect: Option<String>,
    pub url: String,
    /// Incoming links: the ranking prior.
    pub links: u64,
    /// The key that matched (of the title, or of `redirect`): the tie-break after `links`,
    /// known to every shard without reading stored fields.
    pub key: String,
}

impl Suggestion {
    /// The one order of suggestions, on the nodes and the front-end: most linked first,
    /// then by matched key and page id, so every sharding gives the same list.
    pub fn merge_order(a: &Suggestion, b: &Suggestion) -> std::cmp::Ordering {
        b.links
            .cmp(&a.links)
            .then_with(|| a.key.cmp(&b.key))
            .then(a.id.cmp(&b.id))
    }
}

/// Suggestion answer, one entry per requested shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestResponse {
    pub node: String,
    pub shards: Vec<(ShardId, ShardOutcome<Vec<Suggestion>>)>,
}

/// State of one replica on a node, as its health answer reports it: what the front-end
/// routes by (placement is only the target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReplicaState {
    /// Installed, verified against its manifest (every file's size and blake3, the schema
    /// fingerprint) and open: only verified copies ever serve.
    Serving {
        docs: u64,
        /// Bytes of the copy (the manifest's files).
        bytes: u64,
        /// The generation of the slice record it was installed from (`None`: a store
        /// written before slice records).
        generation: Option<u64>,
    },
    /// Refused (failed verification, schema mismatch, unreadable): the reason.
    Failed(String),
}

/// What a node is doing to restore a shard's replicas (self-healing), as its health
/// answer reports it, so `/cluster` can explain every under-replicated shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HealState {
    /// Holders of the shard are unreachable, still within the grace period: this node
    /// takes the shard over if they stay away `heal_in_millis` longer.
    Waiting {
        heal_in_millis: u64,
        lost: Vec<String>,
    },
    /// To be installed here once an install slot is free (fewest live copies first).
    Queued,
    /// Being installed from the shard store (waiting for the byte-rate budget counts).
    Copying { copied_bytes: u64, total_bytes: u64 },
    /// The last install failed; retried in `retry_in_millis`, forever, with backoff.
    Failing {
        error: String,
        attempts: u32,
        retry_in_millis: u64,
    },
    /// A temporary copy made redundant (its target holders serve again): dropped in
    /// `drop_in_millis`.
    Surplus { drop_in_millis: u64 },
}

/// A node's serving replicas of one named index generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationReplicas {
    pub generation: String,
    pub shards: Vec<ShardId>,
}

/// Health answer of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub node: String,
    pub pid: u32,
    pub uptime_millis: u64,
    pub in_flight: u32,
    pub replicas: Vec<(ShardId, ReplicaState)>,
    /// What the node is doing to heal the cluster, per shard.
    pub healing: Vec<(ShardId, HealState)>,
    /// The verified, serving replicas of every index generation the node holds, the
    /// base one ([`crate::generation::BASE`]) first. `replicas` lists the base
    /// generation's states plus any shard only a named generation holds (what a
    /// front-end routes by).
    pub generations: Vec<GenerationReplicas>,
    pub wire_version: u32,
    pub schema: String,
}

impl HealthResponse {
    /// The shards this node serves (verified replicas), not those failed or dropped.
    pub fn serving(&self) -> std::collections::BTreeSet<ShardId> {
        self.replicas
            .iter()
            .filter(|(_, state)| matches!(state, ReplicaState::Serving { .. }))
            .map(|(shard, _)| *shard)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WikiSchema;

    fn sample_request() -> SearchRequest {
        let schema = WikiSchema::new();
        let term = Term::from_field_text(schema.fields.body, "anarchism");
        SearchRequest {
            query: "anarchism".into(),
            syntax: Syntax::Lenient,
            shards: vec![ShardId::new(0, 2, 1, 3).unwrap()],
            top_k: 10,
            stats: GlobalStats {
                total_docs: 106,
                field_tokens: vec![(2, 12345)],
                doc_freqs: vec![(term, 7)],
            },
            fetch: Some(PiggybackFetch {
                docs: 10,
                snippet_chars: 240,
            }),
            generation: Some("g2".into()),
        }
    }

    #[test]
    fn messages_round_trip() {
        let call = Call::new(sample_request(), std::time::Duration::from_millis(1500));
        let bytes = encode(&call).unwrap();
        let decoded = decode::<Call<SearchRequest>>(&bytes).unwrap();
        assert_eq!(decoded.budget_millis, 1500);
        assert_eq!(call_budget(&bytes).unwrap(), 1500);
        assert_eq!(decoded, call);
    }

    #[test]
    fn budgets_saturate_and_oversized_messages_are_not_encoded() {
        let call = Call::new((), std::time::Duration::from_secs(u64::MAX / 4));
        assert_eq!(call.budget_millis, u32::MAX);
        let huge = vec![0u8; MAX_FRAME_BYTES + 1];
        assert!(matches!(encode(&huge), Err(Error::BadFrame(_))));
    }

    #[test]
    fn garbage_truncated_and_trailing_bytes_are_errors() {
        let bytes = encode(&sample_request()).unwrap();
        assert!(decode::<SearchRequest>(&bytes[..bytes.len() / 2]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<SearchRequest>(&longer).is_err());
        assert!(decode::<SearchRequest>(&[0xff; 64]).is_err());
        // A length prefix claiming 2^60 items must not allocate or panic.
        assert!(decode::<Vec<u64>>(&[0xff, 0, 0, 0, 0, 0, 0, 0x10, 0]).is_err());
    }
}
