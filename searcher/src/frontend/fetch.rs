//! Fetch phase: stored fields and snippets for the final page only. It is one more phase
//! of the scatter machinery (`scatter.rs`): a shard's unit of work is its documents on the
//! page, so the fetch gets what the query phase gets, one request per node, a hedge to
//! another replica when a node runs past its p95, a retry on another replica when it fails,
//! a last chance with the rest of the deadline.
//!
//! Any replica can answer: replicas are byte-identical copies of an immutable shard, so a
//! document's address is the same on each, and each fetched document's page id is checked
//! against the hit's (a mismatch fails the shard's attempt, never shows a wrong title).

use std::collections::BTreeMap;
use std::sync::Arc;

use shard_proto::wire::{DocRef, FetchRequest, FetchedDoc, ShardOutcome};
use shard_proto::ShardId;
use tokio::time::Instant;

use crate::frontend::merge::{to_public_hit, MergedHit};
use crate::frontend::nodes::{AttemptError, RpcCall, RpcReply};
use crate::frontend::scatter::{Fanout, Outcomes, Phase};
use crate::model::{Hit, ShardFailure};

/// The page's documents still to fetch, by shard, each with the page id it must resolve to.
pub(crate) struct FetchPhase {
    template: FetchRequest,
    docs: BTreeMap<ShardId, Vec<(DocRef, u64)>>,
}

impl Phase for FetchPhase {
    type Item = Vec<FetchedDoc>;

    fn generation(&self) -> Option<&str> {
        self.template.generation.as_deref()
    }

    fn call(&self, shards: Vec<ShardId>) -> RpcCall {
        let docs = shards
            .iter()
            .flat_map(|shard| self.docs.get(shard).into_iter().flatten())
            .map(|(doc, _)| *doc)
            .collect();
        RpcCall::Fetch(Arc::new(FetchRequest {
            docs,
            ..self.template.clone()
        }))
    }

    /// The answer is in request order: each shard's documents, shard after shard.
    fn split(
        &self,
        shards: &[ShardId],
        reply: RpcReply,
    ) -> Result<Outcomes<Vec<FetchedDoc>>, AttemptError> {
        let RpcReply::Fetch(answer) = reply else {
            return Err(AttemptError::Decode("expected fetched documents".into()));
        };
        let asked: usize = shards
            .iter()
            .map(|s| self.docs.get(s).map_or(0, Vec::len))
            .sum();
        if answer.docs.len() != asked {
            return Err(AttemptError::Decode(format!(
                "{} documents for {asked} asked",
                answer.docs.len()
            )));
        }
        let mut fetched = answer.docs.into_iter();
        let outcomes = shards
            .iter()
            .map(|shard| {
                let expected = self.docs.get(shard).map_or(&[][..], Vec::as_slice);
                let answers = fetched.by_ref().take(expected.len());
                (*shard, check_ids(expected, answers))
            })
            .collect();
        Ok(outcomes)
    }
}

/// One shard's documents, if every one was found and is the page it should be.
fn check_ids(
    expected: &[(DocRef, u64)],
    answers: impl Iterator<Item = ShardOutcome<FetchedDoc>>,
) -> ShardOutcome<Vec<FetchedDoc>> {
    let mut docs = Vec::with_capacity(expected.len());
    for ((_, id), outcome) in expected.iter().zip(answers) {
        match outcome {
            ShardOutcome::Ok(doc) if doc.id == *id => docs.push(doc),
            ShardOutcome::Ok(doc) => {
                return ShardOutcome::Failed(format!(
                    "address resolved to page {} instead of {id}",
                    doc.id
                ))
            }
            ShardOutcome::Failed(reason) => return ShardOutcome::Failed(reason),
        }
    }
    ShardOutcome::Ok(docs)
}

/// Fetches the page's documents not already `prefetched` (by query-and-fetch); hits that
/// could not be fetched keep their id and score (empty title) and are reported as failures.
pub async fn fetch_page(
    fanout: &Fanout,
    template: FetchRequest,
    page: &[MergedHit],
    mut prefetched: Vec<Option<FetchedDoc>>,
    deadline: Instant,
) -> (Vec<Hit>, Vec<ShardFailure>) {
    let mut nodes: Vec<usize> = page.iter().map(|hit| hit.node).collect();
    let mut positions: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
    for (i, _) in prefetched
        .iter()
        .enumerate()
        .filter(|(_, doc)| doc.is_none())
    {
        positions.entry(page[i].shard).or_default().push(i);
    }
    let mut failed: BTreeMap<ShardId, String> = BTreeMap::new();
    if !positions.is_empty() {
        fanout.metrics.fetch_round_trips.inc();
        let phase = Arc::new(FetchPhase {
            template,
            docs: positions
                .iter()
                .map(|(shard, at)| {
                    let docs = at.iter().map(|&i| (page[i].doc_ref(), page[i].hit.id));
                    (*shard, docs.collect())
                })
                .collect(),
        });
        let shards: Vec<ShardId> = positions.keys().copied().collect();
        let gathered = fanout.scatter(&phase, &shards, deadline).await;
        for (shard, answer) in gathered.answers {
            for (&i, doc) in positions[&shard].iter().zip(answer.item) {
                prefetched[i] = Some(doc);
                nodes[i] = answer.node;
            }
        }
        failed = gathered.failures;
    }
    let mut failures = Vec::new();
    let replicas = fanout.replicas.current();
    let hits = page
        .iter()
        .zip(&prefetched)
        .zip(&nodes)
        .map(|((hit, doc), &node)| {
            if doc.is_none() {
                let reason = failed.get(&hit.shard).map_or("failed", String::as_str);
                failures.push(ShardFailure {
                    shard: hit.shard.to_string(),
                    reason: format!("fetch of page {}: {reason}", hit.hit.id),
                });
            }
            to_public_hit(hit, doc.as_ref(), &replicas.nodes[node].id)
        })
        .collect();
    (hits, failures)
}
