//! Traffic follows the weights, and retries do not bend it.

use crate::backend::Backend;
use crate::support::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_follows_weights_within_two_points() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
        Backend::start("d").await,
    ];
    let weights = [1u32, 2, 3, 4];
    let spec: Vec<(&str, _, u32)> = bs
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.name.as_str(), b.addr, w))
        .collect();
    let t = Tango::start(&config("policy = \"round_robin\"", &spec));
    let c = client();
    let total = 10_000u64;
    // 8 concurrent loops, 1,250 requests each: bounded in count.
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
    for (b, w) in bs.iter().zip(weights) {
        let share = b.hits() as f64 / total as f64;
        let want = f64::from(w) / f64::from(wsum);
        assert!(
            (share - want).abs() <= 0.02,
            "{}: share {share:.4}, want {want:.4}",
            b.name
        );
    }
    // The status API agrees with what the backends saw.
    let status = admin_get(&t, "/api/v1/status").await;
    let seen: u64 = status["pools"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(seen, total);
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
