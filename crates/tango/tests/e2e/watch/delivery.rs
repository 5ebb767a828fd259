//! Alert delivery to a real Alertmanager over an incident's whole life: a backend down
//! for longer than Alertmanager's `resolve_timeout` is still firing there, not resolved
//! behind tango's back because nothing was sent for a while.

use super::harness::*;
use crate::support::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Alertmanager's alerts for incident `id` (active ones only, its default).
async fn am_alerts(am: &Alertmanager, id: &str) -> Vec<Value> {
    let (_, body) = get(&client(), &format!("{}/api/v2/alerts", am.url)).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["incident"] == id)
        .cloned()
        .collect()
}

fn rfc3339_ms(v: &Value) -> u64 {
    let t = humantime::parse_rfc3339_weak(v.as_str().unwrap()).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_open_past_alertmanager_s_resolve_timeout_is_still_firing_there() {
    // Alertmanager ends an alert a second after it was last sent, unless the alert says
    // when it ends.
    let am = alertmanager_with("global:\n  resolve_timeout: 1s\n").await;
    let mut bs = four_backends().await;
    let health = "[pool.health]\npath = \"/health\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nfall = 2\nrise = 1\n";
    let tail = format!("{NO_GUARD}\n[alerts]\nalertmanager = \"{}\"\n", am.url);
    let t = Tango::start(&cfg(&bs, &[1, 1, 1, 1], health, None, &tail));
    let load = Load::start(t.url("/"), 200, None);
    load.wait_answered(800).await;
    bs[1].kill().await;
    let i = wait_incident(
        &t,
        Duration::from_secs(30),
        "an incident with b2 down",
        |i| i["down"] == serde_json::json!(["b2"]) && i["resolved_ms"].is_null(),
    )
    .await;
    let id = i["id"].as_str().unwrap().to_string();

    // Once Alertmanager last heard of it more than twice its resolve_timeout ago (b2
    // stays down, so the incident stays open here), it is still active there.
    let end = Instant::now() + Duration::from_secs(40);
    let mut seen = false;
    let alert = loop {
        let alerts = am_alerts(&am, &id).await;
        assert!(alerts.len() <= 1, "one alert per incident: {alerts:#?}");
        let open = admin_get(&t, "/api/v1/alerts").await["open"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str());
        assert!(open, "the incident is still open in tango: b2 is down");
        match alerts.first() {
            Some(a) if unix_ms() > rfc3339_ms(&a["updatedAt"]) + 2_000 => break a.clone(),
            Some(_) => seen = true,
            None => assert!(
                !seen,
                "Alertmanager resolved incident {id} while it is open in tango"
            ),
        }
        assert!(Instant::now() < end, "Alertmanager never had it for long");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    assert!(
        rfc3339_ms(&alert["endsAt"]) > unix_ms() + 60_000,
        "a firing alert ends minutes ahead, resent before then: {alert:#}"
    );
    load.stop().await;
}
