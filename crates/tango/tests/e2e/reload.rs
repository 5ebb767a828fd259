//! Hot reload: under load nothing fails; an invalid file changes nothing.

use crate::backend::Backend;
use crate::support::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reloads_under_load_fail_no_request() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    // The reload guard would refuse most of these shifts: this test is about the swap.
    let cfg = |wa: u32, wb: u32| {
        config("", &[("a", a.addr, wa), ("b", b.addr, wb)])
            + "\n[guard]\nenabled = false\nrollback = false\n"
    };
    let t = Tango::start(&cfg(1, 1));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = t.url("/");
        load.push(tokio::spawn(async move {
            let c = client();
            // Bounded: stops when the reloads are done, or after 100,000 requests.
            for _ in 0..100_000 {
                if stop.load(Relaxed) {
                    break;
                }
                let (s, _) = get(&c, &url).await;
                if s == 200 {
                    ok.fetch_add(1, Relaxed);
                } else {
                    failed.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    for i in 0..200u32 {
        t.write_config(&cfg(1 + i % 3, 1 + (i + 1) % 4));
        let (s, v) = admin_post(&t, "/api/v1/reload").await;
        assert_eq!(s, 200, "reload {i}: {v}");
        assert_eq!(v["generation"], u64::from(i) + 2);
    }
    stop.store(true, Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(failed.load(Relaxed), 0, "requests failed during reloads");
    assert!(ok.load(Relaxed) > 200, "the load ran: {}", ok.load(Relaxed));
    let metrics = get(&client(), &t.admin_url("/metrics")).await.1;
    assert!(
        metrics.contains("tango_config_reloads_total{result=\"applied\"} 200"),
        "{metrics}"
    );
    assert!(metrics.contains("tango_config_generation 201"), "{metrics}");
}

#[tokio::test]
async fn invalid_reload_keeps_the_old_config_and_returns_its_errors() {
    let a = Backend::start("a").await;
    let mut t = Tango::start(&config("", &[("a", a.addr, 1)]));
    t.write_config("[[listener]]\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\npolicy = \"nope\"\n[[pool.backend]]\naddress = \"no-port\"\n");
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["result"], "rejected");
    assert_eq!(v["generation"], 1);
    let errors = v["errors"].to_string();
    assert!(
        errors.contains("unknown value `nope`") && errors.contains("not a host:port"),
        "{errors}"
    );
    assert!(
        errors.contains("tango.toml:5:10"),
        "errors carry line:col: {errors}"
    );
    let (code, body) = get(&client(), &t.url("/")).await;
    assert_eq!(
        (code, body.as_str()),
        (200, "a\n"),
        "the old config keeps serving"
    );
    let metrics = get(&client(), &t.admin_url("/metrics")).await.1;
    assert!(
        metrics.contains("tango_config_reloads_total{result=\"rejected\"} 1"),
        "{metrics}"
    );

    // SIGHUP reloads too.
    let b = Backend::start("b").await;
    t.write_config(&config("", &[("b", b.addr, 1)]));
    t.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Ok(Some(st)) = t.child.try_wait() {
            panic!("tango exited on SIGHUP ({st:?}):\n{}", t.log());
        }
        if admin_get(&t, "/api/v1/status").await["generation"] == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(get(&client(), &t.url("/")).await.1, "b\n");
    // The configuration in force is the one served as text, too.
    let (_, live) = get(&client(), &t.admin_url("/api/v1/config")).await;
    assert!(
        live.contains(&b.addr.to_string()) && !live.contains(&a.addr.to_string()),
        "{live}"
    );
}

#[tokio::test]
async fn reload_needs_the_admin_token_when_one_is_set() {
    let a = Backend::start("a").await;
    let token = "0123456789abcdef0123";
    let cfg = config("", &[("a", a.addr, 1)]).replacen(
        "[admin]\n",
        &format!("[admin]\ntoken = \"{token}\"\n"),
        1,
    );
    let t = Tango::start(&cfg);
    let (s, _) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 401, "no token");
    let wrong = http::Request::post(t.admin_url("/api/v1/reload"))
        .header("authorization", "Bearer 0123456789abcdef0124")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(send(&client(), wrong).await.0, 401, "wrong token");
    let right = http::Request::post(t.admin_url("/api/v1/reload"))
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(send(&client(), right).await.0, 200);
    // Reads need the token too: the status shows backend addresses.
    assert_eq!(get(&client(), &t.admin_url("/api/v1/status")).await.0, 401);
    let status = http::Request::get(t.admin_url("/api/v1/status"))
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let (s, body) = send(&client(), status).await;
    assert_eq!(s, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["generation"], 2);
    // Metrics stay open.
    let metrics = get(&client(), &t.admin_url("/metrics")).await.1;
    for name in [
        "tango_backend_requests_total",
        "tango_backend_effective_weight",
        "tango_pool_panic_mode",
        "tango_backend_share_expected",
        "tango_alerts_active",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

/// Each kind of mistake an operator makes in a reloaded file is refused with its line,
/// key and fix, by the API and by SIGHUP, and the configuration in force keeps serving.
#[tokio::test]
async fn every_kind_of_mistake_in_a_reload_is_refused_at_its_line_and_changes_nothing() {
    let a = Backend::start("a").await;
    let good = config("", &[("a", a.addr, 1)]);
    let mut t = Tango::start(&good);
    let backend = format!("address = \"{}\"", a.addr);
    let mistakes = [
        ("[[pool]\n", "unclosed array table"),
        (
            "[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"10.0.0.9:80\"\n",
            "pool `p` is defined twice",
        ),
        ("[[route]]\npool = \"nope\"\n", "route[0].pool"),
        (
            "[pool.outlier]\nconsecutive_failurs = 3\n",
            "did you mean `consecutive_failures`?",
        ),
    ];
    for (extra, expect) in mistakes {
        t.write_config(&format!("{good}{extra}"));
        let (s, v) = admin_post(&t, "/api/v1/reload").await;
        assert_eq!(
            (s, &v["generation"]),
            (422, &serde_json::json!(1)),
            "{extra}: {v}"
        );
        let errors = v["errors"].to_string();
        assert!(errors.contains(expect), "{extra}: {errors}");
        assert!(errors.contains("tango.toml:"), "{extra}: {errors}");
        assert!(errors.contains("help:"), "{extra}: {errors}");
    }
    let wrong_values = [
        ("weight = 1", "weight = -3", "pool[p].backend[0].weight"),
        (
            "weight = 1",
            "weight = \"heavy\"",
            "write a whole number, without quotes",
        ),
        (
            backend.as_str(),
            "address = \"10.0.0.1\"",
            "the port is required",
        ),
    ];
    for (from, to, expect) in wrong_values {
        t.write_config(&good.replacen(from, to, 1));
        let (s, v) = admin_post(&t, "/api/v1/reload").await;
        assert_eq!(
            (s, &v["generation"]),
            (422, &serde_json::json!(1)),
            "{to}: {v}"
        );
        assert!(v["errors"].to_string().contains(expect), "{to}: {v}");
    }
    // SIGHUP of a file that is not TOML: logged, refused, nothing changes.
    t.write_config(&format!("{good}[[pool]\n"));
    t.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !t.log().contains("unclosed array table") {
        assert!(std::time::Instant::now() < deadline, "{}", t.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(t.child.try_wait().unwrap().is_none(), "{}", t.log());
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    assert_eq!(get(&client(), &t.url("/")).await, (200, "a\n".to_string()));
}

/// A reload that changes a pool's health check applies to the next probe, including
/// one whose wait began before the reload: a fix for a wrong health path must not cost
/// one more probe of the old path (one more interval down, which with `rise` and a
/// long interval is minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_the_very_next_health_probe() {
    let a = Backend::start("a").await;
    // `/health` answers 200, which the first check does not expect; `/slow` (counted in
    // `hits`, not `health_hits`) is the second check's path.
    let cfg = |path: &str, expect: &str| {
        config(
            &format!(
                "panic_threshold = 0.0\n[pool.health]\npath = \"{path}\"\nexpect = [\"{expect}\"]\ninterval = \"2s\"\njitter = 0.0\nrise = 1\nfall = 1\n"
            ),
            &[("a", a.addr, 1)],
        ) + "\n[guard]\nenabled = false\nrollback = false\n"
    };
    let t = Tango::start(&cfg("/health", "204"));
    wait_status(&t, "a down", std::time::Duration::from_secs(10), |s| {
        backend_entry(s, "a")["healthy"] == false
    })
    .await;
    // Right after a probe, so the next one is a whole interval away from the reload.
    let probes = a.state.health_hits.load(Relaxed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.state.health_hits.load(Relaxed) == probes {
        assert!(std::time::Instant::now() < deadline, "no probe");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    t.write_config(&cfg("/slow?ms=0", "200"));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200, "{v}");
    let probes = a.state.health_hits.load(Relaxed);
    wait_status(&t, "a back up", std::time::Duration::from_secs(10), |s| {
        backend_entry(s, "a")["healthy"] == true
    })
    .await;
    assert_eq!(
        a.state.health_hits.load(Relaxed),
        probes,
        "a probe after the reload still asked the old path"
    );
}
