//! A rollback that fails is an event of its own: the forced typo also dropped a
//! listener, whose address another process takes before the canary blames the typo, so
//! the previous configuration cannot be bound again. `config_rollback_failed` says so
//! with its reason, the timeline shows it on a line of its own, and once the address is
//! free again the retried rollback goes through, which the incident's sentence tells
//! after the failure.

use super::harness::*;
use crate::support::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The guard harness's pool (b2 at `w2`), with a second listener at `side` (after the
/// one the load is sent to) when given.
fn with_side(
    bs: &[crate::backend::Backend; 4],
    w2: u32,
    side: Option<SocketAddr>,
    state: &str,
) -> String {
    let dir = format!("[admin]\nstate_dir = \"{state}\"\n");
    let mut c = cfg(bs, "", w2, "").replacen("[admin]\n", &dir, 1);
    if let Some(a) = side {
        let pool = "\n[[pool]]\n";
        let extra = format!("\n[[listener]]\nname = \"side\"\nlisten = \"{a}\"\n{pool}");
        c = c.replacen(pool, &extra, 1);
    }
    c
}

/// Bind `addr` as soon as tango has let it go (its accept loops stop after the reload).
async fn take(addr: SocketAddr) -> std::net::TcpListener {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => return l,
            Err(e) => assert!(Instant::now() < end, "{addr} still held: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_cannot_bind_is_journaled_with_its_reason_and_retried() {
    let bs = four_backends().await;
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().display().to_string();
    let side = dead_addr();
    let t = Tango::start(&with_side(&bs, 1, Some(side), &dir));
    let load = Load::start(t.url("/"), 400, None);
    load.answered(800).await;

    t.write_config(&with_side(&bs, 10, None, &dir));
    let (s, v) = admin_post(&t, "/api/v1/reload?force=true").await;
    assert_eq!((s, &v["canary"]["generation"]), (200, &2.into()), "{v:#}");
    let held = take(side).await;

    let events = wait_journal(&t, Duration::from_secs(10), "the failed rollback", |e| {
        e["type"] == "config_rollback_failed"
    })
    .await;
    the_failure_says_why(&events, side);
    assert!(!events.iter().any(|e| e["type"] == "config_rolled_back"));
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 2);
    let failures = metric(&t, "tango_config_rollback_failures_total").await;
    assert_ne!(failures, "tango_config_rollback_failures_total 0");

    // The address is free again: the retry restores generation 1 as generation 3.
    drop(held);
    let events = wait_journal(&t, Duration::from_secs(10), "the retried rollback", |e| {
        e["type"] == "config_rolled_back"
    })
    .await;
    rolled_back_2_to_1_as_3(&events);
    the_incident_tells_the_failure_then_the_rollback(&t).await;
    let (answered, failed) = load.stop().await;
    assert_eq!(failed, 0, "clients saw errors ({failed} of {answered})");
    let side_now = admin_get(&t, "/api/v1/status").await["listeners"].to_string();
    assert!(side_now.contains(&side.to_string()), "{side_now}");

    the_timeline_has_a_line_for_it(&state.path().join("journal.jsonl"));
}

/// The first failure: generation 2 still in force, generation 1 not restored, because
/// `side` is in use; tried again; called for by the typo's alert.
fn the_failure_says_why(events: &[serde_json::Value], side: SocketAddr) {
    let f = events
        .iter()
        .find(|e| e["type"] == "config_rollback_failed")
        .unwrap();
    assert_eq!(
        (&f["generation"], &f["from_generation"], &f["to_generation"]),
        (&2.into(), &2.into(), &1.into()),
        "{f:#}"
    );
    assert_eq!(
        (&f["attempts"], &f["retrying"]),
        (&1.into(), &true.into()),
        "{f:#}"
    );
    let reason = f["reason"].as_str().unwrap();
    assert!(
        reason.contains(&side.to_string()) && reason.contains("in use"),
        "{f:#}"
    );
    assert_eq!(f["evidence"][0]["pool"], "p", "{f:#}");
    assert_eq!(f["evidence"][0]["cause"], "config", "{f:#}");
}

/// The incident tells the failure, then the rollback that went through.
async fn the_incident_tells_the_failure_then_the_rollback(t: &Tango) {
    let told = "; rolling back to generation 1 failed: ";
    let done = "; retrying; rolled back to generation 1 (now generation 3)";
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let alerts = admin_get(t, "/api/v1/alerts").await;
        let said = alerts.to_string();
        if said.contains(told) && said.contains(done) {
            break;
        }
        assert!(Instant::now() < end, "{alerts:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `tango timeline` shows the failure on a line of its own.
fn the_timeline_has_a_line_for_it(journal: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["timeline", "--journal"])
        .arg(journal)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("ROLLBACK FAILED"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("generation 2 could not be rolled back to generation 1 (attempt 1)")
            && line.ends_with("; retrying"),
        "{line}"
    );
}
