//! What the guard's tests share: four named backends, bounded background load that
//! counts failures, the live split, and the journal as the API serves it.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn four_backends() -> [Backend; 4] {
    [
        Backend::start("b1").await,
        Backend::start("b2").await,
        Backend::start("b3").await,
        Backend::start("b4").await,
    ]
}

/// Pool `p` over b1..b4, b2 at weight `w2`, then `tail` (e.g. `[[allow]]`, `[guard]`).
pub fn cfg(bs: &[Backend; 4], pool_extra: &str, w2: u32, tail: &str) -> String {
    let spec: Vec<(&str, _, u32)> = bs
        .iter()
        .map(|b| (b.name.as_str(), b.addr, if b.name == "b2" { w2 } else { 1 }))
        .collect();
    config(pool_extra, &spec) + tail
}

pub const ALLOW_TNG001: &str =
    "\n[[allow]]\nrule = \"TNG001\"\npool = \"p\"\nreason = \"b2 is the big machine\"\n";

/// Background traffic at about `rps` until stopped (bounded: 60 s), counting answers
/// that were not 200, transport errors included.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    pub fn start(url: String, rps: u64, user: Option<fn(u64) -> String>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, d, f) = (stop.clone(), done.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let c = client();
            let limit = Arc::new(tokio::sync::Semaphore::new(64));
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let end = Instant::now() + Duration::from_secs(60);
            let mut i = 0u64;
            while !s.load(Relaxed) && Instant::now() < end {
                tick.tick().await;
                let permit = limit.clone().acquire_owned().await.unwrap();
                let mut req = http::Request::get(&url);
                if let Some(user) = user {
                    req = req.header("x-user", user(i)).header("x-tenant", "acme");
                }
                i += 1;
                let req = req.body(Full::new(Bytes::new())).unwrap();
                let (c, d, f) = (c.clone(), d.clone(), f.clone());
                tokio::spawn(async move {
                    let ok = matches!(
                        tokio::time::timeout(Duration::from_secs(10), c.request(req)).await,
                        Ok(Ok(r)) if r.status() == 200
                    );
                    if !ok {
                        f.fetch_add(1, Relaxed);
                    }
                    d.fetch_add(1, Relaxed);
                    drop(permit);
                });
            }
            // Every request sent has its answer before the load counts as stopped.
            let _ = limit.acquire_many(64).await;
        });
        Load {
            stop,
            done,
            failed,
            task,
        }
    }

    /// Wait until `n` requests have been answered (at most 30 s).
    pub async fn answered(&self, n: u64) {
        let end = Instant::now() + Duration::from_secs(30);
        while self.done.load(Relaxed) < n {
            assert!(Instant::now() < end, "the load did not get {n} answers");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop; returns (answered, failed).
    pub async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Relaxed);
        self.task.await.unwrap();
        (self.done.load(Relaxed), self.failed.load(Relaxed))
    }
}

/// `n` sequential requests (with distinct `x-user` values when `users`): answers per
/// backend name.
pub async fn split(t: &Tango, n: u32, users: bool) -> HashMap<String, u32> {
    let c = client();
    let mut out = HashMap::new();
    for i in 0..n {
        let mut req = http::Request::get(t.url("/"));
        if users {
            req = req.header("x-user", format!("visitor-{i}"));
        }
        let (s, body) = send(&c, req.body(Full::new(Bytes::new())).unwrap()).await;
        assert_eq!(s, 200, "{body}");
        *out.entry(body.trim().to_string()).or_default() += 1;
    }
    out
}

pub fn counts(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
    pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}

pub async fn journal(t: &Tango) -> Vec<serde_json::Value> {
    admin_get(t, "/api/v1/journal").await["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// Wait (at most `limit`) for a journal event matching `f`; returns the whole journal.
pub async fn wait_journal(
    t: &Tango,
    limit: Duration,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let end = Instant::now() + limit;
    loop {
        let events = journal(t).await;
        if events.iter().any(&f) {
            return events;
        }
        assert!(
            Instant::now() < end,
            "{what} within {limit:?}; journal: {events:#?}\nlog:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The journal's `config_rolled_back`, checked to have restored generation 2's
/// predecessor (1) as generation 3, the one case every rollback test sets up.
pub fn rolled_back_2_to_1_as_3(events: &[serde_json::Value]) -> &serde_json::Value {
    let back = events
        .iter()
        .find(|e| e["type"] == "config_rolled_back")
        .expect("a config_rolled_back event");
    assert_eq!(
        (
            &back["from_generation"],
            &back["to_generation"],
            &back["generation"]
        ),
        (&2.into(), &1.into(), &3.into()),
        "{back:#}"
    );
    back
}

pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

pub async fn metric(t: &Tango, line_start: &str) -> String {
    let m = get(&client(), &t.admin_url("/metrics")).await.1;
    m.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("{line_start} missing from:\n{m}"))
        .to_string()
}

pub async fn tango_reload(t: &Tango, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tango"))
        .arg("reload")
        .arg("--admin")
        .arg(format!("http://{}", t.admin))
        .args(args)
        .output()
        .await
        .unwrap()
}
