//! Slow start through the proxy: a backend a reload adds ramps from a tenth of its
//! share to all of it over `slow_start`, not at once and not never, while the backends
//! tango started with are at full weight from the start.

use crate::backend::Backend;
use crate::support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The canary would judge the new backend by the watch, which is not under test here.
const NO_ROLLBACK: &str = "\n[guard]\nrollback = false\n";

fn weight(status: &Value, name: &str) -> f64 {
    status["pools"][0]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| b["name"] == name)
        .and_then(|b| b["effective_weight"].as_f64())
        .unwrap_or_else(|| panic!("{name} not in {status}"))
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
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let spec: Vec<(&str, SocketAddr, u32)> =
        bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect();
    let pool = "policy = \"round_robin\"\nslow_start = \"3s\"\n";
    let file = |n: usize| config(pool, &spec[..n]) + NO_ROLLBACK;
    let t = Tango::start(&file(2));
    let c = client();

    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(weight(&s, "a"), 1.0, "a started with tango, yet ramps: {s}");

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
        assert!(Instant::now() < deadline, "c never reached full weight: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp = added.elapsed();
    assert!(
        ramp >= Duration::from_millis(2800),
        "a 3 s slow start was over after {ramp:?}"
    );
    let (n, to_c) = share_until(&c, &t, &bs[2], Instant::now() + Duration::from_millis(500)).await;
    let full = to_c as f64 / n as f64;
    assert!(
        (full - 1.0 / 3.0).abs() < 0.03,
        "after its ramp c took {full:.3} of {n} requests, not a third"
    );
}
