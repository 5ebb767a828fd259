//! A backend killed under load, with retries: tango retries its refused connections on
//! the others and every client gets 200. The alert says the tries failed and that no
//! client saw it (not that the backend "returned 38% errors"), and the incident stays
//! open while the backend is down, though no request reaches it any more, until it is
//! back.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

/// The load's requests a second.
const RATE: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_with_retries_is_an_incident_clients_never_saw_until_it_is_back() {
    let mut bs = four_backends().await;
    let state = tempfile::tempdir().unwrap();
    // Retries on (max_attempts = 2, the default); health checks slow enough that the
    // failed tries are seen before the backend is marked down.
    let health = "[pool.health]\npath = \"/health\"\ninterval = \"2s\"\nfall = 3\nrise = 1\n";
    let t = Tango::start_with(
        &cfg(&bs, &[1, 1, 1, 1], health, Some(state.path()), NO_GUARD),
        &["--log-format", "json"],
    );
    // b2's failed tries are judged on one tick alone, all of it after the kill, only
    // when b2 has the detector's 50 tries in it (`error_min_requests`); else on five
    // ticks, most of them from before the kill. So b2 needs well over 50 tries a
    // second, whatever the machine's load: 400 rps gives it 100, and the load keeps
    // its pace where late wake-ups would otherwise halve it.
    let load = Load::keeping_pace(t.url("/"), RATE);
    load.wait_answered(usize::try_from(4 * RATE).unwrap()).await;
    let addr = bs[1].addr;
    bs[1].kill().await;

    let i = b2_is_down_in_an_incident(&t).await;
    no_client_saw_an_error(&t, &i).await;
    let id = i["id"].as_str().unwrap().to_string();
    it_stays_open_while_b2_is_down(&t, &load, &id).await;

    // Back on the same address: healthy again, and the incident ends.
    let _back = Backend::start_at("b2", addr).await;
    let done = wait_incident(
        &t,
        Duration::from_secs(60),
        "the incident to resolve",
        |x| x["id"] == id.as_str() && !x["resolved_ms"].is_null(),
    )
    .await;
    let answers = load.stop().await;
    let failed = answers.iter().filter(|(_, s)| *s != 200).count();
    assert_eq!(
        failed,
        0,
        "clients saw errors ({failed} of {})",
        answers.len()
    );
    assert!(
        done["down"].as_array().is_none_or(|d| d.is_empty()),
        "{done:#}"
    );
    the_incident_ends_after_b2_is_healthy(state.path(), &id);
}

/// Opened on b2 and, once the health checks agree, b2 is down in it; b2's failed tries
/// are a signal, and no client saw them.
async fn b2_is_down_in_an_incident(t: &Tango) -> Value {
    let i = wait_incident(
        t,
        Duration::from_secs(30),
        "an incident with b2 down",
        |i| {
            i["headline"] == "b2"
                && i["down"] == serde_json::json!(["b2"])
                && i["resolved_ms"].is_null()
        },
    )
    .await;
    let errors: Vec<&Value> = i["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["evidence"]["kind"] == "errors")
        .collect();
    assert_eq!(errors.len(), 1, "b2's failed tries are a signal: {i:#}");
    let e = &errors[0]["evidence"];
    assert_eq!(
        (&e["backend"], &e["client_errors"]),
        (&"b2".into(), &0.into()),
        "{i:#}"
    );
    assert!(
        e["observed"].as_f64().unwrap() > 0.9,
        "b2's tries failed: {i:#}"
    );
    i
}

/// What the log said, and the API says: no client saw an error.
async fn no_client_saw_an_error(t: &Tango, i: &Value) {
    let lines: Vec<Value> = alert_lines(t)
        .into_iter()
        .filter(|l| l["backend"] == "b2")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let said = lines[0]["message"].as_str().unwrap();
    assert!(said.starts_with("ALERT b2 "), "{said}");
    let api = admin_get(t, "/api/v1/alerts").await.to_string();
    assert!(
        !said.contains("returned") && !api.contains("returned"),
        "{said}\n{api}"
    );
    if i["kind"] == "errors" {
        assert!(
            said.contains(", each retried on another backend: clients saw no error from it; "),
            "{said}"
        );
    }
}

/// Down for a while: no request reaches b2, its error signal may end, the incident
/// does not.
async fn it_stays_open_while_b2_is_down(t: &Tango, load: &Load, id: &str) {
    // Eight seconds of answers.
    let answers = usize::try_from(8 * RATE).unwrap();
    load.wait_answered(load.answered() + answers).await;
    let v = admin_get(t, "/api/v1/alerts").await;
    let still: Vec<&Value> = v["open"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] == id)
        .collect();
    assert_eq!(still.len(), 1, "{v:#}");
    assert_eq!(still[0]["down"], serde_json::json!(["b2"]));
}

/// In the journal (in `state`), b2's recovery comes between the incident's opening and
/// its resolution.
fn the_incident_ends_after_b2_is_healthy(state: &std::path::Path, id: &str) {
    let events = journal_file(state);
    let at = |f: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("{events:#?}"))
    };
    let health = |up: bool| {
        move |e: &Value| {
            e["type"] == "health_transition" && e["backend"] == "b2" && e["healthy"] == up
        }
    };
    let opened = at(&|e| e["type"] == "incident_opened" && e["incident"]["id"] == id);
    let resolved = at(&|e| e["type"] == "incident_resolved" && e["incident"]["id"] == id);
    assert!(
        opened < at(&health(true)) && at(&health(true)) < resolved,
        "{events:#?}"
    );
    assert!(at(&health(false)) < resolved);
}
