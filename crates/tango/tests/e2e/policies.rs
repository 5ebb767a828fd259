//! Health checks, outlier ejection, key hashing and panic mode, seen from outside: the
//! real binary, real backends on loopback, state read from `/api/v1/status` and the
//! backends' own hit counters. Every wait polls for the event with a deadline.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Fast, deterministic probing: a backend goes down after 2 failed probes 200 ms apart.
const HEALTH: &str = "[pool.health]\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"500ms\"\nrise = 2\nfall = 2\njitter = 0.0\n";
const INTERVAL: Duration = Duration::from_millis(200);
const FALL: u32 = 2;

async fn start_backends(names: &[&str]) -> Vec<Backend> {
    let mut out = Vec::new();
    for n in names {
        out.push(Backend::start(n).await);
    }
    out
}

fn spec(bs: &[Backend]) -> Vec<(&str, SocketAddr, u32)> {
    bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect()
}

fn with_trusted_proxies(cfg: String) -> String {
    cfg.replacen(
        "name = \"main\"\n",
        "name = \"main\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
        1,
    )
}

/// Poll tango's log until it contains `needle`.
async fn wait_log(t: &Tango, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !t.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "log never said {needle:?}; log:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn healthy(s: &Value, name: &str) -> bool {
    backend_entry(s, name)["healthy"]
        .as_bool()
        .expect("healthy")
}

fn ejected(s: &Value, name: &str) -> bool {
    backend_entry(s, name)["ejected"]
        .as_bool()
        .expect("ejected")
}

/// GET `/` with optional extra header; returns status and the answering backend's name.
async fn get_with(c: &HttpClient, t: &Tango, header: Option<(&str, &str)>) -> (u16, String) {
    let mut req = http::Request::get(t.url("/"));
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    let (s, body) = send(c, req.body(Full::new(Bytes::new())).unwrap()).await;
    (s, body.trim_end().to_string())
}

/// `n` sequential GETs, each must succeed; returns how many each backend answered.
async fn spread(c: &HttpClient, t: &Tango, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let (s, who) = get_with(c, t, None).await;
        assert_eq!(s, 200, "{who}");
        *seen.entry(who).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_checks_take_a_backend_out_and_slow_start_ramps_it_back() {
    let bs = start_backends(&["a", "b", "c"]).await;
    let t = Tango::start(&config(
        &format!("slow_start = \"2s\"\nmax_attempts = 1\n{HEALTH}"),
        &spec(&bs),
    ));
    let c = client();
    // Probes run and pass before anything changes.
    wait_status(&t, "first probes", Duration::from_secs(5), |_| {
        bs.iter().all(|b| b.state.health_hits.load(Relaxed) >= 2)
    })
    .await;

    let flipped = Instant::now();
    bs[0].state.health_status.store(503, Relaxed);
    wait_status(&t, "a unhealthy", Duration::from_secs(5), |s| {
        !healthy(s, "a")
    })
    .await;
    let took = flipped.elapsed();
    assert!(
        took <= INTERVAL * FALL + Duration::from_secs(1),
        "a went unhealthy only after {took:?}"
    );
    let before = bs[0].hits();
    let seen = spread(&c, &t, 60).await;
    assert_eq!(bs[0].hits(), before, "unhealthy a got traffic: {seen:?}");
    assert!(seen.contains_key("b") && seen.contains_key("c"), "{seen:?}");
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(
        backend_entry(&s, "a")["effective_weight"].as_f64(),
        Some(0.0),
        "{s}"
    );

    bs[0].state.health_status.store(200, Relaxed);
    let s = wait_status(&t, "a healthy again", Duration::from_secs(5), |s| {
        healthy(s, "a")
    })
    .await;
    let recovered = Instant::now();
    let configured = backend_entry(&s, "a")["configured_weight"]
        .as_f64()
        .unwrap();
    let effective = backend_entry(&s, "a")["effective_weight"].as_f64().unwrap();
    assert!(
        effective > 0.0 && effective < configured,
        "right after recovery a should be ramping: effective {effective}, configured {configured}"
    );
    wait_status(&t, "a at full weight", Duration::from_secs(5), |s| {
        backend_entry(s, "a")["effective_weight"].as_f64() == Some(configured)
    })
    .await;
    let ramp = recovered.elapsed();
    assert!(
        ramp >= Duration::from_millis(1500),
        "slow start of 2s reached full weight after only {ramp:?}"
    );
    let before = bs[0].hits();
    spread(&c, &t, 30).await;
    assert!(bs[0].hits() > before, "recovered a gets no traffic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_5xx_eject_a_backend_until_the_ejection_time_has_passed() {
    let bs = start_backends(&["a", "b", "c"]).await;
    let t = Tango::start(&config(
        "policy = \"round_robin\"\nmax_attempts = 1\n[pool.outlier]\nconsecutive_failures = 3\nbase_ejection = \"1s\"\n",
        &spec(&bs),
    ));
    let c = client();
    bs[0].state.fail_status.store(500, Relaxed);
    // Sequential requests: a sees exactly its three failures, then is out.
    let mut third_failure = None;
    for _ in 0..30 {
        let (s, who) = get_with(&c, &t, None).await;
        if who.starts_with("a ") {
            assert_eq!(s, 500);
        }
        if bs[0].hits() == 3 {
            third_failure = Some(Instant::now());
            break;
        }
    }
    let third_failure = third_failure.expect("a never saw three requests");
    let s = admin_get(&t, "/api/v1/status").await;
    assert!(
        ejected(&s, "a"),
        "a not ejected after 3 consecutive 500s: {s}"
    );
    assert!(!ejected(&s, "b") && !ejected(&s, "c"), "{s}");

    // While ejected (base_ejection 1s, checked again afterwards), a gets nothing.
    let seen = spread(&c, &t, 30).await;
    assert_eq!(bs[0].hits(), 3, "ejected a got traffic: {seen:?}");
    let s = admin_get(&t, "/api/v1/status").await;
    assert!(
        ejected(&s, "a"),
        "the burst outlasted the ejection; make it shorter"
    );

    bs[0].state.fail_status.store(0, Relaxed);
    wait_status(&t, "a returned", Duration::from_secs(5), |s| {
        !ejected(s, "a")
    })
    .await;
    let out_for = third_failure.elapsed();
    assert!(
        out_for >= Duration::from_millis(900),
        "a returned after {out_for:?}, before its 1s ejection ended"
    );
    let seen = spread(&c, &t, 30).await;
    assert!(
        bs[0].hits() > 3,
        "a gets no traffic after returning: {seen:?}"
    );
    assert!(seen.contains_key("a"), "{seen:?}");
}

/// One backend name per client address sent in X-Forwarded-For, checking that the
/// same address lands on the same backend every time.
async fn owners_by_xff(c: &HttpClient, t: &Tango, n: u8) -> HashSet<String> {
    let mut owners = HashSet::new();
    for i in 0..n {
        let ip = format!("198.51.100.{i}");
        let (s, first) = get_with(c, t, Some(("x-forwarded-for", &ip))).await;
        assert_eq!(s, 200, "{first}");
        for _ in 0..3 {
            let (_, again) = get_with(c, t, Some(("x-forwarded-for", &ip))).await;
            assert_eq!(again, first, "client {ip} moved between backends");
        }
        owners.insert(first);
    }
    owners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_address_hashing_reads_forwarded_for_only_from_trusted_proxies() {
    let bs = start_backends(&["a", "b", "c"]).await;
    let pool = "policy = \"ring_hash\"\nhash_key = { source = \"client_address\" }\n";
    let c = client();

    let trusted = Tango::start(&with_trusted_proxies(config(pool, &spec(&bs))));
    let owners = owners_by_xff(&c, &trusted, 40).await;
    assert!(
        owners.len() >= 2,
        "40 client addresses behind a trusted proxy all landed on {owners:?}"
    );
    drop(trusted);

    // Not trusted: the header is the client's own claim, and the client is 127.0.0.1.
    let untrusted = Tango::start(&config(pool, &spec(&bs)));
    let owners = owners_by_xff(&c, &untrusted, 40).await;
    assert_eq!(
        owners.len(),
        1,
        "X-Forwarded-For from an untrusted peer moved requests: {owners:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_hash_key_follow_on_missing_key() {
    let bs = start_backends(&["a", "b", "c"]).await;
    let pool = |missing: &str| {
        format!(
            "policy = \"ring_hash\"\nhash_key = {{ source = \"header\", name = \"x-user\" }}\non_missing_key = \"{missing}\"\n"
        )
    };
    let c = client();

    let t = Tango::start(&config(&pool("reject"), &spec(&bs)));
    let (s, body) = get_with(&c, &t, None).await;
    assert_eq!(s, 400, "{body}");
    let total = |bs: &[Backend]| bs.iter().map(Backend::hits).sum::<u64>();
    assert_eq!(total(&bs), 0, "a rejected request reached a backend");
    let (s, _) = get_with(&c, &t, Some(("x-user", "alice"))).await;
    assert_eq!(s, 200, "with the key the request goes through");
    assert_eq!(total(&bs), 1);
    drop(t);

    for missing in ["random", "round_robin"] {
        let t = Tango::start(&config(&pool(missing), &spec(&bs)));
        let seen = spread(&c, &t, 60).await;
        assert!(
            seen.len() >= 2,
            "{missing}: 60 keyless requests all went to {seen:?}"
        );
        let mut owners = HashSet::new();
        for i in 0..20 {
            let user = format!("user-{i}");
            let (s, first) = get_with(&c, &t, Some(("x-user", &user))).await;
            assert_eq!(s, 200, "{first}");
            for _ in 0..3 {
                let (_, again) = get_with(&c, &t, Some(("x-user", &user))).await;
                assert_eq!(again, first, "{missing}: key {user} moved between backends");
            }
            owners.insert(first);
        }
        assert!(owners.len() >= 2, "{missing}: 20 keys all on {owners:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_healthy_backends_put_the_pool_in_panic_mode() {
    let bs = start_backends(&["a", "b", "c", "d"]).await;
    let t = Tango::start(&config(
        &format!("panic_threshold = 0.5\nmax_attempts = 1\n{HEALTH}"),
        &spec(&bs),
    ));
    let c = client();
    let hits = |bs: &[Backend]| bs.iter().map(Backend::hits).collect::<Vec<_>>();

    // Two of four down: half remain, which is not below the threshold.
    for b in &bs[..2] {
        b.state.health_status.store(503, Relaxed);
    }
    wait_status(&t, "a, b unhealthy", Duration::from_secs(5), |s| {
        !healthy(s, "a") && !healthy(s, "b")
    })
    .await;
    let before = hits(&bs);
    spread(&c, &t, 40).await;
    let after = hits(&bs);
    assert_eq!(
        after[..2],
        before[..2],
        "unhealthy backends got traffic outside panic mode"
    );
    assert!(
        !t.log().contains("panic mode"),
        "panic mode with half the pool healthy"
    );

    // Three of four down: a quarter is below 0.5, so balance across all of them.
    bs[2].state.health_status.store(503, Relaxed);
    wait_status(&t, "c unhealthy", Duration::from_secs(5), |s| {
        !healthy(s, "c")
    })
    .await;
    wait_log(&t, "panic mode", Duration::from_secs(5)).await;
    let before = hits(&bs);
    let seen = spread(&c, &t, 80).await;
    let after = hits(&bs);
    for (i, b) in bs[..3].iter().enumerate() {
        assert!(
            after[i] > before[i],
            "in panic mode unhealthy {} got no traffic: {seen:?}",
            b.name
        );
    }
    let s = admin_get(&t, "/api/v1/status").await;
    assert!(
        backend_entry(&s, "a")["effective_weight"].as_f64().unwrap() > 0.0,
        "in panic mode an unhealthy backend has weight: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_panic_threshold_a_pool_with_no_healthy_backend_answers_503() {
    let bs = start_backends(&["a", "b"]).await;
    let t = Tango::start(&config(
        &format!("panic_threshold = 0.0\nmax_attempts = 1\n{HEALTH}"),
        &spec(&bs),
    ));
    let c = client();
    let (s, _) = get_with(&c, &t, None).await;
    assert_eq!(s, 200);
    for b in &bs {
        b.state.health_status.store(503, Relaxed);
    }
    wait_status(&t, "all unhealthy", Duration::from_secs(5), |s| {
        !healthy(s, "a") && !healthy(s, "b")
    })
    .await;
    let before: u64 = bs.iter().map(Backend::hits).sum();
    for _ in 0..10 {
        let (s, body) = get_with(&c, &t, None).await;
        assert_eq!(s, 503, "{body}");
    }
    assert_eq!(bs.iter().map(Backend::hits).sum::<u64>(), before);
    assert!(
        !t.log().contains("panic mode"),
        "threshold 0 must never panic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_gets_nothing_and_does_not_hold_off_panic_mode() {
    let bs = start_backends(&["a", "z1", "z2"]).await;
    let weights = [1, 0, 0];
    let spec: Vec<(&str, SocketAddr, u32)> = bs
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.name.as_str(), b.addr, w))
        .collect();
    let t = Tango::start(&config(
        &format!("panic_threshold = 0.5\nmax_attempts = 1\n{HEALTH}"),
        &spec,
    ));
    let c = client();
    // The one backend that serves fails its checks: the standbys of weight 0 are not a
    // healthy majority, so the pool panics and keeps sending to a.
    bs[0].state.health_status.store(503, Relaxed);
    wait_status(&t, "a unhealthy", Duration::from_secs(5), |s| {
        !healthy(s, "a")
    })
    .await;
    wait_log(&t, "panic mode", Duration::from_secs(5)).await;
    let seen = spread(&c, &t, 40).await;
    assert_eq!(seen.get("a"), Some(&40), "{seen:?}");
    assert_eq!(bs[1].hits() + bs[2].hits(), 0, "weight 0 got traffic");
    drop(t);

    // Nor as a retry target: the dead backend's requests are retried on b, never on z.
    let b = Backend::start("b").await;
    let t = Tango::start(&config(
        "policy = \"round_robin\"\n",
        &[
            ("dead", dead_addr(), 1),
            ("b", b.addr, 1),
            ("z1", bs[1].addr, 0),
        ],
    ));
    let seen = spread(&c, &t, 40).await;
    assert_eq!(seen.get("b"), Some(&40), "{seen:?}");
    assert_eq!(bs[1].hits(), 0, "weight 0 got a retry");
}
