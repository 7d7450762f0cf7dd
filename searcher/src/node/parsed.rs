//! A node's parsed queries: one query parser per text [`Analysis`], a cache of parsed
//! queries (the fetch phase follows the query phase with the same string), and
//! [`QueryFor`], a request's query parsed lazily under the analysis of each shard it
//! runs on (a cluster serves one analysis per generation, so a request parses once; two
//! only while generations of different languages are both held).
//!
//! The query limits are checked on every parse, whatever the front-end checked: a node
//! never trusts its caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use shard_proto::query::{self, Syntax};
use shard_proto::{Analysis, ParsersByAnalysis, QueryLimits};
use tantivy::query::Query;

use super::leaf::BadRequest;
use super::replicas::Replica;

/// Parsed queries kept for reuse, and the longest query string kept.
const PARSED_CACHE_ENTRIES: usize = 4096;
const PARSED_CACHE_MAX_QUERY_BYTES: usize = 1024;

type CacheKey = (String, Syntax, Analysis);

/// Parsers per analysis and the cache of what they parsed.
pub struct Parsers {
    by_analysis: ParsersByAnalysis,
    pub limits: QueryLimits,
    /// Query string, syntax and analysis → parsed query; emptied when full (a query costs
    /// ~10 µs to parse).
    cache: Mutex<HashMap<CacheKey, Arc<dyn Query>>>,
}

impl Parsers {
    pub fn new(limits: QueryLimits) -> Self {
        Parsers {
            by_analysis: ParsersByAnalysis::default(),
            limits,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `text` parsed and ranked for shards analyzed with `analysis`.
    pub fn parse(
        &self,
        text: &str,
        syntax: Syntax,
        analysis: Analysis,
    ) -> Result<Arc<dyn Query>, BadRequest> {
        let key = (text.to_string(), syntax, analysis);
        if let Some(hit) = self.cache().get(&key) {
            return Ok(Arc::clone(hit));
        }
        let parsed: Arc<dyn Query> = Arc::from(self.parse_uncached(text, syntax, analysis)?);
        if text.len() <= PARSED_CACHE_MAX_QUERY_BYTES {
            let mut cached = self.cache();
            if cached.len() >= PARSED_CACHE_ENTRIES {
                cached.clear();
            }
            cached.insert(key, Arc::clone(&parsed));
        }
        Ok(parsed)
    }

    /// The cache holds no invariant a panic could break: a poisoned lock is still usable.
    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<dyn Query>>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn parse_uncached(
        &self,
        text: &str,
        syntax: Syntax,
        analysis: Analysis,
    ) -> Result<Box<dyn Query>, BadRequest> {
        let (schema, parser) = self.by_analysis.get(analysis);
        let parsed = query::parse_within(parser, &schema.schema, text, syntax, &self.limits)
            .map_err(|e| BadRequest(format!("query refused: {e}")))?;
        Ok(shard_proto::rank(schema, parsed, text))
    }
}

/// One request's query, parsed once per analysis of the shards it meets.
pub struct QueryFor<'a> {
    parsers: &'a Parsers,
    text: &'a str,
    syntax: Syntax,
    parsed: [OnceLock<Result<Arc<dyn Query>, String>>; Analysis::ALL.len()],
}

impl<'a> QueryFor<'a> {
    /// Checks the query as a whole (limits, strict syntax) before any shard is touched:
    /// a refused query is a [`BadRequest`], not one failed shard after another.
    /// `likely` is the analysis parsed first (the one of the request's first shard).
    pub fn checked(
        parsers: &'a Parsers,
        text: &'a str,
        syntax: Syntax,
        likely: Analysis,
    ) -> Result<Self, BadRequest> {
        let query = QueryFor {
            parsers,
            text,
            syntax,
            parsed: Default::default(),
        };
        let parsed = parsers.parse(text, syntax, likely)?;
        let _ = query.slot(likely).set(Ok(parsed));
        Ok(query)
    }

    /// The query as `replica`'s analysis reads it.
    pub fn on(&self, replica: &Replica) -> Result<Arc<dyn Query>, String> {
        let analysis = replica.analysis;
        self.slot(analysis)
            .get_or_init(|| {
                (self.parsers)
                    .parse(self.text, self.syntax, analysis)
                    .map_err(|e| e.0)
            })
            .clone()
    }

    fn slot(&self, analysis: Analysis) -> &OnceLock<Result<Arc<dyn Query>, String>> {
        &self.parsed[analysis.index()]
    }
}
