//! The dashboard at the admin listener's `/`: one HTML page, its script and its style
//! sheet, compiled into the binary so it works with no network. The page holds no data
//! and is served to anyone who can reach the admin address; everything it shows comes
//! from `/api/v1/*` with the bearer token (taken from `?token=` or a sign-in form and
//! kept in the tab's sessionStorage), so a token protects the dashboard's data exactly
//! as it protects the API. Its chart starts from `/api/v1/history`, the watch's last
//! fifteen minutes of shares and latency.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("dashboard/index.html");
const APP: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// The open routes: the page and its two assets.
pub(super) fn assets<S: Clone + Send + Sync + 'static>() -> Router<S> {
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
