//! Backends leaving rotation mid-tick, live: the tick a backend is ejected in held its
//! requests for the part of the tick it was still in, and the others' shares that tick
//! are no skew.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The newest watch tick's time (unix ms), from the history the dashboard draws.
async fn last_tick(t: &Tango) -> u64 {
    let h = admin_get(t, "/api/v1/history").await;
    let points = h["points"].as_array().unwrap();
    points.last().unwrap()["ts_ms"].as_u64().unwrap()
}

/// Sleeps until `part` of the way into a watch tick (ticks are a second apart).
async fn into_a_tick(t: &Tango, part: f64) {
    let mut at = last_tick(t).await + (1000.0 * part) as u64;
    while at < unix_ms() + 100 {
        at += 1000;
    }
    tokio::time::sleep(Duration::from_millis(at - unix_ms())).await;
}

/// b1 carries 80% of the pool (weights 8, 1, 1) and is ejected nine tenths of the way
/// into a tick. Counted as out for the whole tick, b1's requests that tick were
/// expected nowhere, and b2 and b3, expected half the tick's requests each where they
/// had about 28%, fired under-shares (0.3x, against the eligible set and against the
/// baseline) that no backend had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tick_a_heavy_backend_is_ejected_in_is_no_under_share_of_the_others() {
    let bs = [
        Backend::start("b1").await,
        Backend::start("b2").await,
        Backend::start("b3").await,
    ];
    let pool =
        "max_attempts = 1\n[pool.outlier]\nconsecutive_failures = 3\nbase_ejection = \"60s\"\n";
    let t = Tango::start_with(
        &cfg(&bs, &[8, 1, 1], pool, None, NO_GUARD),
        &["--log-format", "json"],
    );
    let load = Load::start(t.url("/"), 400, None);
    load.wait_answered(2000).await;
    into_a_tick(&t, 0.9).await;
    bs[0].state.fail_status.store(500, Relaxed);
    let n = load.answered();
    load.wait_answered(n + 2400).await;
    load.stop().await;

    let j = admin_get(&t, "/api/v1/journal").await;
    let ejected = j["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "ejected")
        .count();
    assert_eq!(ejected, 1, "b1 was ejected: {j:#}");
    let alerts = fired_alerts(&t, |e| share(&e["evidence"]["kind"])).await;
    let false_ones: Vec<_> = alerts
        .iter()
        .filter(|(b, k, basis)| b != "b1" && k == "under_share" && basis != "configured")
        .collect();
    assert!(false_ones.is_empty(), "{alerts:?}\nlog:\n{}", t.log());
}
