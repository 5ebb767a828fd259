//! 502, 503 and 504 each for its cause; retries go to a different backend.

use crate::backend::Backend;
use crate::support::*;

#[tokio::test]
async fn connect_failure_is_502_naming_the_cause() {
    let t = Tango::start(&config("max_attempts = 1", &[("dead", dead_addr(), 1)]));
    let (s, body) = get(&client(), &t.url("/")).await;
    assert_eq!(s, 502);
    assert!(body.contains("could not connect"), "{body}");
    assert!(
        !body.contains("127.0.0.1"),
        "no internals in the body: {body}"
    );
}

#[tokio::test]
async fn slow_backend_is_504() {
    let b = Backend::start("slow").await;
    let t = Tango::start(&config("try_timeout = \"200ms\"", &[("slow", b.addr, 1)]));
    let (s, body) = get(&client(), &t.url("/slow?ms=3000")).await;
    assert_eq!(s, 504, "{body}");
    assert!(body.contains("did not answer in time"), "{body}");
}

#[tokio::test]
async fn every_backend_at_its_cap_is_a_quick_503() {
    let b = Backend::start("capped").await;
    let cfg = config("", &[("capped", b.addr, 1)])
        .replace("weight = 1\n", "weight = 1\nmax_in_flight = 1\n");
    let t = Tango::start(&cfg);
    let c = client();
    let slow = {
        let c = c.clone();
        let url = t.url("/slow?ms=1500");
        tokio::spawn(async move { get(&c, &url).await })
    };
    // Wait until the slow request is in flight at the backend (an event, not a sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.hits() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "slow request never arrived"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let started = std::time::Instant::now();
    let (s, body) = get(&c, &t.url("/")).await;
    assert_eq!(s, 503, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1000),
        "503 must be quick, not queued"
    );
    assert_eq!(slow.await.unwrap().0, 200);
}

#[tokio::test]
async fn gets_retry_on_another_backend_when_one_is_down() {
    let up = Backend::start("up").await;
    // The defaults (max_attempts = 2, retry_budget = 0.2): retrying a connection that
    // was refused costs no budget, since no backend did any work.
    let t = Tango::start(&config("", &[("dead", dead_addr(), 1), ("up", up.addr, 1)]));
    let c = client();
    for _ in 0..200 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body, "up\n");
    }
    assert_eq!(up.hits(), 200);
}
