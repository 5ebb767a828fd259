//! The watch, live: a weight typo shipped by reload is caught within seconds, named,
//! attributed to the reload, cleared by reverting, and told by the journal and the
//! post-mortem in order.

use crate::backend::Backend;
use crate::support::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send about `rps` requests per second until `stop` (bounded: at most 120 s), with
/// header `x-user` set by `user(i)` for the i-th request when given.
fn drive(
    url: String,
    rps: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    user: Option<Box<dyn Fn(u64) -> String + Send>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = client();
        let limit = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let end = Instant::now() + Duration::from_secs(120);
        let mut i = 0u64;
        while !stop.load(Relaxed) && Instant::now() < end {
            tick.tick().await;
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                continue;
            };
            let mut req = http::Request::get(&url);
            if let Some(user) = &user {
                req = req.header("x-user", user(i));
            }
            i += 1;
            let req = req
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let (c, sent) = (c.clone(), sent.clone());
            tokio::spawn(async move {
                let _ = send(&c, req).await;
                sent.fetch_add(1, Relaxed);
                drop(permit);
            });
        }
    })
}

fn load(
    url: String,
    rps: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    drive(url, rps, stop, sent, None)
}

/// Captures every POST body it receives.
struct Receiver {
    addr: std::net::SocketAddr,
    bodies: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver() -> Receiver {
    use http_body_util::BodyExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let b = bodies.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let b = b.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let b = b.clone();
                        async move {
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            if let Ok(v) = serde_json::from_slice(&body) {
                                b.lock().unwrap().push(v);
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Receiver { addr, bodies, task }
}

/// A real Alertmanager on loopback (Debian's prometheus-alertmanager, which
/// scripts/test.sh installs).
struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn alertmanager() -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let port = dead_addr().port();
    let child = std::process::Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager is installed (scripts/test.sh installs it)");
    let url = format!("http://127.0.0.1:{port}");
    let c = client();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Ok(r)) = tokio::time::timeout(
            Duration::from_secs(1),
            c.get(format!("{url}/-/ready").parse().unwrap()),
        )
        .await
        {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < end, "alertmanager did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Alertmanager {
        child,
        url,
        _dir: dir,
    }
}

async fn wait_for<F: Fn(&serde_json::Value) -> bool>(
    t: &Tango,
    limit: Duration,
    what: &str,
    f: F,
) -> serde_json::Value {
    let end = Instant::now() + limit;
    loop {
        let v = admin_get(t, "/api/v1/alerts").await;
        if f(&v) {
            return v;
        }
        assert!(
            Instant::now() < end,
            "{what} within {limit:?}; alerts: {v:#}\nlog:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait up to 10 s for an active alert of `kind` (on `backend`, when given). Returns the
/// alert and the whole `/api/v1/alerts` answer.
async fn wait_for_alert(
    t: &Tango,
    backend: Option<&str>,
    kind: &str,
) -> (serde_json::Value, serde_json::Value) {
    let matches = |a: &serde_json::Value| {
        a["evidence"]["kind"] == kind && backend.is_none_or(|b| a["evidence"]["backend"] == b)
    };
    let what = format!("a {kind} alert on {}", backend.unwrap_or("any backend"));
    let v = wait_for(t, Duration::from_secs(10), &what, |v| {
        v["active"].as_array().unwrap().iter().any(matches)
    })
    .await;
    let a = v["active"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| matches(a))
        .unwrap()
        .clone();
    (a, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_typo_is_caught_named_attributed_and_cleared() {
    let bs = four_backends().await;
    let state = tempfile::tempdir().unwrap();
    let hook = receiver().await;
    let am = alertmanager().await;
    let cfg = |w2: u32| {
        let spec: Vec<(&str, _, u32)> = bs
            .iter()
            .map(|b| (b.name.as_str(), b.addr, if b.name == "b2" { w2 } else { 1 }))
            .collect();
        let alerts = format!(
            "[alerts]\nwebhook = \"http://{}/hook\"\nalertmanager = \"{}\"\n\n",
            hook.addr, am.url
        );
        // The reload guard would refuse the typo (and roll it back if forced): this
        // test is about what the watch sees when it ships (see guard.rs for the guard).
        alerts
            + &config("", &spec).replacen(
                "[admin]\n",
                &format!("[admin]\nstate_dir = \"{}\"\n", state.path().display()),
                1,
            )
            + "\n[guard]\nenabled = false\nrollback = false\n"
    };
    let t = Tango::start(&cfg(1));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = load(t.url("/"), 500, stop.clone(), sent.clone());

    // Balanced for a few seconds: nothing fires.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let v = admin_get(&t, "/api/v1/alerts").await;
    assert_eq!(
        v["active"].as_array().unwrap().len(),
        0,
        "balanced traffic alerted: {v:#}"
    );

    // The typo ships.
    t.write_config(&cfg(10));
    let reloaded = Instant::now();
    let (s, r) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, r["generation"].as_u64()), (200, Some(2)), "{r}");
    let (a, _) = wait_for_alert(&t, Some("b2"), "over_share").await;
    let took = reloaded.elapsed();
    assert_eq!(a["cause"]["class"], "config", "{a:#}");
    assert_eq!(a["cause"]["generation"], 2, "{a:#}");
    let sentence = a["cause"]["sentence"].as_str().unwrap();
    assert!(
        sentence.contains("b2")
            && sentence.contains("config generation 2")
            && sentence.contains("weight from 1 to 10"),
        "{sentence}"
    );
    let ratio = a["evidence"]["ratio"].as_f64().unwrap();
    assert!(ratio > 2.0, "b2 takes about 3x its share: {ratio}");
    eprintln!("alert after {took:?}: {sentence}");

    // Delivered: to the webhook with the evidence, and to a real Alertmanager.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let got = hook.bodies.lock().unwrap().iter().any(|b| {
            b["status"] == "firing"
                && b["evidence"]["backend"] == "b2"
                && b["cause"]["generation"] == 2
        });
        if got {
            break;
        }
        assert!(
            Instant::now() < end,
            "webhook never got the alert: {:?}",
            hook.bodies.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(&client(), &format!("{}/api/v2/alerts", am.url)).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let found = v.as_array().into_iter().flatten().any(|a| {
            a["labels"]["backend"] == "b2"
                && a["labels"]["alertname"] == "TangoBackendOverShare"
                && a["annotations"]["summary"]
                    .as_str()
                    .unwrap_or("")
                    .contains("weight from 1 to 10")
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < end,
            "Alertmanager never showed the alert: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Reverting clears it.
    t.write_config(&cfg(1));
    let (s, _) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200);
    wait_for(
        &t,
        Duration::from_secs(45),
        "the alert to clear after the revert",
        |v| v["active"].as_array().unwrap().is_empty(),
    )
    .await;
    stop.store(true, Relaxed);
    load.await.unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while !hook
        .bodies
        .lock()
        .unwrap()
        .iter()
        .any(|b| b["status"] == "resolved" && b["evidence"]["backend"] == "b2")
    {
        assert!(Instant::now() < end, "webhook never got the resolution");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sent.load(Relaxed) > 2000,
        "the load ran: {}",
        sent.load(Relaxed)
    );

    // The journal tells the story in order.
    let journal = state.path().join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pos = |f: &dyn Fn(&serde_json::Value) -> bool| {
        events
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("missing event in:\n{text}"))
    };
    let started = pos(&|e| e["type"] == "config_applied" && e["generation"] == 1);
    let typo = pos(&|e| e["type"] == "config_applied" && e["generation"] == 2);
    let fired = pos(&|e| e["type"] == "alert_fired" && e["evidence"]["backend"] == "b2");
    let revert = pos(&|e| e["type"] == "config_applied" && e["generation"] == 3);
    let resolved = pos(&|e| e["type"] == "alert_resolved" && e["evidence"]["backend"] == "b2");
    assert!(
        started < typo && typo < fired && fired < revert && revert < resolved,
        "{text}"
    );
    assert!(
        events[typo]["changes"][0]["kind"]
            .to_string()
            .contains("weight")
            || text.contains("\"weight\""),
        "{text}"
    );

    // And so does the post-mortem drafted from it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["postmortem", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pm = String::from_utf8_lossy(&out.stdout);
    let at = |s: &str| {
        pm.find(s)
            .unwrap_or_else(|| panic!("`{s}` missing from the post-mortem:\n{pm}"))
    };
    assert!(
        at("## Issue Summary") < at("## Timeline")
            && at("## Timeline") < at("## Root Cause")
            && at("## Root Cause") < at("## Resolution"),
        "{pm}"
    );
    assert!(
        pm[at("## Root Cause")..].contains("config generation 2"),
        "{pm}"
    );
    assert!(pm[at("## Resolution")..].contains("generation 3"), "{pm}");
}

async fn four_backends() -> [Backend; 4] {
    [
        Backend::start("b1").await,
        Backend::start("b2").await,
        Backend::start("b3").await,
        Backend::start("b4").await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skew_from_an_ejection_is_attributed_to_health() {
    let bs = four_backends().await;
    let spec: Vec<(&str, _, u32)> = bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect();
    let t = Tango::start(&config(
        "max_attempts = 1\n[pool.outlier]\nconsecutive_failures = 3\nbase_ejection = \"60s\"\n",
        &spec,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = load(t.url("/"), 400, stop.clone(), sent.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    bs[2].state.fail_status.store(500, Relaxed);
    let (a, v) = wait_for_alert(&t, Some("b3"), "under_share").await;
    stop.store(true, Relaxed);
    load.await.unwrap();
    assert_eq!(a["cause"]["class"], "health", "{a:#}");
    assert!(
        a["cause"]["generation"].is_null(),
        "not a config change: {a:#}"
    );
    let sentence = a["cause"]["sentence"].as_str().unwrap();
    assert!(
        sentence.contains("health") && sentence.contains("b3"),
        "{sentence}"
    );
    // Nothing blames the configuration.
    assert!(
        v["recent"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["cause"]["class"] != "config"),
        "{v:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_collapsing_onto_one_value_are_attributed_to_the_key_distribution() {
    let bs = four_backends().await;
    let spec: Vec<(&str, _, u32)> = bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect();
    let t = Tango::start(&config(
        "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-user\" }\non_missing_key = \"random\"",
        &spec,
    ));
    // Many users for a while, then every request carries the same value (a client bug,
    // a default filled in by a proxy): one backend takes everything.
    let collapsed = Arc::new(AtomicBool::new(false));
    let c2 = collapsed.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let user = move |i| {
        if c2.load(Relaxed) {
            "anonymous".to_string()
        } else {
            format!("user-{}", i % 5000)
        }
    };
    let load = drive(t.url("/"), 400, stop.clone(), sent, Some(Box::new(user)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    collapsed.store(true, Relaxed);
    let (a, _) = wait_for_alert(&t, None, "over_share").await;
    stop.store(true, Relaxed);
    load.await.unwrap();
    assert_eq!(a["cause"]["class"], "key_distribution", "{a:#}");
    let sentence = a["cause"]["sentence"].as_str().unwrap();
    assert!(sentence.contains("key distribution"), "{sentence}");
}
