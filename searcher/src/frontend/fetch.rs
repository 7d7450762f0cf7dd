//! Fetch phase: stored fields and snippets for the final page only, one `FetchRequest` per
//! node that produced winning hits (the node that answered the query phase, whose document
//! addresses these are).
//!
//! If that node fails between the phases, the documents are fetched from another replica of
//! their shard: replicas are byte-identical copies of an immutable shard, so the address is
//! the same there, and each fetched document's page id is checked against the hit's — a
//! mismatch is a failure, never a wrong title.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use shard_proto::wire::{FetchRequest, FetchedDoc, ShardOutcome};
use tokio::time::Instant;

use crate::frontend::merge::{to_public_hit, MergedHit};
use crate::frontend::nodes::{AttemptError, RpcCall, RpcReply};
use crate::frontend::scatter::Fanout;
use crate::model::{Hit, ShardFailure};

struct Pending {
    node: usize,
    tried: Vec<usize>,
    doc: Option<FetchedDoc>,
    last_error: Option<String>,
}

/// Fetches the page's documents not already `prefetched` (by query-and-fetch); hits that
/// could not be fetched keep their id and score (empty title) and are reported as failures.
pub async fn fetch_page(
    fanout: &Fanout,
    template: &FetchRequest,
    page: &[MergedHit],
    prefetched: Vec<Option<FetchedDoc>>,
    deadline: Instant,
) -> (Vec<Hit>, Vec<ShardFailure>) {
    let mut pending: Vec<Pending> = page
        .iter()
        .zip(prefetched)
        .map(|(h, doc)| Pending {
            node: h.node,
            tried: vec![h.node],
            doc,
            last_error: None,
        })
        .collect();
    loop {
        let groups = group_by_node(&pending);
        if groups.is_empty() {
            break;
        }
        fanout.metrics.fetch_round_trips.inc();
        let round = fetch_round(fanout, template, page, &pending, groups, deadline);
        match tokio::time::timeout_at(deadline, round).await {
            Ok(results) => record_round(fanout, page, &mut pending, results),
            Err(_) => {
                for p in pending.iter_mut().filter(|p| p.doc.is_none()) {
                    p.last_error = Some("deadline exceeded".into());
                }
                break;
            }
        }
        if !reassign_failed(fanout, page, &mut pending) {
            break;
        }
    }
    let mut failures = Vec::new();
    let hits = page
        .iter()
        .zip(&pending)
        .map(|(hit, p)| {
            if p.doc.is_none() {
                failures.push(ShardFailure {
                    shard: hit.shard.to_string(),
                    reason: format!(
                        "fetch of page {}: {}",
                        hit.hit.id,
                        p.last_error.as_deref().unwrap_or("failed")
                    ),
                });
            }
            to_public_hit(hit, p.doc.as_ref(), &fanout.replicas.nodes[p.node].id)
        })
        .collect();
    (hits, failures)
}

/// Page positions still to fetch, by node.
fn group_by_node(pending: &[Pending]) -> BTreeMap<usize, Vec<usize>> {
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, p) in pending.iter().enumerate() {
        if p.doc.is_none() && p.last_error.is_none() {
            groups.entry(p.node).or_default().push(i);
        }
    }
    groups
}

type RoundResult = (
    usize,
    Vec<usize>,
    Result<Vec<ShardOutcome<FetchedDoc>>, AttemptError>,
);

async fn fetch_round(
    fanout: &Fanout,
    template: &FetchRequest,
    page: &[MergedHit],
    pending: &[Pending],
    groups: BTreeMap<usize, Vec<usize>>,
    deadline: Instant,
) -> Vec<RoundResult> {
    let mut running = FuturesUnordered::new();
    for (node, positions) in groups {
        let request = FetchRequest {
            query: template.query.clone(),
            syntax: template.syntax,
            docs: positions.iter().map(|&i| page[i].doc_ref()).collect(),
            snippet_chars: template.snippet_chars,
            stats: template.stats.clone(),
        };
        let handle = Arc::clone(&fanout.replicas.nodes[node]);
        let last_chance = positions
            .iter()
            .any(|&i| !has_untried_replica(fanout, &page[i], &pending[i]));
        let budget = fanout.attempt_budget(last_chance, deadline);
        running.push(tokio::spawn(async move {
            let result = match handle.call(RpcCall::Fetch(Arc::new(request)), budget).await {
                Ok(RpcReply::Fetch(answer)) => Ok(answer.docs),
                Ok(_) => Err(AttemptError::Decode("expected fetched documents".into())),
                Err(error) => Err(error),
            };
            (node, positions, result)
        }));
    }
    let mut results = Vec::new();
    while let Some(joined) = running.next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(join_error) => tracing::error!(%join_error, "fetch task failed"),
        }
    }
    results
}

fn record_round(
    fanout: &Fanout,
    page: &[MergedHit],
    pending: &mut [Pending],
    results: Vec<RoundResult>,
) {
    for (node, positions, result) in results {
        let node_id = &fanout.replicas.nodes[node].id;
        let docs = match result {
            Ok(docs) if docs.len() == positions.len() => docs,
            Ok(docs) => {
                let error = format!(
                    "{node_id}: {} documents for {} asked",
                    docs.len(),
                    positions.len()
                );
                for &i in &positions {
                    pending[i].last_error = Some(error.clone());
                }
                continue;
            }
            Err(error) => {
                fanout.metrics.rpc_error(node_id, error.kind());
                for &i in &positions {
                    pending[i].last_error = Some(format!("{node_id}: {error}"));
                }
                continue;
            }
        };
        for (&i, outcome) in positions.iter().zip(docs) {
            match outcome {
                ShardOutcome::Ok(doc) if doc.id == page[i].hit.id => pending[i].doc = Some(doc),
                ShardOutcome::Ok(doc) => {
                    pending[i].last_error = Some(format!(
                        "{node_id}: address resolved to page {} instead of {}",
                        doc.id, page[i].hit.id
                    ))
                }
                ShardOutcome::Failed(reason) => {
                    pending[i].last_error = Some(format!("{node_id}: {reason}"))
                }
            }
        }
    }
}

/// Whether the hit's shard has a replica this document was not asked from yet.
fn has_untried_replica(fanout: &Fanout, hit: &MergedHit, pending: &Pending) -> bool {
    fanout
        .replicas
        .can_fail_over(&hit.shard, |node| pending.tried.contains(&node))
}

/// Moves failed documents to another replica of their shard; false if none moved.
fn reassign_failed(fanout: &Fanout, page: &[MergedHit], pending: &mut [Pending]) -> bool {
    let ranking = fanout.replicas.ranking();
    let mut moved = false;
    for (i, p) in pending.iter_mut().enumerate() {
        if p.doc.is_some() || p.last_error.is_none() {
            continue;
        }
        let tried = p.tried.clone();
        let plan = fanout
            .replicas
            .plan(&ranking, [page[i].shard], |_, node| tried.contains(&node));
        if let Some((&node, _)) = plan.by_node.iter().next() {
            fanout.metrics.retries.inc();
            p.node = node;
            p.tried.push(node);
            p.last_error = None;
            moved = true;
        }
    }
    moved
}
