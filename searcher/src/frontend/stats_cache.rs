//! Cache of corpus-wide BM25 statistics: the document and token totals, and the summed
//! document frequency of every term seen so far.
//!
//! Shards are immutable, so a figure summed over one replica of *every* shard never goes
//! stale; figures gathered while a shard was unreachable are used for that one query and
//! never cached. At steady state a query finds all its terms here and the statistics phase
//! costs no round trip. The cache is bounded: when full it is cleared (re-gathering is
//! cheap, and a bounded map cannot be grown without limit by hostile queries).

use parking_lot::RwLock;
use std::collections::HashMap;

use shard_proto::GlobalStats;
use tantivy::Term;

/// Terms kept before the cache is reset.
const MAX_TERMS: usize = 2_000_000;

/// Document and token totals of the whole corpus.
#[derive(Clone, Debug, PartialEq)]
pub struct Totals {
    pub total_docs: u64,
    pub field_tokens: Vec<(u32, u64)>,
}

#[derive(Default)]
struct Inner {
    totals: Option<Totals>,
    doc_freqs: HashMap<Term, u64>,
}

/// The cache itself.
#[derive(Default)]
pub struct StatsCache {
    inner: RwLock<Inner>,
}

/// Result of a lookup: complete statistics, or what is missing.
pub enum Lookup {
    Hit(GlobalStats),
    /// Terms not cached (all of them if the totals are not known yet).
    Miss {
        missing: Vec<Term>,
    },
}

impl StatsCache {
    /// Statistics for `terms` (sorted, deduplicated) if all are cached.
    pub fn lookup(&self, terms: &[Term]) -> Lookup {
        let inner = self.inner.read();
        let Some(totals) = &inner.totals else {
            return Lookup::Miss {
                missing: terms.to_vec(),
            };
        };
        let missing: Vec<Term> = terms
            .iter()
            .filter(|t| !inner.doc_freqs.contains_key(*t))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Lookup::Miss { missing };
        }
        Lookup::Hit(GlobalStats {
            total_docs: totals.total_docs,
            field_tokens: totals.field_tokens.clone(),
            doc_freqs: terms
                .iter()
                .map(|t| (t.clone(), inner.doc_freqs[t]))
                .collect(),
        })
    }

    /// Stores statistics summed over every shard.
    pub fn insert_complete(&self, fresh: &GlobalStats) {
        let mut inner = self.inner.write();
        if inner.doc_freqs.len() + fresh.doc_freqs.len() > MAX_TERMS {
            inner.doc_freqs.clear();
        }
        inner.totals = Some(Totals {
            total_docs: fresh.total_docs,
            field_tokens: fresh.field_tokens.clone(),
        });
        for (term, df) in &fresh.doc_freqs {
            inner.doc_freqs.insert(term.clone(), *df);
        }
    }

    /// Statistics for `terms`: cached figures completed with `fresh` ones (which may be
    /// partial). Cached totals win over fresh partial ones.
    pub fn combine(&self, terms: &[Term], fresh: &GlobalStats) -> GlobalStats {
        let inner = self.inner.read();
        let fresh_df: HashMap<&Term, u64> = fresh.doc_freqs.iter().map(|(t, d)| (t, *d)).collect();
        let (total_docs, field_tokens) = match &inner.totals {
            Some(t) => (t.total_docs, t.field_tokens.clone()),
            None => (fresh.total_docs, fresh.field_tokens.clone()),
        };
        let doc_freqs = terms
            .iter()
            .filter_map(|t| {
                let df = inner.doc_freqs.get(t).or_else(|| fresh_df.get(t))?;
                Some((t.clone(), *df))
            })
            .collect();
        GlobalStats {
            total_docs,
            field_tokens,
            doc_freqs,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.read().doc_freqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shard_proto::WikiSchema;

    fn term(text: &str) -> Term {
        Term::from_field_text(WikiSchema::new().fields.body, text)
    }

    fn stats(terms: &[(&str, u64)]) -> GlobalStats {
        GlobalStats {
            total_docs: 100,
            field_tokens: vec![(1, 1000)],
            doc_freqs: terms.iter().map(|(t, d)| (term(t), *d)).collect(),
        }
    }

    #[test]
    fn misses_until_totals_and_terms_are_known() {
        let cache = StatsCache::default();
        assert!(
            matches!(cache.lookup(&[term("a")]), Lookup::Miss { missing } if missing.len() == 1)
        );
        cache.insert_complete(&stats(&[("a", 3)]));
        let Lookup::Hit(hit) = cache.lookup(&[term("a")]) else {
            panic!("expected a hit")
        };
        assert_eq!(hit, stats(&[("a", 3)]));
        let mut both = vec![term("a"), term("b")];
        both.sort();
        match cache.lookup(&both) {
            Lookup::Miss { missing } => assert_eq!(missing, vec![term("b")]),
            Lookup::Hit(_) => panic!("b is not cached"),
        }
    }

    #[test]
    fn combine_prefers_cached_totals_over_partial_fresh_ones() {
        let cache = StatsCache::default();
        cache.insert_complete(&stats(&[("a", 3)]));
        let partial = GlobalStats {
            total_docs: 40,
            field_tokens: vec![(1, 400)],
            doc_freqs: vec![(term("b"), 1)],
        };
        let combined = cache.combine(&[term("a"), term("b")], &partial);
        assert_eq!(combined.total_docs, 100);
        assert_eq!(combined.doc_freqs, vec![(term("a"), 3), (term("b"), 1)]);
        assert_eq!(cache.len(), 1);
    }
}
