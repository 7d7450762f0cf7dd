//! `GET /suggest?q=prefix&size=8`: the best article titles (and redirect titles, shown
//! with their target) starting with what the person has typed so far, most linked first.
//!
//! One [`SuggestRequest`] per node through the same fan-out as a search
//! ([`Fanout::scatter`]: replica choice, retries on another replica, hedging past a node's
//! p95, the deadline), so suggestions survive what a search survives. Each shard answers
//! its best `size`; [`merge`] keeps the best `size` of all in [`Suggestion::merge_order`],
//! which every node ranks by too, so the list does not depend on the sharding. A shard
//! that could not answer makes the answer `partial`, never an error: a suggestion box
//! shows what it has. A prefix with nothing searchable in it (empty, blanks,
//! punctuation) is answered at once with no suggestions, without asking any node.

use std::sync::Arc;

use shard_proto::wire::{SuggestRequest, Suggestion};
use shard_proto::ShardId;
use tokio::time::Instant;

use crate::frontend::nodes::{AttemptError, RpcCall, RpcReply};
use crate::frontend::root::Root;
use crate::frontend::scatter::{Fanout, Outcomes, Phase};
use crate::model::{
    ShardFailure, ShardsSummary, SuggestAnswer, SuggestParams, SuggestedTitle, DEFAULT_SUGGEST_SIZE,
};

/// The suggestion phase: one request per node for the shards planned on it.
struct SuggestPhase {
    prefix: String,
    size: u32,
    generation: Option<String>,
}

impl Phase for SuggestPhase {
    type Item = Vec<Suggestion>;

    fn generation(&self) -> Option<&str> {
        self.generation.as_deref()
    }

    fn call(&self, shards: Vec<ShardId>) -> RpcCall {
        RpcCall::Suggest(Arc::new(SuggestRequest {
            prefix: self.prefix.clone(),
            shards,
            size: self.size,
            generation: self.generation.clone(),
        }))
    }

    fn split(
        &self,
        _shards: &[ShardId],
        reply: RpcReply,
    ) -> Result<Outcomes<Vec<Suggestion>>, AttemptError> {
        match reply {
            RpcReply::Suggest(answer) => Ok(answer.shards),
            _ => Err(AttemptError::Decode("expected suggestions".into())),
        }
    }
}

/// `/suggest`'s parameters from its query string: `q` (absent: empty) and `size`.
pub fn validate(q: Option<&str>, size: Option<&str>) -> Result<SuggestParams, String> {
    let size = match size.map(str::trim) {
        None | Some("") => DEFAULT_SUGGEST_SIZE,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| format!("size must be a non-negative integer, got {text:?}"))?,
    };
    let params = SuggestParams {
        q: q.unwrap_or("").to_string(),
        size,
    };
    params.check()?;
    Ok(params)
}

/// The best `size` suggestions of all shards' answers, in [`Suggestion::merge_order`],
/// each page once (a page lives in one shard; a node answering twice is not trusted).
pub fn merge(answers: impl IntoIterator<Item = Vec<Suggestion>>, size: usize) -> Vec<Suggestion> {
    let mut all: Vec<Suggestion> = answers.into_iter().flatten().collect();
    all.sort_by(Suggestion::merge_order);
    let mut seen = std::collections::HashSet::new();
    all.retain(|s| seen.insert(s.id));
    all.truncate(size);
    all
}

/// Runs one suggestion fan-out over every shard of the cluster.
pub async fn suggest(root: &Root, params: &SuggestParams) -> SuggestAnswer {
    let deadline = Instant::now() + root.deadline();
    let table = root.generations.live();
    suggest_in(
        &root.fanout,
        &table.shards,
        table.wire_id(),
        params,
        deadline,
    )
    .await
}

/// Runs one suggestion fan-out over `shards` through `fanout`, until `deadline`.
pub async fn suggest_on(
    fanout: &Fanout,
    shards: &[ShardId],
    params: &SuggestParams,
    deadline: Instant,
) -> SuggestAnswer {
    suggest_in(fanout, shards, None, params, deadline).await
}

/// [`suggest_on`] in index generation `generation` (`None`: the base one).
async fn suggest_in(
    fanout: &Fanout,
    shards: &[ShardId],
    generation: Option<String>,
    params: &SuggestParams,
    deadline: Instant,
) -> SuggestAnswer {
    let started = Instant::now();
    if shard_proto::prefix_key(&params.q).is_empty() || params.size == 0 {
        return answer(
            params,
            started,
            Vec::new(),
            ShardsSummary::complete(shards.len()),
        );
    }
    // A suggestion is a request like a search: it earns its share of hedges.
    fanout.hedge_budget.deposit();
    let phase = Arc::new(SuggestPhase {
        prefix: params.q.clone(),
        size: params.size as u32,
        generation,
    });
    let gathered = fanout.scatter(&phase, shards, deadline).await;
    let summary = ShardsSummary {
        total: shards.len(),
        successful: gathered.answers.len(),
        failed: gathered.failures.len(),
        failures: gathered
            .failures
            .iter()
            .map(|(shard, reason)| ShardFailure {
                shard: shard.to_string(),
                reason: reason.clone(),
            })
            .collect(),
    };
    let answers = gathered.answers.into_values().map(|a| a.item);
    answer(params, started, merge(answers, params.size), summary)
}

fn answer(
    params: &SuggestParams,
    started: Instant,
    merged: Vec<Suggestion>,
    shards: ShardsSummary,
) -> SuggestAnswer {
    SuggestAnswer {
        prefix: params.q.clone(),
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        suggestions: merged
            .into_iter()
            .map(|s| SuggestedTitle {
                id: s.id,
                title: s.title,
                redirect: s.redirect,
                url: s.url,
                links: s.links,
            })
            .collect(),
        partial: shards.failed > 0,
        shards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(id: u64, key: &str, links: u64) -> Suggestion {
        Suggestion {
            id,
            title: key.to_uppercase(),
            redirect: None,
            url: String::new(),
            links,
            key: key.to_string(),
        }
    }

    fn ids(merged: &[Suggestion]) -> Vec<u64> {
        merged.iter().map(|s| s.id).collect()
    }

    #[test]
    fn merge_keeps_the_best_of_all_shards_in_one_order() {
        let a = vec![suggestion(1, "new york", 900), suggestion(2, "newark", 120)];
        let b = vec![
            suggestion(3, "new zealand", 500),
            suggestion(4, "newton", 120),
        ];
        let c = vec![suggestion(5, "new amsterdam", 40)];
        let merged = merge([a.clone(), b.clone(), c.clone()], 4);
        // Links first; the tie at 120 by key ("newark" < "newton").
        assert_eq!(ids(&merged), [1, 3, 2, 4]);
        // The shards' order does not matter.
        assert_eq!(merge([c.clone(), b.clone(), a.clone()], 4), merged);
        // Equal links and keys: by page id.
        let twins = merge(
            [vec![suggestion(9, "x", 1)], vec![suggestion(8, "x", 1)]],
            5,
        );
        assert_eq!(ids(&twins), [8, 9]);
        assert!(merge([a, b, c], 0).is_empty());
    }

    #[test]
    fn merge_lists_a_page_once() {
        let twice = vec![suggestion(1, "new york", 900), suggestion(1, "nyc", 900)];
        assert_eq!(
            ids(&merge([twice, vec![suggestion(2, "ny", 3)]], 5)),
            [1, 2]
        );
    }

    #[test]
    fn parameters_are_checked_with_a_message() {
        let ok = validate(Some("ana"), None).unwrap();
        assert_eq!((ok.q.as_str(), ok.size), ("ana", DEFAULT_SUGGEST_SIZE));
        assert_eq!(validate(None, Some(" 3 ")).unwrap().q, "");
        assert!(validate(Some("a"), Some("21"))
            .unwrap_err()
            .contains("at most 20"));
        assert!(validate(Some("a"), Some("x"))
            .unwrap_err()
            .contains("size must"));
        let long = "a".repeat(1025);
        assert!(validate(Some(&long), None)
            .unwrap_err()
            .contains("at most 1024"));
    }
}
