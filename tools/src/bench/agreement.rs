//! Do the front-end and the single index serve the same documents? Before comparing their
//! speed, the comparison asks both for the top 10 of the first queries and checks that
//! the rankings agree: the same ids at the same ranks, scores equal within 1e-4, where
//! hits of equal score may come in either order (each engine breaks ties by its own doc
//! addresses, which differ between one index and six shards) and the hits tied at the
//! last rank may be any of the documents with that score (which of them make the cut is
//! the same tie-break).

use anyhow::Context;
use http_body_util::BodyExt;
use searcher::model::SearchAnswer;
use serde::Serialize;

use super::loadgen::{self, HttpClient};
use super::queries::BenchQuery;

/// Scores closer than this are equal (the exactness the issue asks of the cluster).
const SCORE_TOLERANCE: f64 = 1e-4;

/// How the two rankings compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Agreement {
    /// Queries asked to both.
    pub compared: usize,
    /// Of those, queries with at least one hit on either side.
    pub with_hits: usize,
    /// Of those, queries whose rankings agree.
    pub identical: usize,
}

/// A ranked hit: page id and score.
pub type RankedHit = (u64, f64);

/// Compares the top 10 of the first `limit` queries from both servers; disagreements are
/// printed on stderr.
pub async fn compare_top10(
    frontend: &str,
    single: &str,
    queries: &[BenchQuery],
    limit: usize,
) -> anyhow::Result<Agreement> {
    let client = loadgen::http_client(1);
    let mut agreement = Agreement::default();
    for query in queries.iter().take(limit) {
        let cluster = top10(&client, frontend, &query.text).await?;
        let one_index = top10(&client, single, &query.text).await?;
        agreement.compared += 1;
        if cluster.is_empty() && one_index.is_empty() {
            continue;
        }
        agreement.with_hits += 1;
        if same_ranking(&cluster, &one_index) {
            agreement.identical += 1;
        } else {
            eprintln!(
                "top-10 differs for {:?}:\n  front-end    {cluster:?}\n  single index {one_index:?}",
                query.text
            );
        }
    }
    Ok(agreement)
}

async fn top10(client: &HttpClient, base: &str, query: &str) -> anyhow::Result<Vec<RankedHit>> {
    let uri: http::Uri =
        format!("{base}/search?q={}&size=10", loadgen::percent_encode(query)).parse()?;
    let response = client
        .get(uri)
        .await
        .with_context(|| format!("GET {base}/search"))?;
    let body = response.into_body().collect().await?.to_bytes();
    let page: SearchAnswer = serde_json::from_slice(&body)
        .with_context(|| format!("{base}: the answer to {query:?} is not a search answer"))?;
    Ok(page
        .hits
        .iter()
        .map(|hit| (hit.id, f64::from(hit.score)))
        .collect())
}

/// Same scores rank by rank, and the same ids within each run of equal scores.
pub fn same_ranking(a: &[RankedHit], b: &[RankedHit]) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= SCORE_TOLERANCE * x.abs().max(1.0);
    if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| !close(x.1, y.1)) {
        return false;
    }
    canonical(a) == canonical(b)
}

/// Ids with each run of equal scores sorted, so tie order does not matter, and without
/// the run tied at the last rank, whose members depend on the tie-break.
fn canonical(hits: &[RankedHit]) -> Vec<u64> {
    let mut ids = Vec::with_capacity(hits.len());
    let mut start = 0;
    while start < hits.len() {
        let score = hits[start].1;
        let end = hits[start..]
            .iter()
            .position(|h| (h.1 - score).abs() > SCORE_TOLERANCE * score.abs().max(1.0))
            .map_or(hits.len(), |n| start + n);
        if end == hits.len() {
            break;
        }
        let mut run: Vec<u64> = hits[start..end].iter().map(|h| h.0).collect();
        run.sort_unstable();
        ids.extend(run);
        start = end;
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_may_come_in_any_order_but_nothing_else_may_differ() {
        let single = [(1, 9.0), (2, 8.5), (3, 8.5), (4, 7.0)];
        let tie_swapped = [(1, 9.0), (3, 8.5), (2, 8.500_01), (4, 7.0)];
        assert!(same_ranking(&single, &tie_swapped));
        let rank_swapped = [(2, 9.0), (1, 8.5), (3, 8.5), (4, 7.0)];
        assert!(!same_ranking(&single, &rank_swapped));
        let other_doc = [(1, 9.0), (2, 8.5), (5, 8.5), (4, 7.0)];
        assert!(!same_ranking(&single, &other_doc));
        let other_score = [(1, 9.0), (2, 8.5), (3, 8.4), (4, 7.0)];
        assert!(!same_ranking(&single, &other_score));
        assert!(!same_ranking(&single, &single[..3]));
        // Which of the documents tied at the last rank made the cut is a tie-break too.
        let cut_tie = [(1, 9.0), (2, 8.5), (3, 8.5), (9, 7.0)];
        assert!(same_ranking(&single, &cut_tie));
        let cut_tie_run = [(1, 9.0), (7, 8.5), (8, 8.5), (4, 7.0)];
        assert!(!same_ranking(&single, &cut_tie_run));
        assert!(same_ranking(&[], &[]));
    }
}
