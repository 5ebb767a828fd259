//! The demo's traffic generator and its once-a-second report.

use crate::runtime::Runtime;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send `rps` requests per second to `target` until `duration` has passed. Bounded:
/// at most 64 requests are in flight; past that, ticks are skipped, not queued.
pub(crate) async fn generate(target: String, rps: u32, duration: Duration) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = match target.parse() {
        Ok(u) => u,
        Err(_) => return,
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rps.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let end = Instant::now() + duration;
    while Instant::now() < end {
        tick.tick().await;
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue;
        };
        let client = client.clone();
        let uri = uri.clone();
        tokio::spawn(async move {
            if let Ok(resp) = client.get(uri).await {
                let _ = resp.into_body().collect().await;
            }
            drop(permit);
        });
    }
}

fn counts(rt: &Runtime) -> Vec<(String, u64)> {
    let snap = rt.current();
    snap.pools
        .iter()
        .flat_map(|p| {
            p.backends
                .iter()
                .zip(&p.cfg.backends)
                .map(|(b, c)| (c.name.clone(), b.stats.snapshot().requests()))
        })
        .collect()
}

/// Each second, one line: requests per backend in that second; and each alert, once,
/// when it fires and when it clears.
pub(crate) async fn report(control: Arc<crate::server::Control>) {
    let rt = control.rt.clone();
    let mut shown: Vec<(String, String, bool)> = Vec::new();
    let mut prev = counts(&rt);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut t = 0;
    loop {
        tick.tick().await;
        t += 1;
        let now = counts(&rt);
        let line: Vec<String> = now
            .iter()
            .zip(&prev)
            .map(|((name, n), (_, p))| format!("{name} {:>4}", n - p))
            .collect();
        println!("{t:>4}s  {}", line.join("  "));
        for a in control.watch.active_alerts() {
            let key = (
                a.evidence.backend.clone(),
                a.evidence.kind.as_str().to_string(),
                true,
            );
            if a.evidence.kind.as_str() == "over_share" && !shown.contains(&key) {
                println!("  !! ALERT {}", a.cause.sentence);
                shown.push(key);
            }
        }
        let active = control.watch.active_alerts();
        shown.retain(|(b, k, _)| {
            let still = active
                .iter()
                .any(|a| &a.evidence.backend == b && a.evidence.kind.as_str() == k);
            if !still {
                println!("  ok resolved: {b} {k}");
            }
            still
        });
        prev = now;
    }
}

/// The whole run's split, against the weights.
pub(crate) fn summary(rt: &Runtime) {
    let snap = rt.current();
    for p in &snap.pools {
        let total: u64 = p
            .backends
            .iter()
            .map(|b| b.stats.snapshot().requests())
            .sum();
        let wsum = p.cfg.total_weight().max(1) as f64;
        println!("pool {}: {total} requests", p.cfg.name);
        for (b, c) in p.backends.iter().zip(&p.cfg.backends) {
            let n = b.stats.snapshot().requests();
            println!(
                "  {:<10} {:>7} requests  {:>5.1}% (weight {} -> {:.1}%)",
                c.name,
                n,
                100.0 * n as f64 / total.max(1) as f64,
                c.weight,
                100.0 * f64::from(c.weight) / wsum
            );
        }
    }
}
