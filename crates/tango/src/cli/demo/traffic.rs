//! The demo's traffic generator, its once-a-second report, and the summary by phase of
//! the incident.

use crate::cli::table::{self, Align};
use crate::runtime::Runtime;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, Mutex};
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

fn counts(rt: &Runtime) -> Counts {
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

/// Every backend's request count at a moment, in configuration order.
type Counts = Vec<(String, u64)>;

/// A phase of the run: its name, and when it began (seconds into the run, and counts).
#[derive(Clone)]
struct Phase {
    name: &'static str,
    at: f64,
    counts: Counts,
}

/// Where each phase of the run began.
#[derive(Clone)]
pub(crate) struct Marks {
    start: Instant,
    phases: Arc<Mutex<Vec<Phase>>>,
}

impl Marks {
    /// The run starts now, in the phase before any incident.
    pub(crate) fn new(rt: &Runtime) -> Marks {
        let first = Phase {
            name: "before",
            at: 0.0,
            counts: counts(rt),
        };
        Marks {
            start: Instant::now(),
            phases: Arc::new(Mutex::new(vec![first])),
        }
    }

    /// A new phase starts now.
    pub(crate) fn mark(&self, rt: &Runtime, name: &'static str) {
        let p = Phase {
            name,
            at: self.start.elapsed().as_secs_f64(),
            counts: counts(rt),
        };
        self.phases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
    }

    /// Each phase with the moment it ended; the whole run last when there were phases.
    fn spans(&self, rt: &Runtime) -> Vec<(Phase, Phase)> {
        let end = Phase {
            name: "end",
            at: self.start.elapsed().as_secs_f64(),
            counts: counts(rt),
        };
        let phases = self
            .phases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out: Vec<(Phase, Phase)> = phases
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), phases.get(i + 1).unwrap_or(&end).clone()))
            .collect();
        match out.as_mut_slice() {
            [(only, _)] => only.name = "whole run",
            _ => {
                let mut whole = phases[0].clone();
                whole.name = "whole run";
                out.push((whole, end));
            }
        }
        out
    }
}

/// The per-second rows' two header lines: each backend's requests that second and its
/// share of them, then the total.
fn header(names: &[String]) -> String {
    let mut top = format!("{:>6}", "time");
    let mut units = format!("{:>6}", "(s)");
    for n in names {
        top.push_str(&format!("  {n:<14}"));
        units.push_str(&format!("  {:>5}  {:>6} ", "req/s", "share"));
    }
    top.push_str(&format!("  {:>6}", "total"));
    units.push_str(&format!("  {:>6}", "req/s"));
    format!("{}\n{}\n", top.trim_end(), units.trim_end())
}

/// One second's row: requests per backend and each one's share of that second's total.
fn row(t: u64, per_backend: &[u64]) -> String {
    let total: u64 = per_backend.iter().sum();
    let mut line = format!("{t:>6}");
    for n in per_backend {
        let share = 100.0 * *n as f64 / total.max(1) as f64;
        line.push_str(&format!("  {n:>5}  {share:>5.1}% "));
    }
    line.push_str(&format!("  {total:>6}"));
    line
}

/// Each second, one row: requests per backend in that second; and each alert, once,
/// when it fires and when it clears.
pub(crate) async fn report(control: Arc<crate::control::reload::Control>) {
    let rt = control.rt.clone();
    let mut shown: Vec<(String, String, bool)> = Vec::new();
    let mut prev = counts(&rt);
    let names: Vec<String> = prev.iter().map(|(n, _)| n.clone()).collect();
    print!("{}", header(&names));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut t = 0;
    loop {
        tick.tick().await;
        t += 1;
        let now = counts(&rt);
        let delta: Vec<u64> = now
            .iter()
            .zip(&prev)
            .map(|((_, n), (_, p))| n.saturating_sub(*p))
            .collect();
        println!("{}", row(t, &delta));
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

/// The run's split against the configured weights: one row per phase of the incident
/// (or one for the whole run without one), and the whole run.
pub(crate) fn summary(rt: &Runtime, marks: &Marks) -> String {
    let spans = marks.spans(rt);
    let snap = rt.current();
    let Some(pool) = snap.pools.first() else {
        return String::new();
    };
    let mut header: Vec<(&str, Align)> = vec![("phase", Align::Left), ("seconds", Align::Left)];
    header.extend(
        pool.cfg
            .backends
            .iter()
            .map(|b| (b.name.as_str(), Align::Right)),
    );
    header.push(("requests", Align::Right));
    let mut t = table::new(&header);
    let wsum = pool.cfg.total_weight().max(1) as f64;
    let mut intended = vec!["configured".to_string(), "-".to_string()];
    intended.extend(
        pool.cfg
            .backends
            .iter()
            .map(|b| format!("{:.1}%", 100.0 * f64::from(b.weight) / wsum)),
    );
    intended.push("-".to_string());
    t.add_row(intended);
    for (from, to) in spans {
        let n: Vec<u64> = to
            .counts
            .iter()
            .map(|(b, c)| {
                let before = from.counts.iter().find(|(a, _)| a == b).map_or(0, |x| x.1);
                c.saturating_sub(before)
            })
            .collect();
        let total: u64 = n.iter().sum();
        let mut cells = vec![
            from.name.to_string(),
            format!("{:.0}-{:.0}", from.at, to.at),
        ];
        cells.extend(
            n.iter()
                .map(|x| format!("{:.1}%", 100.0 * *x as f64 / total.max(1) as f64)),
        );
        cells.push(total.to_string());
        t.add_row(cells);
    }
    format!(
        "\npool {}: share of requests by phase\n{}",
        pool.cfg.name,
        table::render(&t, "  ")
    )
}

#[cfg(test)]
mod tests {
    use super::{header, row};

    #[test]
    fn rows_line_up_under_their_header() {
        let names = vec!["demo-1".to_string(), "demo-2".to_string()];
        let h = header(&names);
        assert_eq!(
            h,
            "  time  demo-1          demo-2           total\n   (s)  req/s   share   req/s   share    req/s\n"
        );
        assert_eq!(
            row(12, &[25, 75]),
            "    12     25   25.0%      75   75.0%      100"
        );
        let widths: Vec<usize> = h.lines().map(str::len).collect();
        assert_eq!(widths[1], row(12, &[25, 75]).len());
    }
}
