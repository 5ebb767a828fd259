//! The admin API (axum), on its own listener: the routes and their handlers.
//!
//! - Open to whoever reaches the admin address: the dashboard's page and assets
//!   (`dashboard`), `/metrics` (encoded by `control::metrics`) and `/ready`.
//! - `/api/v1/*`, behind the bearer token whenever one is configured (`auth`, a
//!   middleware over these routes): `status` (listeners, pools, backends), `alerts`
//!   (incidents open and recent), `journal` and `traffic` (by time range), `history`
//!   (the dashboard's fifteen minutes), `config` (the text in force, token redacted)
//!   and `POST reload` (through `Control`, with the reload guard's overrides).
//!
//! Every answer under `/api/` that refuses a call is JSON (`json_errors`), axum's own
//! refusals included. A non-loopback admin address without a token is refused when the
//! configuration is validated. The listener keeps serving while tango drains on
//! shutdown, so `/ready` can say 503.

mod auth;
mod dashboard;

use auth::Access;
pub(crate) use auth::{resolve as resolve_token, Auth};

use crate::control::reload::{Control, ReloadSource};
use crate::proxy::conn::Shutdown;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    control: Arc<Control>,
    registry: Arc<prometheus_client::registry::Registry>,
    auth: Arc<Auth>,
    draining: tokio::sync::watch::Receiver<bool>,
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    control: Arc<Control>,
    shutdown: Shutdown,
    auth: Auth,
) {
    let registry = Arc::new(crate::control::metrics::registry(
        control.rt.clone(),
        control.reloads.clone(),
        control.watch.clone(),
    ));
    let state = AppState {
        control,
        registry,
        auth: Arc::new(auth),
        draining: shutdown.subscribe(),
    };
    let api = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/journal", get(journal))
        .route("/api/v1/traffic", get(traffic))
        .route("/api/v1/history", get(history))
        .route("/api/v1/config", get(live_config))
        .route("/api/v1/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .merge(dashboard::assets())
        .merge(api)
        .layer(middleware::from_fn(json_errors))
        .with_state(state);
    // No graceful shutdown: the admin API answers until the process exits, so `/ready`
    // reports the drain instead of refusing connections.
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}

/// Every `/api/v1/*` request: note a reload that touched the token, then check it (two
/// `Authorization` fields are refused with 400, with a token or without).
async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let snap = s.control.rt.current();
    s.auth.observe(snap.generation, &snap.config.admin);
    drop(snap);
    match s.auth.check(req.headers()) {
        Access::Allowed => next.run(req).await,
        Access::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "a bearer token is required"})),
        )
            .into_response(),
        Access::TwoCredentials => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "more than one Authorization header: send the bearer token in one"})),
        )
            .into_response(),
    }
}

/// Every refusal under `/api/` as JSON, `{"error": "..."}` like the API's own: axum's
/// (an unknown path, a method the path does not take, a query or a body it cannot read,
/// a body over its limit) come as plain text or empty, which a client reading the
/// error from JSON would report as nothing, or as garbage.
async fn json_errors(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let resp = next.run(req).await;
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let error = match text.is_empty() {
        true => status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase(),
        false => text,
    };
    let mut out = (status, Json(json!({ "error": error }))).into_response();
    // What the refusal says beside its body: the methods the path takes, the scheme.
    for name in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// 200 while serving (the listeners are bound before the admin API starts), 503 once
/// shutdown has begun and connections are draining.
async fn ready(State(s): State<AppState>) -> Response {
    if *s.draining.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

/// OpenMetrics or the Prometheus text format, as the scraper's `Accept` asks.
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::control::metrics::Exposition::negotiate(accept);
    (
        [(header::CONTENT_TYPE, format.content_type())],
        crate::control::metrics::render(&s.registry, format),
    )
        .into_response()
}

/// `POST /api/v1/reload[?force=true][&allow_shift=POOL[,POOL]]`, or the same as a JSON
/// body `{"force": true, "allow_shift": ["POOL"]}`. 200 applied, 409 refused by the
/// reload guard, 422 invalid, 503 during the drain (with an `error` saying tango is
/// shutting down); the body has the findings, the predicted shares and, when refused,
/// the reasons and how to proceed. Authorized by `require_token`.
async fn reload(
    State(s): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> Response {
    let overrides = match crate::control::guard::reload_overrides(&query, &body) {
        Ok(o) => o,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    };
    let out = s.control.reload(ReloadSource::Api, overrides).await;
    let snap = s.control.rt.current();
    s.auth.observe(snap.generation, &snap.config.admin);
    let status = StatusCode::from_u16(out.http_status()).unwrap_or(StatusCode::OK);
    (status, Json(out.to_json())).into_response()
}

/// Alerts grouped by incident: the open incidents, and every recent one (open or
/// resolved), newest first. Each incident has its headline, its cause and its signals
/// (each backend and kind, with the evidence it fired on).
async fn alerts(State(s): State<AppState>) -> Response {
    let (open, recent) = s.control.watch.incidents();
    Json(json!({"open": open, "recent": recent})).into_response()
}

#[derive(serde::Deserialize)]
struct Range {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
}

/// Journal events kept in memory (traffic summaries included), oldest first,
/// optionally within a time range.
async fn journal(State(s): State<AppState>, Query(r): Query<Range>) -> Response {
    let events: Vec<_> = s
        .control
        .journal
        .all()
        .into_iter()
        .filter(|e| e.ts_ms >= r.from_ms.unwrap_or(0) && e.ts_ms <= r.to_ms.unwrap_or(u64::MAX))
        .collect();
    Json(json!({"events": events})).into_response()
}

/// Requests and errors summed over a time range (the last six hours are kept).
async fn traffic(State(s): State<AppState>, Query(r): Query<Range>) -> Response {
    let t = s
        .control
        .watch
        .traffic
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (lo, hi) = (r.from_ms.unwrap_or(0), r.to_ms.unwrap_or(u64::MAX));
    let points: Vec<_> = t
        .iter()
        .filter(|p| p.ts_ms >= lo && p.ts_ms <= hi)
        .collect();
    let requests: u64 = points.iter().map(|p| p.requests).sum();
    let errors: u64 = points.iter().map(|p| p.errors).sum();
    let full = t.len() >= crate::control::watch::TRAFFIC_HISTORY;
    let complete = complete(t.front().map(|p| p.ts_ms), full, lo);
    Json(json!({"requests": requests, "errors": errors, "complete": complete})).into_response()
}

/// Whether the kept points cover a range from `lo`: the oldest kept point is no later,
/// or (for a range from the start) none was ever dropped. Once six hours have filled
/// the ring, a range from the start is missing what was dropped.
fn complete(oldest_ms: Option<u64>, full: bool, lo: u64) -> bool {
    oldest_ms.is_some_and(|o| o <= lo) || (lo == 0 && !full)
}

/// `GET /api/v1/history[?from_ms=]`: per tick, each pool's observed, effective and
/// configured shares and its latency, oldest first (fifteen minutes are kept).
async fn history(State(s): State<AppState>, Query(r): Query<Range>) -> Response {
    let points = s
        .control
        .watch
        .history
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .since(r.from_ms.unwrap_or(0));
    Json(json!({"keep_ms": crate::control::watch::history::KEEP_MS, "points": points}))
        .into_response()
}

/// The text of the configuration in force, with the admin token redacted.
async fn live_config(State(s): State<AppState>) -> Response {
    let snap = s.control.rt.current();
    let Some(mut text) = tango_core::config::redact_admin_token(&snap.text) else {
        // It was validated when applied, so this does not happen; if it did, the text
        // could hold the token where redaction cannot find it.
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "the configuration text is withheld: it could not be redacted"})),
        )
            .into_response();
    };
    // The token in force may come from elsewhere (the environment, a token file) and
    // still be written in the text, e.g. in a comment.
    if let Some(t) = s.auth.token() {
        text = text.replace(t.as_str(), tango_core::config::REDACTED);
    }
    (
        [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn status(State(s): State<AppState>) -> Response {
    let snap = s.control.rt.current();
    let now = s.control.rt.now_ms();
    let pools: Vec<_> = snap
        .pools
        .iter()
        .map(|p| {
            let backends: Vec<_> = p
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let st = b.stats.snapshot();
                    let cfg = &p.cfg.backends[i];
                    json!({
                        "name": cfg.name,
                        "address": cfg.address,
                        "configured_weight": cfg.weight,
                        "effective_weight": p.effective_weight(i, now),
                        "healthy": b.healthy(),
                        "ejected": b.ejected(),
                        "down_reason": b.down_reason(),
                        "in_flight": b.in_flight(),
                        "requests": st.requests(),
                        "errors": st.errors(),
                        "open_connections": b.conns.open(),
                    })
                })
                .collect();
            // Panic mode explains effective weights that ignore health: say it.
            json!({
                "name": p.cfg.name,
                "policy": p.cfg.policy.name(),
                "panic": p.shared.panic(),
                "backends": backends,
            })
        })
        .collect();
    let listeners: Vec<_> = s
        .control
        .listener_addresses()
        .await
        .into_iter()
        .map(|(name, addr)| json!({"name": name, "address": addr.to_string()}))
        .collect();
    Json(json!({
        "generation": snap.generation,
        "applied_at": snap.applied_at,
        "listeners": listeners,
        "pools": pools,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_range_from_the_start_is_complete_only_while_nothing_was_dropped() {
        assert!(super::complete(None, false, 0));
        assert!(super::complete(Some(5_000), false, 0));
        assert!(!super::complete(Some(5_000), true, 0));
        assert!(super::complete(Some(5_000), true, 5_000));
        assert!(!super::complete(Some(5_000), false, 4_999));
    }
}
