//! Incident delivery beyond the log and the journal: a JSON webhook, and Alertmanager's
//! `POST /api/v2/alerts`, one alert per incident (sent when it opens, again when it
//! changes, and resolved). Each delivery is its own task with bounded retries, so a slow
//! or absent receiver never holds up the watch.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::time::Duration;
use tango_core::config::Alerts;
use tango_core::detector::Incident;

const ATTEMPTS: u32 = 4;

/// Deliver an incident (`status` "firing", opened or updated, or "resolved") to every
/// configured target: one alert per incident, identified by its id.
pub(crate) fn deliver(targets: &Alerts, incident: &Incident, status: &str) {
    if let Some(url) = &targets.webhook {
        spawn_post(url.clone(), webhook_body(incident, status));
    }
    if let Some(base) = &targets.alertmanager {
        spawn_post(format!("{base}/api/v2/alerts"), alertmanager_body(incident));
    }
}

fn webhook_body(i: &Incident, status: &str) -> serde_json::Value {
    json!({
        "status": status,
        "id": i.id,
        "pool": i.pool,
        "headline": i.headline,
        "kind": i.kind.as_str(),
        "summary": i.cause.sentence,
        "incident": i,
    })
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Alertmanager's v2 format: one alert, identified by its labels (the incident's id and
/// pool, which never change while it is open); a resolved one is the same labels with
/// `endsAt` in the past. The headline, which may change, is an annotation.
fn alertmanager_body(i: &Incident) -> serde_json::Value {
    let signals: Vec<String> = i
        .signals
        .iter()
        .filter(|s| s.active)
        .map(|s| {
            format!(
                "{} {} {:.1}x",
                s.evidence.backend,
                s.evidence.kind.as_str(),
                s.evidence.ratio
            )
        })
        .collect();
    let mut alert = json!({
        "labels": {
            "alertname": "TangoIncident",
            "incident": i.id,
            "pool": i.pool,
            "severity": "warning",
        },
        "annotations": {
            "summary": i.cause.sentence,
            "headline": i.headline,
            "kind": i.kind.as_str(),
            "cause": i.cause.class.as_str(),
            "signals": signals.join(", "),
            "down": i.down.join(", "),
        },
        "startsAt": rfc3339(i.onset_ms),
    });
    if let Some(end) = i.resolved_ms {
        alert["endsAt"] = json!(rfc3339(end));
    }
    json!([alert])
}

type Queue = tokio::sync::mpsc::UnboundedSender<serde_json::Value>;

/// Queue a POST to `url`. Each URL has one task that sends its queue in order, so an
/// incident's update never overtakes its opening, nor its resolution its update.
fn spawn_post(url: String, body: serde_json::Value) {
    static QUEUES: std::sync::Mutex<Vec<(String, Queue)>> = std::sync::Mutex::new(Vec::new());
    let mut queues = QUEUES.lock().unwrap_or_else(|p| p.into_inner());
    let body = match queues.iter().find(|(u, _)| *u == url) {
        Some((_, tx)) => match tx.send(body) {
            Ok(()) => return,
            // The task ended (its runtime did): start another below.
            Err(e) => e.0,
        },
        None => body,
    };
    queues.retain(|(u, _)| *u != url);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = tx.send(body);
    tokio::spawn(send_queue(url.clone(), rx));
    queues.push((url, tx));
}

async fn send_queue(url: String, mut rx: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    while let Some(body) = rx.recv().await {
        post(&client, &url, Bytes::from(body.to_string())).await;
    }
}

/// One delivery, tried up to [`ATTEMPTS`] times with backoff.
async fn post(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    payload: Bytes,
) {
    let mut backoff = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        let req = http::Request::post(url)
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
}
