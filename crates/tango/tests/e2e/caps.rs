//! Per-backend caps through the proxy: a backend at its `max_connections` or
//! `max_in_flight` is skipped for one with room, the in-flight cap holds under
//! concurrency from every worker, and when every backend is full the client gets a quick
//! 503 saying so; a hash pool's bounded-load cap holds against racing workers too
//! (`bounded`).

mod bounded;

use crate::backend::Backend;
use crate::support::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

const FULL: &str = "every backend is at its connection or request limit";

fn spec(bs: &[Backend]) -> Vec<(&str, SocketAddr, u32)> {
    bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect()
}

/// Start a GET of `/slow?ms=` that holds its backend, and wait until `b` has it.
async fn hold(c: &HttpClient, t: &Tango, b: &Backend, ms: u64) -> tokio::task::JoinHandle<()> {
    let before = b.hits();
    let (c, url) = (c.clone(), t.url(&format!("/slow?ms={ms}")));
    let task = tokio::spawn(async move {
        let (s, body) = get(&c, &url).await;
        assert_eq!(s, 200, "{body}");
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.hits() == before {
        assert!(
            Instant::now() < deadline,
            "{} never got the slow request",
            b.name
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_at_its_connection_cap_is_skipped_for_one_with_room() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    // a and b take one connection each; one attempt per request, so a try spent on a
    // full backend would be a refused request.
    let cfg = config("policy = \"round_robin\"\nmax_attempts = 1\n", &spec(&bs)).replacen(
        "weight = 1\n",
        "weight = 1\nmax_connections = 1\n",
        2,
    );
    let t = Tango::start(&cfg);
    let c = client();
    // Round robin sends the first request to a, the second to b: each holds its only
    // connection for the rest of the test.
    let held = [
        hold(&c, &t, &bs[0], 4000).await,
        hold(&c, &t, &bs[1], 4000).await,
    ];
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..30 {
        let (s, body) = get(&c, &t.url("/")).await;
        *seen.entry(format!("{s} {}", body.trim_end())).or_default() += 1;
    }
    assert_eq!(seen.get("200 c"), Some(&30), "with c free: {seen:?}");
    for h in held {
        h.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_holds_under_concurrency_and_the_overflow_is_told_why() {
    let bs = [Backend::start("a").await, Backend::start("b").await];
    let cfg = config("policy = \"least_request\"\n", &spec(&bs))
        .replace("weight = 1\n", "weight = 1\nmax_in_flight = 3\n");
    let t = Tango::start(&cfg);
    // 24 clients for 2 s against 6 places: tango's two workers race for the last one.
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let url = t.url("/slow?ms=10");
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut seen: HashMap<u16, u64> = HashMap::new();
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end {
                let (s, body) = get(&c, &url).await;
                assert!(s == 200 || (s == 503 && body.contains(FULL)), "{s} {body}");
                *seen.entry(s).or_default() += 1;
            }
            seen
        }));
    }
    let mut seen: HashMap<u16, u64> = HashMap::new();
    for task in tasks {
        for (s, n) in task.await.unwrap() {
            *seen.entry(s).or_default() += n;
        }
    }
    assert!(seen.get(&200).is_some_and(|&n| n > 100), "{seen:?}");
    for b in &bs {
        let most = b.state.max_active.load(Relaxed);
        assert!(
            most <= 3,
            "{} held {most} requests at once, cap 3 ({seen:?})",
            b.name
        );
    }
}
