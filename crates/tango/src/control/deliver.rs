//! Incident delivery beyond the log and the journal: a JSON webhook, and Alertmanager's
//! `POST /api/v2/alerts`, one alert per incident (sent when it opens, again when it
//! changes, and resolved). Each target has its own task with bounded retries, so a slow
//! or absent receiver never holds up the watch.
//!
//! Alertmanager resolves an alert by itself once its `endsAt` passes, or, when a client
//! gives none, `resolve_timeout` (5 minutes by default) after the alert was last sent.
//! So, as Prometheus does, an open incident is sent again every minute (the watch calls
//! `Resend::tick`) with an `endsAt` four minutes ahead: it stays firing there however
//! long it stays open here, and ends there within four minutes if tango goes away, or a
//! reload points `alertmanager` elsewhere, without saying so.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::time::Duration;
use tango_core::config::Alerts;
use tango_core::detector::Incident;

const ATTEMPTS: u32 = 4;
/// How often the open incidents are sent to Alertmanager again.
const RESEND: Duration = Duration::from_secs(60);
/// How far ahead of a send a firing alert's `endsAt` is: a few resends, so one lost
/// send does not end it (Prometheus uses four resend intervals too).
const FIRING_FOR: Duration = Duration::from_secs(4 * 60);

/// Deliver an incident (`status` "firing", opened or updated, or "resolved") to every
/// configured target: one alert per incident, identified by its id.
pub(crate) fn deliver(targets: &Alerts, incident: &Incident, status: &str) {
    if let Some(url) = &targets.webhook {
        let body = Body {
            id: incident.id.clone(),
            resolved: status == "resolved",
            json: webhook_body(incident, status),
        };
        spawn_post(url.clone(), body);
    }
    if let Some(base) = &targets.alertmanager {
        queue_alertmanager(base, incident.clone());
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
/// `endsAt` in the past, a firing one has `endsAt` [`FIRING_FOR`] after `now_ms`. The
/// headline, which may change, is an annotation.
fn alertmanager_alert(i: &Incident, now_ms: u64) -> serde_json::Value {
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
    let end = i
        .resolved_ms
        .unwrap_or(now_ms + FIRING_FOR.as_millis() as u64);
    alert["endsAt"] = json!(rfc3339(end));
    alert
}

/// One webhook delivery: the incident's state, firing or resolved.
#[derive(Debug, Clone, PartialEq)]
struct Body {
    id: String,
    resolved: bool,
    json: serde_json::Value,
}

/// A webhook's deliveries waiting to be sent, oldest first. A firing state replaces the
/// same incident's firing state still waiting (the newer says all the older did, and
/// both read `"status": "firing"`), so behind a slow or unreachable receiver at most
/// one state per incident and status waits, not one per change, and what it gets
/// once it answers is current. A resolution is never replaced, nor overtaken.
#[derive(Debug, Default)]
struct Pending(std::collections::VecDeque<Body>);

impl Pending {
    fn push(&mut self, b: Body) {
        if !b.resolved {
            let last = self.0.iter_mut().rev().find(|w| w.id == b.id);
            if let Some(waiting) = last.filter(|w| !w.resolved) {
                *waiting = b;
                return;
            }
        }
        self.0.push_back(b);
    }
}

/// The open queues of one kind of target: each URL's sender to its task.
type Queues<T> = std::sync::Mutex<Vec<(String, tokio::sync::mpsc::UnboundedSender<T>)>>;

/// Hand `item` to the task of `url` in `queues`, starting one (`task`) on first use, or
/// again if the task ended (its runtime did). One task per URL sends in order, so an
/// incident's update never overtakes its opening, nor its resolution its update.
fn enqueue<T, F>(
    queues: &Queues<T>,
    url: String,
    item: T,
    task: impl FnOnce(String, tokio::sync::mpsc::UnboundedReceiver<T>) -> F,
) where
    T: Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut queues = queues.lock().unwrap_or_else(|p| p.into_inner());
    let item = match queues.iter().find(|(u, _)| *u == url) {
        Some((_, tx)) => match tx.send(item) {
            Ok(()) => return,
            Err(e) => e.0,
        },
        None => item,
    };
    queues.retain(|(u, _)| *u != url);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = tx.send(item);
    tokio::spawn(task(url.clone(), rx));
    queues.push((url, tx));
}

/// Queue a webhook POST to `url`.
fn spawn_post(url: String, body: Body) {
    static QUEUES: Queues<Body> = std::sync::Mutex::new(Vec::new());
    enqueue(&QUEUES, url, body, send_queue);
}

/// Hand an incident's latest state to the task of the Alertmanager at `base`.
fn queue_alertmanager(base: &str, incident: Incident) {
    static QUEUES: Queues<Incident> = std::sync::Mutex::new(Vec::new());
    let url = format!("{base}/api/v2/alerts");
    enqueue(&QUEUES, url, incident, alertmanager_task);
}

/// One Alertmanager: sends each incident as it comes. Those that queued while a send
/// was retried go in one request, the latest state of each incident only, so a slow
/// Alertmanager gets fewer and fresher requests rather than a growing backlog.
async fn alertmanager_task(url: String, mut rx: tokio::sync::mpsc::UnboundedReceiver<Incident>) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(i) = rx.try_recv() {
            batch.retain(|b| b.id != i.id);
            batch.push(i);
        }
        let now = crate::journal::unix_ms();
        let alerts: Vec<serde_json::Value> =
            batch.iter().map(|i| alertmanager_alert(i, now)).collect();
        post(&client, &url, Bytes::from(json!(alerts).to_string())).await;
    }
}

/// When the open incidents last went to Alertmanager again (see the module's doc).
pub(crate) struct Resend {
    last_ms: u64,
}

impl Resend {
    pub(crate) fn new(now_ms: u64) -> Resend {
        Resend { last_ms: now_ms }
    }

    /// Every [`RESEND`], the incidents `open` lists to the Alertmanager configured now:
    /// one a reload removed hears no more of them, and ends them at their `endsAt`.
    pub(crate) fn tick(
        &mut self,
        targets: &Alerts,
        open: impl FnOnce() -> Vec<Incident>,
        now_ms: u64,
    ) {
        if now_ms < self.last_ms + RESEND.as_millis() as u64 {
            return;
        }
        self.last_ms = now_ms;
        if let Some(base) = &targets.alertmanager {
            for i in open() {
                queue_alertmanager(base, i);
            }
        }
    }
}

/// One webhook: what came while a delivery was being tried joins [`Pending`] before
/// the next is sent.
async fn send_queue(url: String, mut rx: tokio::sync::mpsc::UnboundedReceiver<Body>) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut pending = Pending::default();
    loop {
        if pending.0.is_empty() {
            match rx.recv().await {
                Some(b) => pending.push(b),
                None => return,
            }
        }
        while let Ok(b) = rx.try_recv() {
            pending.push(b);
        }
        if let Some(b) = pending.0.pop_front() {
            post(&client, &url, Bytes::from(b.json.to_string())).await;
        }
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

#[cfg(test)]
mod tests {
    use super::{Body, Pending};

    fn body(id: &str, resolved: bool, n: u32) -> Body {
        Body {
            id: id.into(),
            resolved,
            json: serde_json::json!(n),
        }
    }

    #[test]
    fn a_waiting_firing_state_is_replaced_by_the_newer_and_a_resolution_never() {
        let mut p = Pending::default();
        p.push(body("a", false, 1));
        p.push(body("b", false, 2));
        for n in 3..100 {
            p.push(body("a", false, n));
        }
        p.push(body("a", true, 100));
        // Reopened after its resolution: a firing state after it, not in its place.
        p.push(body("a", false, 101));
        p.push(body("a", false, 102));
        let left: Vec<(String, bool, serde_json::Value)> =
            p.0.into_iter()
                .map(|b| (b.id, b.resolved, b.json))
                .collect();
        let want = |id: &str, r: bool, n: u32| (id.to_string(), r, serde_json::json!(n));
        assert_eq!(
            left,
            [
                want("a", false, 99),
                want("b", false, 2),
                want("a", true, 100),
                want("a", false, 102),
            ]
        );
    }
}
