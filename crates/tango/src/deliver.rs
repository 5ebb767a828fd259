//! Alert delivery beyond the log and the journal: a JSON webhook, and Alertmanager's
//! `POST /api/v2/alerts`. Each delivery is its own task with bounded retries, so a slow
//! or absent receiver never holds up the watch.

use crate::watch::AlertRecord;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::time::Duration;
use tango_core::config::Alerts;

const ATTEMPTS: u32 = 4;

/// Deliver a fired (`resolved_ms: None`) or resolved alert to every configured target.
pub(crate) fn deliver(targets: &Alerts, alert: &AlertRecord) {
    if let Some(url) = &targets.webhook {
        spawn_post(url.clone(), webhook_body(alert));
    }
    if let Some(base) = &targets.alertmanager {
        spawn_post(format!("{base}/api/v2/alerts"), alertmanager_body(alert));
    }
}

fn webhook_body(a: &AlertRecord) -> serde_json::Value {
    json!({
        "status": if a.active { "firing" } else { "resolved" },
        "summary": a.cause.sentence,
        "evidence": a.evidence,
        "cause": a.cause,
        "resolved_ms": a.resolved_ms,
    })
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Alertmanager's v2 format: one alert, identified by its labels; a resolved alert is
/// the same labels with `endsAt` in the past.
fn alertmanager_body(a: &AlertRecord) -> serde_json::Value {
    let e = &a.evidence;
    let mut alert = json!({
        "labels": {
            "alertname": format!("TangoBackend{}", camel(e.kind.as_str())),
            "pool": e.pool,
            "backend": e.backend,
            "kind": e.kind.as_str(),
            "cause": a.cause.class.as_str(),
            "severity": "warning",
        },
        "annotations": {
            "summary": a.cause.sentence,
            "observed": format!("{:.4}", e.observed),
            "expected": format!("{:.4}", e.expected),
            "ratio": format!("{:.2}", e.ratio),
            "z": format!("{:.1}", e.z),
        },
        "startsAt": rfc3339(e.onset_ms),
    });
    if let Some(end) = a.resolved_ms {
        alert["endsAt"] = json!(rfc3339(end));
    }
    json!([alert])
}

fn camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn spawn_post(url: String, body: serde_json::Value) {
    tokio::spawn(async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let payload = Bytes::from(body.to_string());
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            let req = http::Request::post(&url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(payload.clone()));
            let Ok(req) = req else {
                tracing::error!(url = %url, "alert delivery: invalid URL");
                return;
            };
            match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => {
                    let _ = resp.into_body().collect().await;
                    return;
                }
                Ok(Ok(resp)) => {
                    tracing::warn!(url = %url, status = resp.status().as_u16(), attempt, "alert delivery refused")
                }
                Ok(Err(e)) => {
                    tracing::warn!(url = %url, error = %e, attempt, "alert delivery failed")
                }
                Err(_) => tracing::warn!(url = %url, attempt, "alert delivery timed out"),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::error!(url = %url, "alert delivery gave up after {ATTEMPTS} attempts");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_names() {
        assert_eq!(camel("over_share"), "OverShare");
    }
}
