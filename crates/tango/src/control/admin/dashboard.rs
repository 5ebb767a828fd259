//! The dashboard at the admin listener's `/`: one HTML page, its script and its style
//! sheet, compiled into the binary so it works with no network. The page holds no data
//! and is served to anyone who can reach the admin address; everything it shows comes
//! from `/api/v1/*` with the bearer token (taken from `?token=` or a sign-in form and
//! kept in the tab's sessionStorage), so a token protects the dashboard's data exactly
//! as it protects the API.
//!
//! `/api/v1/history` (the watch's last fifteen minutes of shares and latency) lives here
//! because only the dashboard draws it.

use super::{AppState, Range};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

const INDEX: &str = include_str!("dashboard/index.html");
const APP: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// The open routes: the page and its two assets.
pub(super) fn assets() -> Router<AppState> {
    Router::new()
        .route("/", get(|| asset(INDEX, "text/html; charset=utf-8")))
        .route(
            "/dashboard/app.js",
            get(|| asset(APP, "text/javascript; charset=utf-8")),
        )
        .route(
            "/dashboard/style.css",
            get(|| asset(STYLE, "text/css; charset=utf-8")),
        )
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // Only its own script and style, and fetches to this origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/v1/history[?from_ms=]`: per tick, each pool's observed, effective and
/// configured shares and its latency, oldest first (fifteen minutes are kept).
pub(super) async fn history(State(s): State<AppState>, Query(r): Query<Range>) -> Response {
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
