//! The merge of a distributed search, as pure functions shared by the front-end and the
//! in-process sharded baseline (so both rank exactly alike): every shard's hits with
//! where they came from, one page of them in the one merge order
//! ([`LeafHit::merge_order`]: score descending, then page id), a page hit with its
//! fetched fields as the public answer shows it, and the share of documents searched.

use std::collections::BTreeMap;

use shard_proto::wire::{DocRef, FetchedDoc, LeafHit, ShardHits};
use shard_proto::ShardId;

use crate::model::Hit;

/// A merged hit before the fetch phase.
#[derive(Clone, Copy, Debug)]
pub struct MergedHit {
    pub hit: LeafHit,
    pub shard: ShardId,
    /// Index of the node that answered for the shard.
    pub node: usize,
    /// Position among its shard's hits (where a query-and-fetch document is found).
    pub rank: usize,
}

impl MergedHit {
    /// Its address, for the fetch phase.
    pub fn doc_ref(&self) -> DocRef {
        self.hit.doc_ref(self.shard)
    }
}

/// Every hit of every shard's answer `(shard, answering node, hits)`, and the summed hit
/// count.
pub fn gather<'a>(
    answers: impl IntoIterator<Item = (ShardId, usize, &'a ShardHits)>,
) -> (u64, Vec<MergedHit>) {
    let mut total = 0;
    let mut merged = Vec::new();
    for (shard, node, answer) in answers {
        total += answer.total;
        merged.extend(answer.hits.iter().enumerate().map(|(rank, hit)| MergedHit {
            hit: *hit,
            shard,
            node,
            rank,
        }));
    }
    (total, merged)
}

/// Orders hits by score (descending), ties by page id (ascending), and keeps one page.
pub fn merge_page(mut hits: Vec<MergedHit>, from: usize, size: usize) -> Vec<MergedHit> {
    hits.sort_by(|a, b| LeafHit::merge_order(&a.hit, &b.hit));
    hits.into_iter().skip(from).take(size).collect()
}

/// A page hit with its fetched fields (empty where the fetch failed).
pub fn to_public_hit(hit: &MergedHit, doc: Option<&FetchedDoc>, node: &str) -> Hit {
    Hit {
        id: hit.hit.id,
        title: doc.map(|d| d.title.clone()).unwrap_or_default(),
        url: doc.map(|d| d.url.clone()).unwrap_or_default(),
        score: hit.hit.score,
        snippet: doc.map(|d| d.snippet_html.clone()).unwrap_or_default(),
        shard: hit.shard.to_string(),
        node: node.to_string(),
    }
}

/// Share of the corpus's documents in the `searched` shards (1.0 for an empty corpus).
pub fn coverage<'a>(
    shard_docs: &BTreeMap<ShardId, u64>,
    searched: impl IntoIterator<Item = &'a ShardId>,
) -> f64 {
    let all: u64 = shard_docs.values().sum();
    if all == 0 {
        return 1.0;
    }
    let searched: u64 = searched
        .into_iter()
        .map(|shard| shard_docs.get(shard).copied().unwrap_or(0))
        .sum();
    searched as f64 / all as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_hit(score: f32, id: u64) -> LeafHit {
        LeafHit {
            score,
            id,
            segment: 0,
            doc: id as u32,
        }
    }

    fn shard(n: u32) -> ShardId {
        ShardId::new(0, 1, n, 2).unwrap()
    }

    #[test]
    fn gather_keeps_origin_and_rank_and_sums_totals() {
        let a = ShardHits {
            total: 5,
            hits: vec![leaf_hit(3.0, 9), leaf_hit(1.0, 5)],
            docs: Vec::new(),
        };
        let b = ShardHits {
            total: 2,
            hits: vec![leaf_hit(2.0, 1)],
            docs: Vec::new(),
        };
        let (total, merged) = gather([(shard(0), 0, &a), (shard(1), 1, &b)]);
        assert_eq!(total, 7);
        let origin: Vec<(u64, u32, usize, usize)> = merged
            .iter()
            .map(|m| (m.hit.id, m.shard.shard, m.node, m.rank))
            .collect();
        assert_eq!(origin, vec![(9, 0, 0, 0), (5, 0, 0, 1), (1, 1, 1, 0)]);
    }

    #[test]
    fn merge_orders_by_score_then_id_and_pages() {
        let (_, hits) = gather([(
            shard(0),
            0,
            &ShardHits {
                total: 5,
                hits: vec![
                    leaf_hit(1.0, 5),
                    leaf_hit(3.0, 9),
                    leaf_hit(2.0, 1),
                    leaf_hit(2.0, 0),
                    leaf_hit(0.5, 7),
                ],
                docs: Vec::new(),
            },
        )]);
        let ids = |page: Vec<MergedHit>| page.iter().map(|h| h.hit.id).collect::<Vec<_>>();
        assert_eq!(ids(merge_page(hits.clone(), 0, 3)), vec![9, 0, 1]);
        assert_eq!(ids(merge_page(hits.clone(), 3, 3)), vec![5, 7]);
        assert_eq!(ids(merge_page(hits, 10, 3)), Vec::<u64>::new());
    }
}
