//! What the watch's scenarios share: bounded load that records every answer (when and
//! with what status), a webhook receiver, a real Alertmanager, waiting on the incidents
//! the API serves, and tango's own log, journal file and CLI.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn four_backends() -> [Backend; 4] {
    [
        Backend::start("b1").await,
        Backend::start("b2").await,
        Backend::start("b3").await,
        Backend::start("b4").await,
    ]
}

/// Pool `p` over `bs` with the given weights, `pool_extra` in the pool's table,
/// `[admin] state_dir` when given, and `tail` after it all (e.g. `[guard]`).
pub fn cfg(
    bs: &[Backend],
    weights: &[u32],
    pool_extra: &str,
    state: Option<&std::path::Path>,
    tail: &str,
) -> String {
    let spec: Vec<(&str, _, u32)> = bs
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.name.as_str(), b.addr, *w))
        .collect();
    let mut c = config(pool_extra, &spec);
    if let Some(dir) = state {
        c = c.replacen(
            "[admin]\n",
            &format!("[admin]\nstate_dir = \"{}\"\n", dir.display()),
            1,
        );
    }
    c + tail
}

/// The reload guard off: these scenarios are about what the watch sees when a change
/// ships (the guard's own tests are in guard.rs).
pub const NO_GUARD: &str = "\n[guard]\nenabled = false\nrollback = false\n";

/// One answer: when it completed (unix ms) and its status (0: no answer).
pub type Answer = (u64, u16);

/// Background traffic at about `rps` until stopped (bounded: 120 s), recording every
/// answer. `user(i)`, when given, is the `x-user` header of the i-th request.
pub struct Load {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    task: tokio::task::JoinHandle<()>,
}

pub type User = Arc<dyn Fn(u64) -> String + Send + Sync>;

impl Load {
    pub fn start(url: String, rps: u64, user: Option<User>) -> Load {
        Self::spawn(url, rps, user, tokio::time::MissedTickBehavior::Skip)
    }

    /// `start`, but a request the pacer woke too late for is sent at once rather than
    /// skipped: each second carries about `rps`, where skipping loses a share of them
    /// to every late wake-up (a few milliseconds each on a loaded machine, against a
    /// 2.5 ms period at 400 rps) and the rate falls by half.
    pub fn keeping_pace(url: String, rps: u64) -> Load {
        Self::spawn(url, rps, None, tokio::time::MissedTickBehavior::Burst)
    }

    fn spawn(
        url: String,
        rps: u64,
        user: Option<User>,
        missed: tokio::time::MissedTickBehavior,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), answers.clone());
        let task = tokio::spawn(async move {
            let c = client();
            let limit = Arc::new(tokio::sync::Semaphore::new(64));
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
            tick.set_missed_tick_behavior(missed);
            let end = Instant::now() + Duration::from_secs(120);
            let mut i = 0u64;
            while !s.load(Relaxed) && Instant::now() < end {
                tick.tick().await;
                let permit = limit.clone().acquire_owned().await.unwrap();
                let mut req = http::Request::get(&url);
                if let Some(user) = &user {
                    req = req.header("x-user", user(i));
                }
                i += 1;
                let req = req.body(Full::new(Bytes::new())).unwrap();
                let (c, a) = (c.clone(), a.clone());
                tokio::spawn(async move {
                    let status =
                        match tokio::time::timeout(Duration::from_secs(10), c.request(req)).await {
                            Ok(Ok(r)) => r.status().as_u16(),
                            _ => 0,
                        };
                    a.lock().unwrap().push((unix_ms(), status));
                    drop(permit);
                });
            }
            // Every request sent has its answer before the load counts as stopped.
            let _ = limit.acquire_many(64).await;
        });
        Load {
            stop,
            answers,
            task,
        }
    }

    pub fn answered(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Wait until `n` requests have been answered (at most 30 s).
    pub async fn wait_answered(&self, n: usize) {
        let end = Instant::now() + Duration::from_secs(30);
        while self.answered() < n {
            assert!(Instant::now() < end, "the load did not get {n} answers");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop; returns every answer.
    pub async fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Relaxed);
        self.task.await.unwrap();
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Captures every POST body it receives.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn receiver() -> Receiver {
    use http_body_util::BodyExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
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
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
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
pub struct Alertmanager {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn alertmanager() -> Alertmanager {
    alertmanager_with("").await
}

/// A real Alertmanager whose configuration starts with `global` (e.g. its
/// `resolve_timeout`).
pub async fn alertmanager_with(global: &str) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    std::fs::write(
        &cfg,
        format!("{global}route:\n  receiver: none\nreceivers:\n  - name: none\n"),
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

/// Wait (at most `limit`) until `/api/v1/alerts` has an incident, open or recent,
/// matching `f`; returns it.
pub async fn wait_incident(
    t: &Tango,
    limit: Duration,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + limit;
    loop {
        let v = admin_get(t, "/api/v1/alerts").await;
        if let Some(i) = v["recent"].as_array().unwrap().iter().find(|i| f(i)) {
            return i.clone();
        }
        assert!(
            Instant::now() < end,
            "{what} within {limit:?}; incidents: {v:#}\nlog:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An open incident headed by `backend` with a headline signal of `kind`.
pub fn open_on(backend: &'static str, kind: &'static str) -> impl Fn(&Value) -> bool {
    move |i| i["headline"] == backend && i["kind"] == kind && i["resolved_ms"].is_null()
}

/// Whether an alert kind is about the split (a latency outlier on a machine shared with
/// other builds is a separate matter, and not what these scenarios are about).
pub fn share(kind: &Value) -> bool {
    kind == "over_share" || kind == "under_share"
}

/// tango's JSON log lines (start it with `--log-format json`).
pub fn json_log(t: &Tango) -> Vec<Value> {
    t.log()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The log's alert lines: WARN, message "ALERT ...".
pub fn alert_lines(t: &Tango) -> Vec<Value> {
    json_log(t)
        .into_iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("ALERT "))
        })
        .collect()
}

/// The journal file's events.
pub fn journal_file(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `tango ARGS...`; returns stdout, asserting success.
pub fn tango(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tango {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait (at most `limit`) until `f` holds.
pub async fn wait_until(limit: Duration, what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The journal's fired alerts that `keep` takes (given the whole event), as (backend,
/// kind, basis).
pub async fn fired_alerts(
    t: &Tango,
    keep: impl Fn(&Value) -> bool,
) -> Vec<(String, String, String)> {
    let j = admin_get(t, "/api/v1/journal").await;
    j["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "alert_fired" && keep(e))
        .map(|e| {
            let ev = &e["evidence"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&ev["backend"]), s(&ev["kind"]), s(&ev["basis"]))
        })
        .collect()
}
