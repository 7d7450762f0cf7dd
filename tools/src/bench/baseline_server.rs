//! The single-process HTTP baseline (`wikisearch baseline serve`): one tantivy index behind
//! a minimal `GET /search?q=&size=&from=` endpoint answering the front-end's JSON shape —
//! what a user would run on one machine instead of a cluster.
//!
//! Searches run inline on the runtime's worker threads (one per core): a sub-millisecond
//! CPU-bound search gains nothing from a hop to a blocking pool, and a thread-per-core
//! server is the strongest simple baseline to compare the cluster with.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use searcher::model::{ErrorBody, SearchAnswer, ShardsSummary};
use serde::Deserialize;

use super::single_index::{SearchError, SingleIndex};
use crate::error::{Error, Result};

/// Query parameters of `/search`; numbers are parsed by hand for clear messages.
#[derive(Debug, Default, Deserialize)]
struct SearchParams {
    q: Option<String>,
    size: Option<String>,
    from: Option<String>,
}

/// The baseline's routes: `/search` and `/healthz`.
pub fn router(index: Arc<SingleIndex>) -> Router {
    Router::new()
        .route("/search", get(search))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(index)
}

/// Serves `index` on `listener` until `shutdown` completes, then finishes in-flight
/// requests.
pub async fn serve(
    index: Arc<SingleIndex>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(index))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Other(format!("baseline server failed: {e}")))
}

async fn search(
    State(index): State<Arc<SingleIndex>>,
    params: std::result::Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let query = params.q.unwrap_or_default();
    let size = match parse_number("size", params.size.as_deref(), 10) {
        Ok(size) => size,
        Err(message) => return bad_request(message),
    };
    let from = match parse_number("from", params.from.as_deref(), 0) {
        Ok(from) => from,
        Err(message) => return bad_request(message),
    };
    match index.search(&query, from, size) {
        Ok(page) => Json(SearchAnswer {
            query,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
            total: page.total,
            hits: page.hits,
            shards: ShardsSummary::complete(1),
            partial: false,
            coverage: 1.0,
            generation: shard_proto::generation::BASE.into(),
        })
        .into_response(),
        Err(SearchError::BadRequest(message)) => bad_request(message),
        Err(SearchError::Internal(message)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(ErrorBody { error: message }),
        )
            .into_response(),
    }
}

fn parse_number(
    name: &str,
    value: Option<&str>,
    default: usize,
) -> std::result::Result<usize, String> {
    match value {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("{name} must be a non-negative integer, not {text:?}")),
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(ErrorBody { error: message })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::single_index::tests::write_test_index;

    async fn get(addr: std::net::SocketAddr, path_and_query: &str) -> (u16, serde_json::Value) {
        use http_body_util::BodyExt;
        let client = crate::bench::loadgen::http_client(1);
        let uri = format!("http://{addr}{path_and_query}").parse().unwrap();
        let response = client.get(uri).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn answers_the_front_end_shape_and_refuses_bad_requests() {
        let tmp = tempfile::tempdir().unwrap();
        write_test_index(tmp.path());
        let index = Arc::new(SingleIndex::open(tmp.path()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(index, listener, async {
            let _ = stopped.await;
        }));

        let (status, body) = get(addr, "/search?q=observatory&size=1").await;
        assert_eq!(status, 200);
        let answer: SearchAnswer = serde_json::from_value(body).unwrap();
        assert_eq!((answer.total, answer.partial), (2, false));
        assert_eq!(answer.hits.len(), 1);
        assert!(
            answer.hits[0].snippet.contains("<b>"),
            "{:?}",
            answer.hits[0]
        );

        for bad in [
            "/search",
            "/search?q=title:(",
            "/search?q=a&size=x",
            "/search?q=a&size=1000",
        ] {
            let (status, body) = get(addr, bad).await;
            assert_eq!(status, 400, "{bad}");
            let error: ErrorBody = serde_json::from_value(body).unwrap();
            assert!(!error.error.is_empty(), "{bad}");
        }
        let (status, _) = get(addr, "/search?q=observatory").await;
        assert_eq!(status, 200, "still serving after bad requests");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
