//! Traffic follows the weights, and retries do not bend it.

use crate::backend::Backend;
use crate::support::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_weighted_policy_follows_the_weights() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
        Backend::start("d").await,
        Backend::start("z").await,
    ];
    let weights = [1u32, 2, 3, 4, 0];
    let spec: Vec<(&str, _, u32)> = bs
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.name.as_str(), b.addr, w))
        .collect();
    // Points a share may be off: round robin is exact over each period; a random draw
    // of 8,000 is within 0.6 points at four standard deviations; least_request reacts
    // to in-flight counts, which a busy machine makes noisy. peak_ewma follows latency
    // by design, and on a machine running the whole suite the backends' latencies are
    // not alike (its lightest backend measured 15% against 10% then, 9.9% alone): it is
    // held to its purpose here, weight 0 nothing and every other backend some.
    for (policy, points) in [
        ("round_robin", 0.5),
        ("random", 2.0),
        ("least_request", 4.0),
        ("peak_ewma", 100.0),
    ] {
        let before: Vec<u64> = bs.iter().map(Backend::hits).collect();
        let t = Tango::start(&config(&format!("policy = \"{policy}\""), &spec));
        let c = client();
        let total = 8_000u64;
        // 8 concurrent loops, 1,000 requests each: bounded in count.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let c = c.clone();
            let url = t.url("/");
            tasks.push(tokio::spawn(async move {
                for _ in 0..total / 8 {
                    let (s, _) = get(&c, &url).await;
                    assert_eq!(s, 200);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let wsum: u32 = weights.iter().sum();
        for ((b, w), b0) in bs.iter().zip(weights).zip(&before) {
            let share = (b.hits() - b0) as f64 / total as f64;
            let want = f64::from(w) / f64::from(wsum);
            assert!(
                (share - want).abs() * 100.0 <= points && (share > 0.0) == (want > 0.0),
                "{policy}: {} has {share:.4}, want {want:.4}",
                b.name
            );
        }
        assert_eq!(bs[4].hits(), 0, "{policy}: weight 0 got traffic");
        // The status API agrees with what the backends saw.
        let status = admin_get(&t, "/api/v1/status").await;
        let seen: u64 = status["pools"][0]["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["requests"].as_u64().unwrap())
            .sum();
        assert_eq!(seen, total, "{policy}");
    }
}

/// A backend that reads each request and closes the connection without answering (a
/// try that was sent, then failed); counts the requests it got.
async fn closer() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    use tokio::io::AsyncReadExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let counter = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut b = [0u8; 4096];
                if matches!(s.read(&mut b).await, Ok(n) if n > 0) {
                    counter.fetch_add(1, Relaxed);
                }
            });
        }
    });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_keeps_its_share_of_first_tries_and_retries_keep_the_budget() {
    let good = Backend::start("good").await;
    let (bad, bad_got) = closer().await;
    // The defaults: max_attempts 2, retry_budget 0.2.
    let t = Tango::start(&config(
        "policy = \"round_robin\"",
        &[("bad", bad, 1), ("good", good.addr, 1)],
    ));
    let c = client();
    let n = 400u64;
    let mut ok = 0;
    for _ in 0..n {
        let (s, body) = get(&c, &t.url("/")).await;
        assert!(s == 200 || s == 502, "{s} {body}");
        ok += u64::from(s == 200);
    }
    // Round robin gives bad every other request. A retry that took the next slot made
    // bad the first try of every request: 400 of 400.
    let first_to_bad = bad_got.load(Relaxed);
    assert!(
        (180..=220).contains(&first_to_bad),
        "bad had {first_to_bad} of {n} first tries"
    );
    // Every retry went to good, and no more of them than the budget: 0.2 a request plus
    // the reserve of 10.
    let retries = good.hits() - (n - first_to_bad);
    assert_eq!(ok, good.hits(), "only good answers");
    assert!(
        (70..=91).contains(&retries),
        "{retries} retries of {first_to_bad} failures over {n} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_pools_retry_on_the_other_backend_within_the_budget() {
    let good = Backend::start("good").await;
    for policy in ["ring_hash", "maglev"] {
        let (bad, bad_got) = closer().await;
        let before = good.hits();
        let t = Tango::start(&config(
            &format!("policy = \"{policy}\"\nhash_key = {{ source = \"header\", name = \"x-k\" }}"),
            &[("bad", bad, 1), ("good", good.addr, 1)],
        ));
        let c = client();
        let n = 400u64;
        let mut ok = 0;
        for i in 0..n {
            let req = http::Request::get(t.url("/"))
                .header("x-k", format!("key-{i}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let (s, body) = send(&c, req).await;
            assert!(s == 200 || s == 502, "{policy}: {s} {body}");
            ok += u64::from(s == 200);
        }
        // bad owns about half the keys; each of its requests failed there once, and its
        // retry (while the budget lasted) went to the one other backend.
        let first_to_bad = bad_got.load(Relaxed);
        let answered = good.hits() - before;
        assert!(
            (120..=280).contains(&first_to_bad),
            "{policy}: {first_to_bad}"
        );
        assert_eq!(ok, answered, "{policy}: only good answers");
        let retries = answered - (n - first_to_bad);
        assert!(
            (70..=91).contains(&retries),
            "{policy}: {retries} retries of {first_to_bad} failures over {n} requests"
        );
    }
}

/// Which backend each of `keys` goes to now.
async fn homes(c: &HttpClient, t: &Tango, keys: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(keys);
    for i in 0..keys {
        let req = http::Request::get(t.url("/"))
            .header("x-k", format!("user-{i}"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let (s, body) = send(c, req).await;
        assert_eq!(s, 200, "{body}");
        out.push(body.trim_end().to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejected_backend_moves_only_its_keys_and_gets_them_back() {
    let mut bs = Vec::new();
    for n in ["a", "b", "c", "d", "e"] {
        bs.push(Backend::start(n).await);
    }
    let spec: Vec<(&str, std::net::SocketAddr, u32)> =
        bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect();
    for policy in ["ring_hash", "maglev"] {
        let t = Tango::start(&config(
            &format!(
                "policy = \"{policy}\"\nhash_key = {{ source = \"header\", name = \"x-k\" }}\nmax_attempts = 1\n[pool.outlier]\nconsecutive_failures = 1\nbase_ejection = \"2s\"\n"
            ),
            &spec,
        ));
        let c = client();
        let keys = 500;
        let before = homes(&c, &t, keys).await;
        assert_eq!(
            homes(&c, &t, keys).await,
            before,
            "{policy}: keys moved on their own"
        );
        // One 500 ejects c.
        let of_c = before.iter().position(|h| h == "c").expect("c owns a key");
        bs[2].state.fail_status.store(500, Relaxed);
        let req = http::Request::get(t.url("/"))
            .header("x-k", format!("user-{of_c}"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(send(&c, req).await.0, 500);
        bs[2].state.fail_status.store(0, Relaxed);
        let during = homes(&c, &t, keys).await;
        let mut moved = 0;
        for (b, d) in before.iter().zip(&during) {
            assert_ne!(d, "c", "{policy}: ejected c still got a key");
            if b != "c" {
                assert_eq!(b, d, "{policy}: a key of {b} moved when c left");
            } else {
                moved += 1;
            }
        }
        let share = f64::from(moved) / keys as f64;
        assert!(
            (0.12..=0.28).contains(&share),
            "{policy}: c had {share:.3} of the keys"
        );
        // Back after its ejection: every key home again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
        while homes(&c, &t, keys).await != before {
            assert!(
                std::time::Instant::now() < deadline,
                "{policy}: keys never came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bounded_load_caps_each_backend_by_its_weight_under_a_hot_key() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let weights = [1u32, 2, 3];
    let spec: Vec<(&str, std::net::SocketAddr, u32)> = bs
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.name.as_str(), b.addr, w))
        .collect();
    let t = Tango::start(&config(
        "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-k\" }\nmax_load_factor = 1.25\n",
        &spec,
    ));
    // 24 clients, 18 of them on one key: unbounded, its backend would hold 18 at once.
    let clients = 24;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let url = t.url("/slow?ms=30");
        tasks.push(tokio::spawn(async move {
            let c = client();
            let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
            let mut n = 0u64;
            while std::time::Instant::now() < end {
                let key = if i % 4 == 0 {
                    format!("cold-{i}-{n}")
                } else {
                    "hot".into()
                };
                let req = http::Request::get(&url)
                    .header("x-k", key)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                let (s, body) = send(&c, req).await;
                assert_eq!(s, 200, "{body}");
                n += 1;
            }
            n
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // 24 clients, so a backend of weight w may hold ceil(1.25 x 24 x w / 6): 5, 10 and
    // 15, however the workers race. One more is allowed: a request is counted until a
    // moment after its client has the answer, so that client's next request may be
    // placed with 25 counted, and caps of 6, 11 and 16.
    for ((b, w), cap) in bs.iter().zip(weights).zip([5u64, 10, 15]) {
        let most = b.state.max_active.load(Relaxed);
        assert!(
            most <= cap + 1,
            "{} (weight {w}) held {most} at once, cap {cap}",
            b.name
        );
    }
    assert!(
        bs.iter().all(|b| b.hits() > 0),
        "the hot key spilled nowhere"
    );
}
