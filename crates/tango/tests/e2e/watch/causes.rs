//! Causes that hold up, each in the scenario that showed the old ones did not: the fix
//! blamed for an ejection that followed it, a weight change blamed for another
//! backend's latency, a drift named by its last step only, and a pool-wide reload
//! blamed (and rolled back) for a backend that broke seconds later on its own.

use super::harness::*;
use crate::support::*;
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tango_core::journal::clock;

/// The journal as the API serves it.
async fn journal(t: &Tango) -> Vec<Value> {
    admin_get(t, "/api/v1/journal").await["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejection_after_a_weight_fix_is_blamed_on_the_ejection_not_the_fix() {
    let bs = four_backends().await;
    let pool =
        "max_attempts = 1\n[pool.outlier]\nconsecutive_failures = 3\nbase_ejection = \"60s\"\n";
    let t = Tango::start_with(
        &cfg(&bs, &[1, 2, 1, 1], pool, None, NO_GUARD),
        &["--log-format", "json"],
    );
    let load = Load::start(t.url("/"), 400, None);
    load.wait_answered(1500).await;
    // The fix of a weight typo ships, then b2 dies a few seconds later.
    t.write_config(&cfg(&bs, &[1, 1, 1, 1], pool, None, NO_GUARD));
    let (s, r) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, r["generation"].as_u64()), (200, Some(2)), "{r}");
    load.wait_answered(3000).await;
    bs[1].state.fail_status.store(500, Relaxed);
    let i = wait_incident(
        &t,
        Duration::from_secs(15),
        "an incident on b2",
        open_on("b2", "under_share"),
    )
    .await;
    load.stop().await;

    let events = journal(&t).await;
    let ejected: Vec<&Value> = events.iter().filter(|e| e["type"] == "ejected").collect();
    assert_eq!(ejected.len(), 1, "{events:#?}");
    assert_eq!(
        (
            &ejected[0]["pool"],
            &ejected[0]["backend"],
            &ejected[0]["reason"]
        ),
        (
            &"p".into(),
            &"b2".into(),
            &"3 consecutive failures (ejection #1)".into()
        )
    );
    let head = &i["signals"][0]["evidence"];
    assert_eq!(i["cause"]["class"], "health", "{i:#}");
    assert!(
        i["cause"]["generation"].is_null(),
        "the fix is not the cause: {i:#}"
    );
    assert_eq!(
        i["cause"]["sentence"],
        format!(
            "b2 is taking {:.1}x its share since {}; likely cause: health, b2 was ejected at {} (3 consecutive failures (ejection #1))",
            head["ratio"].as_f64().unwrap(),
            clock(head["onset_ms"].as_u64().unwrap()),
            clock(ejected[0]["ts_ms"].as_u64().unwrap())
        )
    );
    let opened = events
        .iter()
        .position(|e| e["type"] == "incident_opened" && e["incident"]["id"] == i["id"])
        .unwrap();
    let eject = events.iter().position(|e| e["type"] == "ejected").unwrap();
    assert!(eject < opened, "{events:#?}");
    let lines: Vec<Value> = alert_lines(&t)
        .into_iter()
        .filter(|l| l["backend"] == "b2")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_beside_an_unrelated_weight_change_is_blamed_on_itself() {
    let bs = four_backends().await;
    let state = tempfile::tempdir().unwrap();
    let t = Tango::start_with(
        &cfg(&bs, &[10, 10, 10, 10], "", Some(state.path()), ""),
        &["--log-format", "json"],
    );
    let load = Load::start(t.url("/"), 200, None);
    load.wait_answered(1000).await;
    // A small weight change to b2 goes through the guard...
    t.write_config(&cfg(&bs, &[10, 11, 10, 10], "", Some(state.path()), ""));
    let (s, r) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, r["generation"].as_u64()), (200, Some(2)), "{r}");
    // ...and a moment later b4 becomes slow, for reasons of its own.
    load.wait_answered(1400).await;
    bs[3].state.delay_ms.store(150, Relaxed);
    let i = wait_incident(
        &t,
        Duration::from_secs(30),
        "a latency incident on b4",
        open_on("b4", "latency"),
    )
    .await;
    load.stop().await;

    let head = &i["signals"][0]["evidence"];
    assert_eq!(i["cause"]["class"], "backend", "{i:#}");
    assert!(i["cause"]["generation"].is_null(), "{i:#}");
    let sentence = i["cause"]["sentence"].as_str().unwrap();
    assert_eq!(
        sentence,
        format!(
            "b4's p99 latency has been {:.1}x the other backends' ({:.0} ms vs {:.0} ms) since {}; no configuration change touched b4 or pool p's policy, hashing, health or timeout settings in the 5 minutes before; b4 itself is slower",
            head["ratio"].as_f64().unwrap(),
            head["observed"].as_f64().unwrap(),
            head["expected"].as_f64().unwrap(),
            clock(head["onset_ms"].as_u64().unwrap()),
        )
    );
    // The weight change was there to be blamed, before the onset.
    let events = journal_file(state.path());
    let change = events
        .iter()
        .find(|e| e["type"] == "config_applied" && e["generation"] == 2)
        .unwrap();
    assert_eq!(change["changes"][0]["backend"], "b2");
    assert!(change["ts_ms"].as_u64().unwrap() < head["onset_ms"].as_u64().unwrap());
    // The log and the timeline say the same.
    let lines: Vec<Value> = alert_lines(&t)
        .into_iter()
        .filter(|l| l["backend"] == "b4")
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["message"], format!("ALERT {sentence}"));
    let path = state.path().join("journal.jsonl");
    let timeline = tango(&["timeline", "--journal", path.to_str().unwrap()]);
    let told = format!("INCIDENT {} opened: {sentence}", i["id"].as_str().unwrap());
    assert_eq!(
        timeline.lines().filter(|l| l.ends_with(&told)).count(),
        1,
        "{timeline}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_raised_step_by_step_is_named_as_the_series() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, &[10, 10, 10, 10], "", None, NO_GUARD));
    let load = Load::start(t.url("/"), 400, None);
    load.wait_answered(1500).await;
    // b2's weight goes up by one every 1.5 s, each step a reload, until the watch says
    // something (at the latest at 30, three times its start).
    let mut steps: Vec<(u32, u64)> = Vec::new();
    let mut found = None;
    let end = Instant::now() + Duration::from_secs(60);
    for w2 in 11..=30u32 {
        t.write_config(&cfg(&bs, &[10, w2, 10, 10], "", None, NO_GUARD));
        let (s, r) = admin_post(&t, "/api/v1/reload").await;
        assert_eq!(s, 200, "{r}");
        steps.push((w2, r["generation"].as_u64().unwrap()));
        let paced = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < paced && found.is_none() {
            let v = admin_get(&t, "/api/v1/alerts").await;
            found = v["open"].as_array().unwrap().first().cloned();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if found.is_some() || Instant::now() > end {
            break;
        }
    }
    load.stop().await;
    let i = found.unwrap_or_else(|| panic!("no incident after {steps:?}:\n{}", t.log()));
    assert_eq!(
        (&i["headline"], &i["kind"]),
        (&"b2".into(), &"over_share".into()),
        "{i:#}"
    );
    let c = &i["cause"];
    let s = &c["series"];
    assert_eq!(
        (&c["class"], &s["backend"], &s["from"]),
        (&"config".into(), &"b2".into(), &10.into()),
        "{i:#}"
    );
    let reloads = s["reloads"].as_u64().unwrap();
    assert!(reloads >= 3, "a series, not the last step: {i:#}");
    assert_eq!(s["first_generation"], 2);
    assert_eq!(s["last_generation"].as_u64(), Some(reloads + 1));
    assert_eq!(s["to"].as_u64(), Some(10 + reloads));
    let head = &i["signals"][0]["evidence"];
    assert_eq!(
        c["sentence"],
        format!(
            "b2 is taking {:.1}x its share since {}; likely cause: b2's weight went from 10 to {} over {reloads} reloads since {} (config generations 2 to {}, the last at {})",
            head["ratio"].as_f64().unwrap(),
            clock(head["onset_ms"].as_u64().unwrap()),
            10 + reloads,
            clock(s["since_ms"].as_u64().unwrap()),
            reloads + 1,
            clock(c["at_ms"].as_u64().unwrap())
        )
    );
}

/// A reload changes the pool's try_timeout (its canary armed), then b3 starts failing
/// several seconds later for reasons of its own: the errors are b3's, not the reload's,
/// and the reload is not rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_failing_seconds_after_a_pool_wide_reload_is_blamed_on_itself_not_rolled_back() {
    let bs = four_backends().await;
    let pool = |t: &str| format!("max_attempts = 1\ntry_timeout = \"{t}\"\n");
    let t = Tango::start(&cfg(&bs, &[1, 1, 1, 1], &pool("5s"), None, ""));
    let load = Load::start(t.url("/"), 200, None);
    load.wait_answered(600).await;
    t.write_config(&cfg(&bs, &[1, 1, 1, 1], &pool("4s"), None, ""));
    let (s, r) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(
        (s, r["canary"]["generation"].as_u64()),
        (200, Some(2)),
        "{r}"
    );
    // b3 serves normally under the new setting for several seconds, then fails.
    let reloaded = Instant::now();
    let served = load.answered() + 1500;
    load.wait_answered(served).await;
    assert!(reloaded.elapsed() > Duration::from_secs(6));
    bs[2].state.fail_status.store(500, Relaxed);
    let i = wait_incident(
        &t,
        Duration::from_secs(20),
        "an error incident on b3",
        open_on("b3", "errors"),
    )
    .await;
    load.stop().await;

    assert_eq!(i["cause"]["class"], "backend", "{i:#}");
    assert!(i["cause"]["generation"].is_null(), "{i:#}");
    let sentence = i["cause"]["sentence"].as_str().unwrap();
    assert!(
        sentence.contains("changed pool p's try_timeout from 5s to 4s, ")
            && sentence.ends_with("b3 itself is failing"),
        "{sentence}"
    );
    let events = journal(&t).await;
    assert!(
        !events.iter().any(|e| e["type"] == "config_rolled_back"),
        "{events:#?}"
    );
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 2);
}
