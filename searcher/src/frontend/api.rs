//! The public HTTP API (axum 0.8 + tower layers): `/search`, `/suggest`, `/cluster`,
//! `/healthz`, `/metrics` and the search page at `/`.
//!
//! Every parameter is validated before any work is done; a bad one is a 400 with a JSON
//! `{"error": "..."}` saying what is wrong. `/search` takes its parameters from the URL
//! (GET) or from a JSON object (POST); hyper itself answers a URI over 64 KiB with a bare
//! 414 before any handler runs, so only a POST can get a message for such a query. A load-shedding concurrency limit answers 503
//! at once when the front-end is saturated instead of queueing without bound.
//!
//! The page may run its searches on another coordinator than the one that served it (when
//! that one stops answering), so a `GET` of `/search`, `/suggest` and `/cluster` carries
//! `Access-Control-Allow-Origin: *` ([`CROSS_ORIGIN_PATHS`]): these answers are public and
//! read-only and the page sends no credentials. Nothing else is opened to other origins:
//! no credentials, no preflight (so no cross-origin `POST`), no other route.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceBuilder;

use crate::frontend::metrics::Metrics;
use crate::frontend::nodes::NodeHandle;
use crate::frontend::replica::ReplicaSet;
use crate::frontend::root::{Root, SearchError};
use crate::frontend::suggest;
use crate::model::{
    ClusterView, CoordinatorView, ErrorBody, HealStep, NodeHealth, NodeView, ReplicaHealth,
    ReplicaView, SearchParams, SearchType, ShardView, DEFAULT_SIZE,
};
use shard_proto::query::Syntax;
use shard_proto::wire::HealState;
use shard_proto::{QueryLimits, ShardId};

/// Public requests served at once before new ones are shed with 503.
const MAX_CONCURRENT_REQUESTS: usize = 1024;

const PAGE: &str = include_str!("page.html");

/// The routes another origin's page may read with a plain `GET`.
pub const CROSS_ORIGIN_PATHS: [&str; 3] = ["/search", "/suggest", "/cluster"];

/// What the handlers share.
pub struct AppState {
    pub root: Root,
    pub metrics: Arc<Metrics>,
    /// Every coordinating process's public address (`/cluster`), as the cluster file
    /// lists them now.
    pub coordinators: Arc<parking_lot::RwLock<Vec<CoordinatorView>>>,
}

/// Which routes a router serves: the public ones, the operator's (`/cluster`, `/metrics`)
/// or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    All,
    Public,
    Admin,
}

/// The front-end's routes and layers.
pub fn router(state: Arc<AppState>) -> Router {
    routes(state, Routes::All)
}

/// The routes of `which`, with the front-end's layers.
pub fn routes(state: Arc<AppState>, which: Routes) -> Router {
    let mut router = Router::new().route("/healthz", get(|| async { "ok" }));
    if which != Routes::Admin {
        router = router
            .route("/", get(page))
            .route("/search", get(search).post(search_post))
            .route("/suggest", get(suggest_route));
    }
    if which != Routes::Public {
        router = router
            .route("/cluster", get(cluster))
            .route("/metrics", get(metrics));
    }
    router
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route".into()) })
        .layer(axum::middleware::from_fn(allow_cross_origin_reads))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|e: tower::BoxError| async move {
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("front-end overloaded: {e}"),
                    )
                }))
                .load_shed()
                .concurrency_limit(MAX_CONCURRENT_REQUESTS),
        )
        .with_state(state)
}

/// Marks a `GET` answer of [`CROSS_ORIGIN_PATHS`] readable by pages of any origin.
async fn allow_cross_origin_reads(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let readable = request.method() == axum::http::Method::GET
        && CROSS_ORIGIN_PATHS.contains(&request.uri().path());
    let mut response = next.run(request).await;
    if readable {
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        );
    }
    response
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `/search` parameters after validation.
#[derive(Debug, PartialEq)]
pub struct Validated {
    pub params: SearchParams,
    pub allow_partial: bool,
}

/// Checks the query string of `/search` (the query text itself is checked against the
/// limits by [`Root::search`] before it parses it).
pub fn validate(raw: &HashMap<String, String>, limits: &QueryLimits) -> Result<Validated, String> {
    let q = raw.get("q").map(String::as_str).unwrap_or("");
    let number = |name: &str, default: usize| -> Result<usize, String> {
        match raw.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("{name} must be a non-negative integer, got {text:?}")),
        }
    };
    let size = number("size", DEFAULT_SIZE)?;
    let from = number("from", 0)?;
    let allow_partial = match raw.get("allow_partial").map(|s| s.trim()) {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => {
            return Err(format!(
                "allow_partial must be true or false, got {other:?}"
            ))
        }
    };
    let syntax = match raw.get("syntax").map(|s| s.trim()) {
        None | Some("") => Syntax::Lenient,
        Some(text) => Syntax::from_param(text)
            .ok_or_else(|| format!("syntax must be lenient or strict, got {text:?}"))?,
    };
    let search_type = match raw.get("search_type").map(|s| s.trim()) {
        None | Some("") => None,
        Some(text) => Some(SearchType::parse(text).ok_or_else(|| {
            format!("search_type must be auto, query_then_fetch or query_and_fetch, got {text:?}")
        })?),
    };
    let generation = match raw.get("generation").map(|s| s.trim()) {
        None | Some("") => None,
        Some(id) => {
            shard_proto::generation::check_id(id).map_err(|e| format!("generation: {e}"))?;
            Some(id.to_string())
        }
    };
    let params = SearchParams {
        q: q.to_string(),
        syntax,
        from,
        size,
        search_type,
        generation,
    };
    params.check_within(limits)?;
    Ok(Validated {
        params,
        allow_partial,
    })
}

async fn search(
    State(state): State<Arc<AppState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let raw = query
        .map(|Query(raw)| raw)
        .map_err(|r| (r.status(), r.body_text()));
    observed_search(&state, raw).await
}

/// `POST /search` with the same parameters as a JSON object (`{"q": "...", "size": 10}`),
/// as Elasticsearch's `POST _search`: for queries too long for a URL (hyper refuses a URI
/// over 64 KiB with a bare 414 before any handler runs; a body gets a JSON message).
async fn search_post(
    State(state): State<Arc<AppState>>,
    body: Result<Json<serde_json::Map<String, serde_json::Value>>, JsonRejection>,
) -> Response {
    let raw = match body {
        Ok(Json(object)) => Ok(object
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => (name, text),
                other => (name, other.to_string()),
            })
            .collect()),
        // 415 without a JSON content type, 413 over the body limit, 400 for bad JSON.
        Err(rejection) => Err((rejection.status(), rejection.body_text())),
    };
    observed_search(&state, raw).await
}

async fn observed_search(
    state: &AppState,
    raw: Result<HashMap<String, String>, (StatusCode, String)>,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = search_outcome(state, raw).await;
    state
        .metrics
        .observe_request(outcome, started.elapsed().as_secs_f64());
    response
}

async fn search_outcome(
    state: &AppState,
    raw: Result<HashMap<String, String>, (StatusCode, String)>,
) -> (&'static str, Response) {
    let raw = match raw {
        Ok(raw) => raw,
        Err((status, message)) => return ("bad_request", error(status, message)),
    };
    let validated = match validate(&raw, state.root.limits()) {
        Ok(v) => v,
        Err(message) => return ("bad_request", error(StatusCode::BAD_REQUEST, message)),
    };
    let answer = match state.root.search(&validated.params).await {
        Ok(answer) => answer,
        Err(SearchError::BadQuery(message)) => {
            return (
                "bad_request",
                error(StatusCode::BAD_REQUEST, format!("bad query: {message}")),
            )
        }
    };
    if !answer.partial {
        return ("ok", Json(answer).into_response());
    }
    state.metrics.partial_answers.inc();
    if validated.allow_partial {
        ("partial", Json(answer).into_response())
    } else {
        (
            "unavailable",
            (StatusCode::SERVICE_UNAVAILABLE, Json(answer)).into_response(),
        )
    }
}

/// `GET /suggest?q=prefix&size=8` (see [`crate::frontend::suggest`]): 200 with the
/// suggestions (none for an empty prefix; `partial` when a shard could not answer), 400
/// for a prefix or size over the limits.
async fn suggest_route(
    State(state): State<Arc<AppState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let validated = match query {
        Ok(Query(raw)) => suggest::validate(
            raw.get("q").map(String::as_str),
            raw.get("size").map(String::as_str),
        )
        .map_err(|message| error(StatusCode::BAD_REQUEST, message)),
        Err(rejection) => Err(error(rejection.status(), rejection.body_text())),
    };
    let (outcome, response) = match validated {
        Err(response) => ("bad_request", response),
        Ok(params) => {
            let answer = suggest::suggest(&state.root, &params).await;
            let outcome = if answer.partial { "partial" } else { "ok" };
            (outcome, Json(answer).into_response())
        }
    };
    state
        .metrics
        .observe_suggest(outcome, started.elapsed().as_secs_f64());
    response
}

async fn cluster(State(state): State<Arc<AppState>>) -> Json<ClusterView> {
    let mut view = cluster_view(&state.root);
    view.coordinators = state.coordinators.read().clone();
    Json(view)
}

/// What `/cluster` shows: every node's health and every shard's replicas.
pub fn cluster_view(root: &Root) -> ClusterView {
    let replicas = root.fanout.replicas.current();
    let nodes = replicas
        .members()
        .map(|i| &replicas.nodes[i])
        .map(|node| {
            let target: Vec<ShardId> = root
                .shards()
                .iter()
                .copied()
                .filter(|s| replicas.targeted(s, node.index))
                .collect();
            NodeView {
                id: node.id.clone(),
                addr: node.addr.to_string(),
                state: node.state(),
                last_error: node.last_error(),
                latency_ms: node.latency_ms(),
                in_flight: node.in_flight(),
                pid: node.pid(),
                uptime_ms: node.uptime_ms(),
                replicas: names(node.serving().unwrap_or_else(|| target.clone())),
                target: names(target),
            }
        })
        .collect();
    let shards = root
        .shard_docs
        .iter()
        .map(|(shard, docs)| shard_view(root, &replicas, shard, *docs))
        .collect();
    ClusterView {
        nodes,
        shards,
        docs_total: root.shard_docs.values().sum(),
        coordinators: Vec::new(),
    }
}

fn names(shards: Vec<ShardId>) -> Vec<String> {
    shards.iter().map(ShardId::to_string).collect()
}

/// One shard: its target, who serves it, and every copy's state.
fn shard_view(root: &Root, replicas: &ReplicaSet, shard: &ShardId, docs: u64) -> ShardView {
    let holders = replicas.holders(shard);
    let views: Vec<ReplicaView> = holders
        .iter()
        .map(|&i| replica_view(&replicas.nodes[i], shard, replicas.targeted(shard, i)))
        .collect();
    let node_ids = |wanted: &dyn Fn(&ReplicaView) -> bool| -> Vec<String> {
        views
            .iter()
            .filter(|v| wanted(v))
            .map(|v| v.node.clone())
            .collect()
    };
    let target = node_ids(&|v| v.target);
    let serving = node_ids(&|v| v.state == ReplicaHealth::Serving);
    let healing: Vec<HealStep> = replicas
        .members()
        .map(|i| &replicas.nodes[i])
        .filter_map(|node| node.healing(shard).map(|state| heal_step(&node.id, state)))
        .collect();
    let under_replicated =
        (serving.len() < target.len()).then(|| explain(&views, &serving, &target, &healing));
    ShardView {
        id: shard.to_string(),
        docs,
        target,
        serving,
        healing,
        under_replicated,
        replicas: views,
        last_served_by: root
            .last_served_by(shard)
            .map(|i| replicas.nodes[i].id.clone()),
    }
}

/// The public form of a node's healing report.
fn heal_step(node: &str, state: HealState) -> HealStep {
    let node = node.to_string();
    match state {
        HealState::Waiting {
            heal_in_millis,
            lost,
        } => HealStep::Waiting {
            node,
            heal_in_ms: heal_in_millis,
            lost,
        },
        HealState::Queued => HealStep::Queued { node },
        HealState::Copying {
            copied_bytes,
            total_bytes,
        } => HealStep::Copying {
            node,
            copied_bytes,
            total_bytes,
        },
        HealState::Failing {
            error,
            attempts,
            retry_in_millis,
        } => HealStep::Failing {
            node,
            error,
            attempts,
            retry_in_ms: retry_in_millis,
        },
        HealState::Surplus { drop_in_millis } => HealStep::Surplus {
            node,
            drop_in_ms: drop_in_millis,
        },
    }
}

/// Why a shard has fewer serving copies than its target: the copies missing, then what
/// the nodes report doing about it (or that none reports anything yet).
fn explain(
    views: &[ReplicaView],
    serving: &[String],
    target: &[String],
    healing: &[HealStep],
) -> String {
    let missing: Vec<String> = views
        .iter()
        .filter(|v| v.target && v.state != ReplicaHealth::Serving)
        .map(|v| format!("{} {}", v.node, replica_health_word(v.state)))
        .collect();
    let work: Vec<String> = healing
        .iter()
        .filter(|s| !matches!(s, HealStep::Surplus { .. }))
        .map(HealStep::describe)
        .collect();
    let work = match work.is_empty() {
        true => "no node reports healing it yet".to_string(),
        false => work.join("; "),
    };
    format!(
        "{} of {} copies serving ({}): {work}",
        serving.len(),
        target.len(),
        missing.join(", ")
    )
}

fn replica_health_word(state: ReplicaHealth) -> &'static str {
    match state {
        ReplicaHealth::Serving => "serving",
        ReplicaHealth::Down => "down",
        ReplicaHealth::Failed => "failed",
        ReplicaHealth::Missing => "missing",
    }
}

fn replica_view(node: &NodeHandle, shard: &ShardId, target: bool) -> ReplicaView {
    let reason = node.replica_failure(shard);
    let state = if reason.is_some() {
        ReplicaHealth::Failed
    } else if node.state() == NodeHealth::Down {
        ReplicaHealth::Down
    } else if node.holds(shard, target) {
        ReplicaHealth::Serving
    } else {
        ReplicaHealth::Missing
    };
    let bytes = match state {
        ReplicaHealth::Serving => node.replica_bytes(shard),
        _ => None,
    };
    ReplicaView {
        node: node.id.clone(),
        state,
        target,
        reason,
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_under_replicated_shard_is_explained_by_what_the_nodes_report() {
        let view = |node: &str, state, target| ReplicaView {
            node: node.into(),
            state,
            target,
            reason: None,
            bytes: None,
        };
        let views = [
            view("n1", ReplicaHealth::Serving, true),
            view("n2", ReplicaHealth::Down, true),
        ];
        let (serving, target) = (vec!["n1".to_string()], vec!["n1".into(), "n2".into()]);
        let waiting = HealStep::Waiting {
            node: "n3".into(),
            heal_in_ms: 95_000,
            lost: vec!["n2".into()],
        };
        let text = explain(&views, &serving, &target, &[waiting]);
        assert_eq!(
            text,
            "1 of 2 copies serving (n2 down): waiting for grace: n2 unreachable, n3 takes over in 95 s"
        );
        let copying = heal_step(
            "n3",
            HealState::Copying {
                copied_bytes: 400_000,
                total_bytes: 1_100_000,
            },
        );
        let text = explain(&views, &serving, &target, &[copying]);
        assert!(text.ends_with("copying to n3: 0.4 of 1.1 MB"), "{text}");
        let failing = heal_step(
            "n3",
            HealState::Failing {
                error: "disk full".into(),
                attempts: 3,
                retry_in_millis: 4_000,
            },
        );
        let text = explain(&views, &serving, &target, &[failing]);
        assert!(
            text.contains("failing on n3 (3 attempts") && text.contains("disk full"),
            "{text}"
        );
        let nothing = explain(&views, &serving, &target, &[]);
        assert!(
            nothing.ends_with("no node reports healing it yet"),
            "{nothing}"
        );
    }

    fn raw(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepts_defaults_and_explicit_values() {
        let v = validate(&raw(&[("q", "albedo")]), &QueryLimits::default()).unwrap();
        assert_eq!(
            (v.params.from, v.params.size, v.allow_partial),
            (0, 10, true)
        );
        let v = validate(
            &raw(&[
                ("q", "a"),
                ("from", "20"),
                ("size", "100"),
                ("allow_partial", "false"),
                ("search_type", "query_and_fetch"),
            ]),
            &QueryLimits::default(),
        )
        .unwrap();
        assert_eq!(
            (v.params.from, v.params.size, v.allow_partial),
            (20, 100, false)
        );
        assert_eq!(v.params.search_type, Some(SearchType::QueryAndFetch));
        assert_eq!(v.params.syntax, Syntax::Lenient);
        let v = validate(
            &raw(&[("q", "a"), ("syntax", "strict")]),
            &QueryLimits::default(),
        )
        .unwrap();
        assert_eq!(v.params.syntax, Syntax::Strict);
    }

    #[test]
    fn rejects_bad_parameters_with_a_message() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "missing query"),
            (&[("q", "  ")], "missing query"),
            (&[("q", "a"), ("size", "101")], "size must be at most 100"),
            (&[("q", "a"), ("size", "ten")], "size must be"),
            (&[("q", "a"), ("from", "-1")], "from must be"),
            (
                &[("q", "a"), ("from", "9995"), ("size", "10")],
                "from + size",
            ),
            (
                &[("q", "a"), ("from", "18446744073709551615"), ("size", "10")],
                "from + size",
            ),
            (&[("q", "a"), ("allow_partial", "maybe")], "allow_partial"),
            (&[("q", "a"), ("search_type", "dfs")], "search_type must be"),
            (&[("q", "a"), ("syntax", "lucene")], "syntax must be"),
        ];
        for (pairs, expected) in cases {
            let message = validate(&raw(pairs), &QueryLimits::default()).unwrap_err();
            assert!(message.contains(expected), "{pairs:?}: {message}");
        }
    }
}
