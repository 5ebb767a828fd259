//! Hash pools: what the keys explain and what they do not. At a low rate every key is
//! seen about once, which says nothing about the pool (the old one-second sample blamed
//! "only ~4 distinct keys" for a weight change); a key that carries most requests is
//! named with its share and the backend it maps to.

use super::harness::*;
use crate::support::*;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tango_core::journal::clock;

const RING: &str = "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-user\" }\non_missing_key = \"random\"\n";

/// The backend a request with `x-user: user` goes to.
async fn owner(t: &Tango, user: &str) -> String {
    let req = http::Request::get(t.url("/"))
        .header("x-user", user)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let (s, body) = send(&client(), req).await;
    assert_eq!(s, 200, "{body}");
    body.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_change_in_a_hash_pool_at_a_low_rate_is_blamed_on_the_change() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, &[1, 1, 1, 1], RING, None, NO_GUARD));
    // 80 requests/s, 5,000 users: each key is sampled about once in the window.
    let user: User = Arc::new(|i| format!("user-{}", i % 5000));
    let load = Load::start(t.url("/"), 80, Some(user));
    load.wait_answered(600).await;
    t.write_config(&cfg(&bs, &[4, 1, 1, 1], RING, None, NO_GUARD));
    let (s, r) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, r["generation"].as_u64()), (200, Some(2)), "{r}");
    let i = wait_incident(
        &t,
        Duration::from_secs(40),
        "an incident on b1",
        open_on("b1", "over_share"),
    )
    .await;
    load.stop().await;
    let head = &i["signals"][0]["evidence"];
    // The detector itself found nothing in the keys, and its evidence names the same
    // cause as the incident, even when a quiet tick came between the reload and the alert.
    assert_eq!(head["cause"], "config", "{i:#}");
    assert_eq!(
        (&i["cause"]["class"], &i["cause"]["generation"]),
        (&"config".into(), &2.into()),
        "{i:#}"
    );
    assert_eq!(
        i["cause"]["sentence"],
        format!(
            "b1 is taking {:.1}x its share since {}; likely cause: config generation 2 (reload at {}), which changed b1's weight from 1 to 4",
            head["ratio"].as_f64().unwrap(),
            clock(head["onset_ms"].as_u64().unwrap()),
            clock(i["cause"]["at_ms"].as_u64().unwrap())
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_is_named_with_its_share_and_its_backend() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, &[1, 1, 1, 1], RING, None, NO_GUARD));
    let hot = owner(&t, "anonymous").await;
    // Nine requests in ten carry the same value (a default a client fills in).
    let user: User = Arc::new(|i| match i % 10 {
        0 => format!("user-{i}"),
        _ => "anonymous".to_string(),
    });
    let load = Load::start(t.url("/"), 400, Some(user));
    let i = wait_incident(
        &t,
        Duration::from_secs(20),
        "an incident on the hot key's backend",
        |i| i["headline"] == hot.as_str() && i["kind"] == "over_share",
    )
    .await;
    load.stop().await;
    let head = &i["signals"][0]["evidence"];
    assert_eq!(i["cause"]["class"], "key_distribution", "{i:#}");
    let sentence = i["cause"]["sentence"].as_str().unwrap();
    let lead = format!(
        "{hot} is taking {:.1}x its share since {}; likely cause: the key distribution (one key value carries ",
        head["ratio"].as_f64().unwrap(),
        clock(head["onset_ms"].as_u64().unwrap())
    );
    let tail = format!("% of requests and maps to {hot})");
    assert!(
        sentence.starts_with(&lead) && sentence.ends_with(&tail),
        "{sentence}"
    );
    let pct: u32 = sentence[lead.len()..sentence.len() - tail.len()]
        .parse()
        .unwrap();
    assert!((80..=98).contains(&pct), "about 90%: {sentence}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_collapsing_onto_one_value_are_blamed_on_the_key_distribution() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, &[1, 1, 1, 1], RING, None, ""));
    let hot = owner(&t, "anonymous").await;
    // Many users for a while, then every request carries the same value (a client bug,
    // a default filled in by a proxy): one backend takes everything.
    let collapsed = Arc::new(AtomicBool::new(false));
    let c2 = collapsed.clone();
    let user: User = Arc::new(move |i| match c2.load(Relaxed) {
        true => "anonymous".to_string(),
        false => format!("user-{}", i % 5000),
    });
    let load = Load::start(t.url("/"), 400, Some(user));
    load.wait_answered(1200).await;
    collapsed.store(true, Relaxed);
    let i = wait_incident(
        &t,
        Duration::from_secs(15),
        "an incident on the hot key's backend",
        |i| i["headline"] == hot.as_str() && i["kind"] == "over_share",
    )
    .await;
    load.stop().await;
    assert_eq!(i["cause"]["class"], "key_distribution", "{i:#}");
    let sentence = i["cause"]["sentence"].as_str().unwrap();
    assert!(
        sentence.contains("; likely cause: the key distribution (one key value carries ")
            && sentence.ends_with(&format!("% of requests and maps to {hot})")),
        "{sentence}"
    );
}
