//! Backends failing in the ways production backends fail, seen from outside: one that
//! accepts and never answers, one that resets, one that answers garbage or answers its
//! health check too slowly, a whole pool ejected. What clients get, what the health
//! checks and outlier detection decide, and what the status API says. Backends that
//! never answer, or never finish an answer, are `mute`'s.

mod mute;

use crate::backend::Backend;
use crate::scripted::{self, Scripted, Step};
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

fn entry<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    backend_entry(s, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejection_that_leaves_too_few_backends_enters_panic_mode_at_once() {
    let bs = [Backend::start("a").await, Backend::start("b").await];
    for b in &bs {
        b.state.fail_status.store(500, Relaxed);
    }
    let t = Tango::start(&config(
        "policy = \"round_robin\"\nmax_attempts = 1\n[pool.outlier]\nconsecutive_failures = 1\nmax_ejected_percent = 100\nbase_ejection = \"60s\"\n",
        &[("a", bs[0].addr, 1), ("b", bs[1].addr, 1)],
    ));
    let c = client();
    // One failure each ejects both: nothing is eligible, so the pool is in panic mode
    // and keeps sending to them, from the very next request on (not a burst of 503s
    // until a periodic check notices).
    for _ in 0..2 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!(s, 500, "{body}");
    }
    let s = admin_get(&t, "/api/v1/status").await;
    assert!(
        entry(&s, "a")["ejected"] == true && entry(&s, "b")["ejected"] == true,
        "{s}"
    );
    for _ in 0..5 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!(s, 500, "a request after the ejections got {s}: {body}");
    }
    assert!(t.log().contains("panic mode"), "{}", t.log());
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(
        s["pools"][0]["panic"], true,
        "status does not say panic: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_health_answer_and_a_garbage_answer_both_fail_their_probes() {
    let slow = Scripted::start(|_| {
        vec![
            Step::Pause(Duration::from_millis(400)),
            scripted::send(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
        ]
    })
    .await;
    let garbage =
        Scripted::start(|_| vec![scripted::send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), Step::Close])
            .await;
    let good = Backend::start("good").await;
    let t = Tango::start(&config(
        "panic_threshold = 0.0\n[pool.health]\ninterval = \"50ms\"\ntimeout = \"150ms\"\nfall = 2\nrise = 2\njitter = 0.0\n",
        &[("slow", slow.addr, 1), ("garbage", garbage.addr, 1), ("good", good.addr, 1)],
    ));
    let s = wait_status(
        &t,
        "slow and garbage unhealthy",
        Duration::from_secs(10),
        |s| entry(s, "slow")["healthy"] == false && entry(s, "garbage")["healthy"] == false,
    )
    .await;
    assert_eq!(entry(&s, "good")["healthy"], true, "{s}");
    let c = client();
    for _ in 0..6 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!((s, body.as_str()), (200, "good\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_a_backend_reset_is_not_sent_again_and_a_get_is() {
    let a = Scripted::start(|_| vec![Step::Close]).await;
    let b = Scripted::start(|_| vec![Step::Close]).await;
    let t = Tango::start(&config("", &[("a", a.addr, 1), ("b", b.addr, 1)]));
    let c = client();
    let post = http::Request::post(t.url("/order"))
        .body(Full::new(Bytes::from_static(b"pay 10")))
        .unwrap();
    let (s, _) = send(&c, post).await;
    assert_eq!(s, 502);
    assert_eq!(
        a.seen().len() + b.seen().len(),
        1,
        "the POST was sent twice"
    );
    let (s, _) = get(&c, &t.url("/page")).await;
    assert_eq!(s, 502);
    assert_eq!(
        a.seen().len() + b.seen().len(),
        3,
        "the GET was not tried on the other backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejection_stops_at_max_ejected_percent_and_the_rest_keep_serving() {
    let mut bs = Vec::new();
    for n in ["a", "b", "c", "d"] {
        let b = Backend::start(n).await;
        b.state.fail_status.store(500, Relaxed);
        bs.push(b);
    }
    let spec: Vec<(&str, std::net::SocketAddr, u32)> =
        bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect();
    let t = Tango::start(&config(
        "policy = \"round_robin\"\nmax_attempts = 1\n[pool.outlier]\nconsecutive_failures = 2\nmax_ejected_percent = 50\nbase_ejection = \"60s\"\n",
        &spec,
    ));
    let c = client();
    for _ in 0..24 {
        let (s, _) = get(&c, &t.url("/")).await;
        assert_eq!(s, 500);
    }
    let s = admin_get(&t, "/api/v1/status").await;
    let ejected = ["a", "b", "c", "d"]
        .iter()
        .filter(|n| entry(&s, n)["ejected"] == true)
        .count();
    assert_eq!(ejected, 2, "half of four may be ejected: {s}");
    assert_eq!(s["pools"][0]["panic"], false, "{s}");
    assert!(
        t.log().contains("max_ejected_percent reached"),
        "{}",
        t.log()
    );
    // The two left in serve every request.
    let before: Vec<u64> = bs.iter().map(Backend::hits).collect();
    for _ in 0..10 {
        get(&c, &t.url("/")).await;
    }
    let moved = bs
        .iter()
        .zip(&before)
        .filter(|(b, was)| b.hits() > **was)
        .count();
    assert_eq!(moved, 2, "traffic went to ejected backends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_turns_outlier_detection_off_returns_the_ejected_backends() {
    let bs = [Backend::start("a").await, Backend::start("b").await];
    let spec = [("a", bs[0].addr, 1), ("b", bs[1].addr, 1)];
    let guard_off = "\n[guard]\nenabled = false\n";
    let outlier = "policy = \"round_robin\"\nmax_attempts = 1\n[pool.outlier]\nconsecutive_failures = 1\nbase_ejection = \"300s\"\n";
    let t = Tango::start(&(config(outlier, &spec) + guard_off));
    let c = client();
    bs[0].state.fail_status.store(500, Relaxed);
    for _ in 0..2 {
        get(&c, &t.url("/")).await;
    }
    bs[0].state.fail_status.store(0, Relaxed);
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(entry(&s, "a")["ejected"], true, "{s}");

    // Without outlier detection nothing would ever return a: it must not stay out.
    t.write_config(&(config("policy = \"round_robin\"\nmax_attempts = 1\n", &spec) + guard_off));
    let (code, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(code, 200, "{v}");
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(entry(&s, "a")["ejected"], false, "{s}");
    let before = bs[0].hits();
    for _ in 0..4 {
        assert_eq!(get(&c, &t.url("/")).await.0, 200);
    }
    assert!(bs[0].hits() > before, "a gets no traffic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_leaves_too_few_healthy_backends_enters_panic_mode_at_once() {
    let bs = [Backend::start("a").await, Backend::start("b").await];
    bs[0].state.health_status.store(503, Relaxed);
    let health = "max_attempts = 1\n[pool.health]\npath = \"/health\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2\njitter = 0.0\n";
    let guard_off = "\n[guard]\nenabled = false\n";
    let t =
        Tango::start(&(config(health, &[("a", bs[0].addr, 1), ("b", bs[1].addr, 1)]) + guard_off));
    wait_status(&t, "a unhealthy", Duration::from_secs(10), |s| {
        entry(s, "a")["healthy"] == false
    })
    .await;
    // Half the pool healthy is no panic; a reload that takes b away leaves none.
    t.write_config(&(config(health, &[("a", bs[0].addr, 1)]) + guard_off));
    let (code, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(code, 200, "{v}");
    let (s, body) = get(&client(), &t.url("/")).await;
    assert_eq!(
        (s, body.as_str()),
        (200, "a\n"),
        "right after the reload, no panic mode yet"
    );
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(s["pools"][0]["panic"], true, "{s}");
}

/// The value of the `/metrics` series whose line starts with `series`.
async fn metric(t: &Tango, series: &str) -> u64 {
    let text = get(&client(), &t.admin_url("/metrics")).await.1;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_the_resends_the_retry_budget_paid_for_and_refused() {
    let bad = Scripted::start(|_| vec![Step::Close]).await;
    let good = Backend::start("good").await;
    let t = Tango::start(&config(
        "policy = \"round_robin\"",
        &[("bad", bad.addr, 1), ("good", good.addr, 1)],
    ));
    let c = client();
    let n = 100;
    for _ in 0..n {
        let (s, _) = get(&c, &t.url("/")).await;
        assert!(s == 200 || s == 502, "{s}");
    }
    // Every failure at bad asked the budget for a re-send at good: 0.2 a request and
    // the reserve of 10 cannot pay for about 50 of them.
    let failed = bad.seen().len() as u64;
    let sent = metric(
        &t,
        "tango_pool_retry_resends_total{pool=\"p\",result=\"sent\"}",
    )
    .await;
    let refused = metric(
        &t,
        "tango_pool_retry_resends_total{pool=\"p\",result=\"refused\"}",
    )
    .await;
    assert_eq!(sent + refused, failed, "sent {sent}, refused {refused}");
    assert_eq!(
        sent,
        good.hits() - (n - failed),
        "re-sends that reached good"
    );
    assert!(
        refused > 0,
        "the budget refused nothing of {failed} failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_backend_down_clients_get_a_quick_502_and_one_back_serves_them_all() {
    let mut bs = [Backend::start("a").await, Backend::start("b").await];
    let t = Tango::start(&config(
        "max_attempts = 2\n[pool.health]\npath = \"/health\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\nfall = 2\nrise = 2\njitter = 0.0\n",
        &[("a", bs[0].addr, 1), ("b", bs[1].addr, 1)],
    ));
    let a_addr = bs[0].addr;
    for b in &mut bs {
        b.kill().await;
    }
    wait_status(&t, "both unhealthy", Duration::from_secs(10), |s| {
        entry(s, "a")["healthy"] == false && entry(s, "b")["healthy"] == false
    })
    .await;
    let c = client();
    // Panic mode: both are tried, both refuse; the client hears why.
    for _ in 0..4 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!(s, 502, "{body}");
        assert!(body.contains("connect"), "{body}");
    }
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(s["pools"][0]["panic"], true, "{s}");

    // a comes back on its address: once its probes pass, it takes every request.
    let _a = Backend::start_at("a", a_addr).await;
    wait_status(&t, "a healthy", Duration::from_secs(10), |s| {
        entry(s, "a")["healthy"] == true && s["pools"][0]["panic"] == false
    })
    .await;
    for _ in 0..6 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!((s, body.as_str()), (200, "a\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_of_a_sometimes_slow_backend_are_not_retried_and_eject_it() {
    let bs = [Backend::start("a").await, Backend::start("b").await];
    let t = Tango::start(&config(
        "policy = \"round_robin\"\ntry_timeout = \"200ms\"\n[pool.outlier]\nconsecutive_failures = 2\nbase_ejection = \"60s\"\n",
        &[("a", bs[0].addr, 1), ("b", bs[1].addr, 1)],
    ));
    let c = client();
    bs[0].state.delay_ms.store(2_000, Relaxed);
    let mut timeouts = 0;
    for _ in 0..8 {
        let (s, body) = get(&c, &t.url("/")).await;
        match s {
            200 => assert_eq!(body, "b\n"),
            504 => timeouts += 1,
            other => panic!("{other} {body}"),
        }
    }
    // Two timeouts eject a; neither was sent again to b (a GET, but a may be working
    // on it still).
    assert_eq!(timeouts, 2, "a timed out {timeouts} times");
    assert_eq!(bs[0].hits(), 2);
    assert_eq!(bs[1].hits(), 6, "a timed-out try was retried");
    let s = admin_get(&t, "/api/v1/status").await;
    assert_eq!(entry(&s, "a")["ejected"], true, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_closes_after_every_third_answer_fails_no_request() {
    let b = Scripted::start(|seen| {
        let mut steps = vec![scripted::send(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n",
        )];
        if seen.nth % 3 == 0 {
            steps.push(Step::Close);
        }
        steps
    })
    .await;
    let t = scripted::one_worker(&config("", &[("b", b.addr, 1)]));
    let c = client();
    for i in 0..30 {
        let req = if i % 2 == 0 {
            http::Request::get(t.url("/"))
        } else {
            http::Request::post(t.url("/"))
        };
        let (s, body) = send(&c, req.body(Full::new(Bytes::from_static(b"x"))).unwrap()).await;
        assert_eq!((s, body.as_str()), (200, "ok\n"), "request {i}");
    }
    assert!(b.conns() >= 10, "{} connections", b.conns());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_pipelined_behind_a_slow_answer_is_not_taken_for_the_client_leaving() {
    let b = Backend::start("b").await;
    let t = Tango::start(&config("", &[("b", b.addr, 1)]));
    let mut s = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut s,
        b"GET /slow?ms=600 HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let got = scripted::read_to_end(&mut s).await;
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
}

/// Health checks and outlier detection judge apart: a backend ejected for failing real
/// requests stays ejected while its (cheap) health probe keeps passing, and takes no
/// requests until the ejection ends (docs/configuration.md, `[pool.outlier]`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_health_probe_does_not_end_an_ejection() {
    let bs = [Backend::start("a").await, Backend::start("b").await];
    bs[0].state.fail_status.store(500, Relaxed);
    let t = Tango::start(&config(
        "policy = \"round_robin\"\nmax_attempts = 1\n[pool.outlier]\nconsecutive_failures = 1\nbase_ejection = \"60s\"\n[pool.health]\npath = \"/health\"\ninterval = \"50ms\"\ntimeout = \"1s\"\nrise = 1\nfall = 2\njitter = 0.0\n",
        &[("a", bs[0].addr, 1), ("b", bs[1].addr, 1)],
    ));
    let c = client();
    // Round robin: one of the first two requests reaches `a`, whose 500 ejects it.
    for _ in 0..2 {
        get(&c, &t.url("/")).await;
    }
    wait_status(&t, "a ejected", Duration::from_secs(10), |s| {
        entry(s, "a")["ejected"] == true
    })
    .await;
    let (hits, probes) = (
        bs[0].state.hits.load(Relaxed),
        bs[0].state.health_hits.load(Relaxed),
    );
    // Five probes pass (rise = 1 would bring a down backend back at the first).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bs[0].state.health_hits.load(Relaxed) < probes + 5 {
        assert!(tokio::time::Instant::now() < deadline, "no probes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = admin_get(&t, "/api/v1/status").await;
    assert!(
        entry(&s, "a")["ejected"] == true && entry(&s, "a")["healthy"] == true,
        "{s}"
    );
    for _ in 0..4 {
        let (s, body) = get(&c, &t.url("/")).await;
        assert_eq!((s, body.as_str()), (200, "b\n"));
    }
    assert_eq!(
        bs[0].state.hits.load(Relaxed),
        hits,
        "the ejected backend got requests"
    );
}
