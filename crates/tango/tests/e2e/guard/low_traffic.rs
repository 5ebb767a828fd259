//! A canary does not pass a change it could not judge: at 2 requests/s, a forced weight
//! typo (100 where 1 was meant) gives the shift detector too few requests to fire within
//! the canary's 10 s window; the window is extended until the pool has had the requests
//! the detector needs, the alert comes, and the typo is rolled back.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;
use std::time::{Duration, Instant};

fn two(b1: &Backend, b2: &Backend, w2: u32) -> String {
    config("", &[("b1", b1.addr, 1), ("b2", b2.addr, w2)]) + "\n[guard]\ncanary = \"10s\"\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_typo_at_two_requests_a_second_is_rolled_back_after_an_extended_canary() {
    let (b1, b2) = (Backend::start("b1").await, Backend::start("b2").await);
    let original = two(&b1, &b2, 1);
    let t = Tango::start(&original);
    let load = Load::start(t.url("/"), 2, None);
    load.answered(4).await;

    t.write_config(&two(&b1, &b2, 100));
    let (s, v) = admin_post(&t, "/api/v1/reload?force=true").await;
    let reloaded = Instant::now();
    assert_eq!((s, &v["canary"]["generation"]), (200, &2.into()), "{v:#}");
    let events = wait_journal(&t, Duration::from_secs(50), "the rollback", |e| {
        e["type"] == "config_rolled_back" || e["type"] == "canary_passed"
    })
    .await;
    let took = reloaded.elapsed();
    let (answered, failed) = load.stop().await;
    assert_eq!(failed, 0, "clients saw errors ({failed} of {answered})");
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|k| k.starts_with("canary_") || k.starts_with("config_"))
        .collect();
    assert_eq!(
        kinds,
        [
            "config_applied",
            "config_applied",
            "canary_extended",
            "config_rolled_back"
        ],
        "after {took:?}: {events:#?}"
    );
    // The canary may last ten windows.
    let (until, longest) = (&v["canary"]["until_ms"], &v["canary"]["longest_until_ms"]);
    assert_eq!(
        longest.as_u64().unwrap() - until.as_u64().unwrap(),
        90_000,
        "ten windows of 10 s: {v:#}"
    );

    // Extended at the window's end, short of the requests: 30 expected on b2 (half the
    // pool before the typo) is 60 requests, at least.
    let ext = events
        .iter()
        .find(|e| e["type"] == "canary_extended")
        .unwrap();
    assert_eq!(ext["generation"], 2, "{ext:#}");
    assert_eq!(ext["window_ms"], 10_000, "{ext:#}");
    assert_eq!(&ext["until_ms"], longest, "{ext:#}");
    let short = &ext["traffic"][0];
    assert_eq!(short["pool"], "p", "{ext:#}");
    assert!(short["needed"].as_u64().unwrap() >= 60, "{ext:#}");
    assert!(
        short["requests"].as_u64().unwrap() < short["needed"].as_u64().unwrap(),
        "{ext:#}"
    );
    let back = rolled_back_2_to_1_as_3(&events);
    assert_eq!(back["evidence"][0]["cause"], "config", "{back:#}");
    assert!(
        took > Duration::from_secs(10),
        "rolled back within the window: {took:?}"
    );
    let (_, live) = get(&client(), &t.admin_url("/api/v1/config")).await;
    assert_eq!(live, original);
}

/// A changed pool that gets no request at all cannot be judged: its 1 s canary is
/// extended, and ends after ten windows as `canary_ended`, saying why, never as passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_without_traffic_ends_unjudged_and_says_why() {
    let (b1, b2) = (Backend::start("b1").await, Backend::start("b2").await);
    let c = |w2| {
        config("", &[("b1", b1.addr, 1), ("b2", b2.addr, w2)]) + "\n[guard]\ncanary = \"1s\"\n"
    };
    let t = Tango::start(&c(1));
    t.write_config(&c(100));
    let (s, v) = admin_post(&t, "/api/v1/reload?force=true").await;
    assert_eq!((s, &v["canary"]["generation"]), (200, &2.into()), "{v:#}");

    let events = wait_journal(&t, Duration::from_secs(20), "the canary's end", |e| {
        e["type"] == "canary_ended" || e["type"] == "canary_passed"
    })
    .await;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|k| k.starts_with("canary_"))
        .collect();
    assert_eq!(kinds, ["canary_extended", "canary_ended"], "{events:#?}");
    let end = events.iter().find(|e| e["type"] == "canary_ended").unwrap();
    assert_eq!(end["generation"], 2, "{end:#}");
    assert_eq!(end["pools"], serde_json::json!(["p"]), "{end:#}");
    assert_eq!(
        (&end["traffic"][0]["pool"], &end["traffic"][0]["requests"]),
        (&"p".into(), &0.into()),
        "{end:#}"
    );
    let needed = end["traffic"][0]["needed"].as_u64().unwrap();
    assert!(needed >= 60, "{end:#}");
    let watched = end["window_ms"].as_u64().unwrap();
    assert!((10_000..13_000).contains(&watched), "{end:#}");
    assert_eq!(
        end["reason"],
        format!(
            "not enough traffic to judge: p: 0 of {needed} requests in {} s",
            watched / 1000
        ),
        "{end:#}"
    );
    assert!(t.log().contains("canary ended without judging the reload"));
}
