//! Slow start through the proxy: a backend a reload adds ramps from a tenth of its
//! share to all of it over `slow_start`, not at once and not never, while the backends
//! tango started with are at full weight from the start; in panic mode nothing ramps.

use crate::backend::Backend;
use crate::support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn weight(status: &Value, name: &str) -> f64 {
    backend_entry(status, name)["effective_weight"]
        .as_f64()
        .expect("effective_weight")
}

/// Backends named `names`, started.
async fn backends(names: &[&str]) -> Vec<Backend> {
    let mut bs = Vec::new();
    for n in names {
        bs.push(Backend::start(n).await);
    }
    bs
}

/// Each of `bs` at weight 1, as [`config`] takes them.
fn weight_one(bs: &[Backend]) -> Vec<(&str, SocketAddr, u32)> {
    bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect()
}

/// Sequential GETs until `until`: (requests, how many `backend` answered).
async fn share_until(c: &HttpClient, t: &Tango, backend: &Backend, until: Instant) -> (u64, u64) {
    let before = backend.hits();
    let mut n = 0;
    while Instant::now() < until {
        let (s, body) = get(c, &t.url("/")).await;
        assert_eq!(s, 200, "{body}");
        n += 1;
    }
    (n, backend.hits() - before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_a_reload_adds_ramps_up_over_slow_start() {
    let bs = backends(&["a", "b", "c"]).await;
    let spec = weight_one(&bs);
    let pool = "policy = \"round_robin\"\nslow_start = \"3s\"\n";
    // The reload's canary watches too (rollback is on by default): the new backend's
    // first reading must not read as an under-share and roll the reload back.
    let file = |n: usize| config(pool, &spec[..n]);
    let t = Tango::start(&file(2));
    let c = client();

    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(weight(&s, "a"), 1.0, "a started with tango, yet ramps: {s}");
    assert_eq!(s["generation"], 1);

    t.write_config(&file(3));
    let (code, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(code, 200, "{v}");
    let added = Instant::now();
    // Over the first half second c's factor climbs from 0.1 to 0.25: a share of 5% to
    // 11%, nowhere near the third it takes at full weight.
    let (n, to_c) = share_until(&c, &t, &bs[2], added + Duration::from_millis(500)).await;
    let early = to_c as f64 / n as f64;
    assert!(
        to_c > 0 && early < 0.15,
        "c took {to_c} of {n} requests ({early:.3}) in its first 500 ms"
    );

    let deadline = added + Duration::from_secs(6);
    loop {
        let s = admin_get(&t, "/api/v1/status").await;
        if weight(&s, "c") == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "c never reached full weight: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp = added.elapsed();
    assert!(
        ramp >= Duration::from_millis(2800),
        "a 3 s slow start was over after {ramp:?}"
    );
    let (n, to_c) = share_until(&c, &t, &bs[2], Instant::now() + Duration::from_millis(500)).await;
    let full = to_c as f64 / n as f64;
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(s["generation"], 2, "the reload was rolled back: {s}");
    assert!(
        (full - 1.0 / 3.0).abs() < 0.03,
        "after its ramp c took {full:.3} of {n} requests, not a third"
    );
}

fn healthy(status: &Value, name: &str) -> bool {
    backend_entry(status, name)["healthy"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_panic_mode_a_recovered_backend_takes_its_full_share() {
    let bs = backends(&["a", "b", "c", "d"]).await;
    let spec = weight_one(&bs);
    let pool = "policy = \"round_robin\"\nslow_start = \"60s\"\npanic_threshold = 0.75\nmax_attempts = 1\n\
        [pool.health]\npath = \"/health\"\ninterval = \"100ms\"\nrise = 1\nfall = 1\njitter = 0.0\n";
    let t = Tango::start(&config(pool, &spec));
    let c = client();
    // Three of four down: panic, every backend (the three included) at full share.
    for b in &bs[..3] {
        b.state.health_status.store(503, Relaxed);
    }
    wait_status(&t, "a, b, c down", Duration::from_secs(5), |s| {
        !["a", "b", "c"].iter().any(|n| healthy(s, n))
    })
    .await;
    // c comes back: two of four is still below 0.75, so the pool stays in panic, and c
    // (healthy, ramping) must not take a tenth of what a and b (down) take.
    bs[2].state.health_status.store(200, Relaxed);
    let s = wait_status(&t, "c back", Duration::from_secs(5), |s| healthy(s, "c")).await;
    assert_eq!(weight(&s, "c"), 1.0, "in panic mode c ramps: {s}");
    let (n, to_c) = share_until(&c, &t, &bs[2], Instant::now() + Duration::from_millis(500)).await;
    let share = to_c as f64 / n as f64;
    assert!(
        (share - 0.25).abs() < 0.05,
        "in panic mode recovered c took {share:.3} of {n} requests, not a quarter"
    );
    assert!(t.log().contains("panic mode"), "{}", t.log());
}

/// GETs carrying header `x-k: k(i)` for i = 1, 2, 3, ... from `lanes` loops between
/// them, until `done` says stop.
async fn keyed(c: &HttpClient, url: &str, lanes: u64, done: impl Fn() -> bool) {
    let done = &done;
    let loops = (0..lanes).map(|lane| async move {
        let mut i = lane + 1;
        while !done() {
            let key = format!("k{}", i.wrapping_mul(2654435761) % 100000);
            let req = http::Request::get(url)
                .header("x-k", key)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let r = c.request(req).await.unwrap();
            assert_eq!(r.status(), 200);
            i += lanes;
        }
    });
    futures_util::future::join_all(loops).await;
}

/// Requests the hash pool serves before the reload: about 200 in the guard's sample.
const WARM_REQUESTS: u64 = 3200;

/// A hash pool's expectation is its key space: a backend a reload adds, ramping in slow
/// start, is expected at its ramp's part of its keys, so the reload's canary (on by
/// default) keeps the reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_a_reload_adds_to_a_hash_pool_ramps_without_a_rollback() {
    let bs = backends(&["a", "b", "c"]).await;
    let spec = weight_one(&bs);
    let pool = "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-k\" }\nslow_start = \"3s\"\n";
    let file = |n: usize| config(pool, &spec[..n]);
    let t = Tango::start(&file(2));
    let c = client();
    // Until the pool has served enough for the reload guard's sample of its requests (one
    // in 16) to predict the split within a few points: a guard reading a score of them,
    // as it did in 1.5 s on a loaded machine, predicted splits off by 15 points and more,
    // and refused the reload or had the canary judge it against that.
    let served = || bs.iter().map(Backend::hits).sum::<u64>();
    keyed(&c, &t.url("/"), 4, || served() >= WARM_REQUESTS).await;
    t.write_config(&file(3));
    let (code, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(code, 200, "{v}");
    // The same keys again from the first, so the split is the one the sample predicts.
    let until = Instant::now() + Duration::from_secs(5);
    keyed(&c, &t.url("/"), 1, || Instant::now() >= until).await;
    let s = admin_get(&t, "/api/v1/status").await;
    let j = admin_get(&t, "/api/v1/journal").await;
    assert_eq!(s["generation"], 2, "the reload was rolled back: {j}");
    assert!(bs[2].hits() > 0, "c never served: {s}");
}
