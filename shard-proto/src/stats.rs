//! Global BM25 statistics, so that N shards score exactly like one index.
//!
//! BM25 needs three corpus-wide numbers: the document count, the total number of tokens
//! per field (for the average field length) and each query term's document frequency.
//! Each shard reports its own ([`ShardTermStats`]); the front-end sums them over one
//! replica of every shard ([`GlobalStats::merge`]) and ships the sums with the query; the
//! leaves score with them through tantivy's `Bm25StatisticsProvider`. Shards are
//! immutable, so the front-end caches the sums and the statistics phase costs a round trip
//! only for terms it has never seen.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tantivy::query::{Bm25StatisticsProvider, Query};
use tantivy::schema::Field;
use tantivy::{Searcher, Term};

/// One shard's statistics for a set of fields and terms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardTermStats {
    /// `max_doc` summed over segments (tantivy counts deleted docs too).
    pub total_docs: u64,
    /// `(field id, total tokens)` for each requested field.
    pub field_tokens: Vec<(u32, u64)>,
    /// Document frequency of each requested term, in request order.
    pub doc_freqs: Vec<u64>,
}

impl ShardTermStats {
    /// Reads the statistics of `fields` and `terms` from one shard's searcher.
    pub fn collect(searcher: &Searcher, fields: &[Field], terms: &[Term]) -> crate::Result<Self> {
        let total_docs = searcher.num_docs_with_deleted();
        let mut field_tokens = Vec::with_capacity(fields.len());
        for &field in fields {
            field_tokens.push((field.field_id(), searcher.total_num_tokens(field)?));
        }
        let doc_freqs = terms
            .iter()
            .map(|t| searcher.doc_freq(t))
            .collect::<tantivy::Result<Vec<u64>>>()?;
        Ok(ShardTermStats {
            total_docs,
            field_tokens,
            doc_freqs,
        })
    }
}

/// Counting deleted documents as tantivy's own statistics do keeps sharded and single-index
/// scores identical even if deletes ever appear.
trait NumDocsWithDeleted {
    fn num_docs_with_deleted(&self) -> u64;
}

impl NumDocsWithDeleted for Searcher {
    fn num_docs_with_deleted(&self) -> u64 {
        self.segment_readers()
            .iter()
            .map(|s| s.max_doc() as u64)
            .sum()
    }
}

/// Corpus-wide statistics for one query, sent with it to every leaf.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalStats {
    pub total_docs: u64,
    pub field_tokens: Vec<(u32, u64)>,
    pub doc_freqs: Vec<(Term, u64)>,
}

impl GlobalStats {
    /// Sums the statistics of every shard, gathered for the same `fields` and `terms`.
    pub fn merge<'a>(
        fields: &[Field],
        terms: &[Term],
        shards: impl IntoIterator<Item = &'a ShardTermStats>,
    ) -> Self {
        let mut total_docs = 0;
        let mut field_tokens: Vec<(u32, u64)> = fields.iter().map(|f| (f.field_id(), 0)).collect();
        let mut doc_freqs: Vec<(Term, u64)> = terms.iter().map(|t| (t.clone(), 0)).collect();
        for shard in shards {
            total_docs += shard.total_docs;
            for (slot, (_, tokens)) in field_tokens.iter_mut().zip(&shard.field_tokens) {
                slot.1 += tokens;
            }
            for (slot, df) in doc_freqs.iter_mut().zip(&shard.doc_freqs) {
                slot.1 += df;
            }
        }
        GlobalStats {
            total_docs,
            field_tokens,
            doc_freqs,
        }
    }

    /// The terms a parsed query scores with (what the statistics phase must ask for).
    pub fn query_terms(query: &dyn Query) -> Vec<Term> {
        let mut terms = Vec::new();
        query.query_terms(&mut |term, _| terms.push(term.clone()));
        terms.sort();
        terms.dedup();
        terms
    }

    /// A provider for one leaf search: global figures where known, the local shard's own
    /// otherwise (query kinds such as phrase-prefix do not expose their terms up front, so
    /// they score with per-shard statistics, as in any sharded engine).
    pub fn provider<'a>(&'a self, local: &'a Searcher) -> StatsProvider<'a> {
        StatsProvider {
            global: self,
            doc_freqs: self.doc_freqs.iter().map(|(t, df)| (t, *df)).collect(),
            local,
        }
    }
}

/// [`GlobalStats`] as tantivy's `Bm25StatisticsProvider`, with local fallback.
pub struct StatsProvider<'a> {
    global: &'a GlobalStats,
    doc_freqs: HashMap<&'a Term, u64>,
    local: &'a Searcher,
}

impl Bm25StatisticsProvider for StatsProvider<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        match self
            .global
            .field_tokens
            .iter()
            .find(|(f, _)| *f == field.field_id())
        {
            Some(&(_, tokens)) => Ok(tokens),
            None => self.local.total_num_tokens(field),
        }
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        if self.global.total_docs == 0 {
            return self.local.total_num_docs();
        }
        Ok(self.global.total_docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let df = match self.doc_freqs.get(term) {
            Some(&df) => df,
            None => self.local.doc_freq(term)?,
        };
        // idf asserts doc_count >= doc_freq: never hand it inconsistent figures, whether
        // the caller's total is too small for the global figures or for the local ones.
        Ok(df.min(self.total_num_docs()?))
    }
}
