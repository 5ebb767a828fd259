//! Hardening: faults found in review, each reproduced over real sockets and the real
//! binary. The admin API and its token (`admin`), the journal read back after damage and
//! across restarts (`journal`), and the log under a dead backend (`logs`).

mod admin;
mod journal;
mod logs;

use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;

pub const TOKEN: &str = "0123456789abcdef0123";

/// `cfg` (from `support::config`) with `lines` added to its `[admin]` table.
pub fn with_admin(cfg: &str, lines: &str) -> String {
    cfg.replacen("[admin]\n", &format!("[admin]\n{lines}\n"), 1)
}

/// An admin API call with an optional `Authorization` header value.
pub async fn call(t: &Tango, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(t.admin_url(path));
    if let Some(a) = auth {
        req = req.header(http::header::AUTHORIZATION, a);
    }
    send(&client(), req.body(Full::new(Bytes::new())).unwrap()).await
}

/// A JSON answer from the admin API, with the token.
pub async fn authed_json(t: &Tango, path: &str) -> serde_json::Value {
    let (s, body) = call(t, "GET", path, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(s, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// tango's JSON log lines (`--log-format json`).
pub fn json_log(t: &Tango) -> Vec<serde_json::Value> {
    t.log()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
