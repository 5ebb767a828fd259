//! A reload that changes a pool's policy, live: the shift detector takes the new
//! policy's tuning, as the share detector does, and keeps its baseline, against which
//! a policy that skews the split is a shift.

use super::harness::*;
use crate::support::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// b4 is slow. Under round robin it takes its quarter; a reload to least request moves
/// most of its traffic to the others, as that policy means to. A pool that starts as
/// least request raises no under-share for that, and neither may one that switched to
/// it: the shift detector kept round robin's tuning and fired b4's under-share against
/// its baseline, blamed on the reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_least_request_raises_no_under_share_against_the_baseline() {
    let bs = four_backends().await;
    bs[3].state.delay_ms.store(100, Relaxed);
    let rr = "policy = \"round_robin\"\nmax_attempts = 1\n";
    let lr = "policy = \"least_request\"\nmax_attempts = 1\n";
    let t = Tango::start_with(
        &cfg(&bs, &[1, 1, 1, 1], rr, None, NO_GUARD),
        &["--log-format", "json"],
    );
    let load = Load::start(t.url("/"), 400, None);
    load.wait_answered(2000).await;
    t.write_config(&cfg(&bs, &[1, 1, 1, 1], lr, None, NO_GUARD));
    let reloaded_ms = unix_ms();
    let (s, r) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, r["generation"].as_u64()), (200, Some(2)), "{r}");
    let hits = |b: usize| bs[b].state.hits.load(Relaxed);
    let before: Vec<u64> = (0..4).map(hits).collect();
    let n = load.answered();
    load.wait_answered(n + 3200).await;
    load.stop().await;

    // The policy did move b4's traffic away: the test means something.
    let since: Vec<u64> = (0..4).map(|b| hits(b) - before[b]).collect();
    let b4_share = since[3] as f64 / since.iter().sum::<u64>() as f64;
    assert!(b4_share < 0.1, "b4 took {b4_share:.3} of {since:?}");
    let alerts = fired_alerts(&t, |e| e["ts_ms"].as_u64() >= Some(reloaded_ms)).await;
    let under: Vec<_> = alerts
        .iter()
        .filter(|(_, k, _)| k == "under_share")
        .collect();
    assert!(under.is_empty(), "{alerts:?}\nlog:\n{}", t.log());
    let status = admin_get(&t, "/api/v1/status").await;
    assert_eq!(status["generation"], 2, "no rollback: {status:#}");
}

/// A policy change that skews the split: every request carries the same key, which
/// round robin ignores and a reload to ring hash sends to one backend. The shift
/// detector kept the split from before the reload as its baseline, so that backend's
/// 4x is a shift, and the reload is named as its cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_a_policy_that_skews_the_split_is_blamed_on_the_reload() {
    let bs = four_backends().await;
    let rr = "policy = \"round_robin\"\n";
    let ring = "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-user\" }\n";
    let t = Tango::start(&cfg(&bs, &[1, 1, 1, 1], rr, None, NO_GUARD));
    let user: User = Arc::new(|_| "user-1".to_string());
    let load = Load::start(t.url("/"), 400, Some(user));
    load.wait_answered(2000).await;
    t.write_config(&cfg(&bs, &[1, 1, 1, 1], ring, None, NO_GUARD));
    let (s, r) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, r["generation"].as_u64()), (200, Some(2)), "{r}");
    let i = wait_incident(&t, Duration::from_secs(20), "an over-share incident", |i| {
        i["kind"] == "over_share" && i["resolved_ms"].is_null()
    })
    .await;
    load.stop().await;

    let shift = i["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["evidence"])
        .find(|e| e["basis"] == "baseline" && e["kind"] == "over_share");
    let shift = shift.unwrap_or_else(|| panic!("no shift among the signals: {i:#}"));
    assert_eq!(shift["backend"], i["headline"], "{i:#}");
    assert!(shift["ratio"].as_f64().unwrap() > 3.0, "{i:#}");
    assert_eq!(
        (&i["cause"]["class"], &i["cause"]["generation"]),
        (&"config".into(), &2.into()),
        "{i:#}"
    );
}
