//! Traffic summaries and an incident's impact.
//!
//! The binary journals each pool's traffic every [`SUMMARY_MS`] as a [`TrafficSummary`]:
//! per watch tick the requests answered to clients and how many of them failed, the
//! client-visible latency histogram of the requests that did not fail, and per backend
//! its tries, failed tries and the failures clients saw. That is enough to state an
//! incident's impact from the journal alone, long after the process that saw it
//! ([`impact`]): requests and client-visible failures over the incident's window (to the
//! tick), and the requests answered slower than the pool's normal p99 (the p99 of the
//! summaries in the [`NORMAL_MS`] before the onset). A summary at the window's edge
//! counts its latency and per-backend totals in the part its ticks put in the window.
//!
//! "Normal" must not be the incident itself. An onset is an estimate, and a backend can
//! be slow before it (slow from its first request, or worsening before its alert
//! could tell), so a summary before the onset in which one of the incident's backends
//! already answered markedly slower than the pool's others (its p99 past
//! [`DEGRADED_RATIO`] times theirs and past [`DEGRADED_FLOOR_MS`], the latency alert's
//! own bar) is left out of the normal: with a third of a pool's requests at 300 ms, its
//! p99 is 300 ms, and nothing of the incident would count as slower than that. When
//! nothing is left, the normal is unknown and the draft says why. The other backends'
//! latency is not put in its place: the summaries keep only their quantiles, not the
//! histogram a count of the pool's answers above it would need, and during the incident
//! they carry the traffic the slow backend does not, so their p99 is not the pool's
//! normal either.

use crate::alert::LATENCY_BOUNDS_MS;
use serde::{Deserialize, Serialize};

/// How often the binary journals a pool's traffic.
pub const SUMMARY_MS: u64 = 10_000;
/// The period before an incident's onset whose p99 is the pool's "normal".
pub const NORMAL_MS: u64 = 10 * 60 * 1000;
/// Requests a normal p99 needs before it means anything.
const NORMAL_MIN_REQUESTS: u64 = 100;
/// A backend whose p99 in a summary is past this many times every other backend's (and
/// past [`DEGRADED_FLOOR_MS`]) was already degraded then: the latency alert's ratio.
const DEGRADED_RATIO: f64 = 3.0;
/// The least p99 (ms) a degraded backend has: the latency alert's floor.
const DEGRADED_FLOOR_MS: f64 = 10.0;

/// One pool's traffic over `(from_ms, to_ms]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrafficSummary {
    /// The pool.
    pub pool: String,
    /// Start of the period, unix ms (exclusive).
    pub from_ms: u64,
    /// End of the period, unix ms.
    pub to_ms: u64,
    /// Per watch tick, oldest first: `[tick end (unix ms), requests answered to clients,
    /// of which failed]` (a failure: 5xx, tango's own included, or no answer).
    pub ticks: Vec<[u64; 3]>,
    /// Client-visible latency (to the response head) of the requests that did not fail:
    /// counts per bucket of [`LATENCY_BOUNDS_MS`], then the unbounded bucket.
    pub latency: Vec<u64>,
    /// The median of `latency` (bucket upper bound, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// The 99th percentile of `latency` (bucket upper bound, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Each backend's part.
    pub backends: Vec<BackendTraffic>,
}

/// One backend's part of a [`TrafficSummary`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BackendTraffic {
    /// The backend's name.
    pub name: String,
    /// Tries sent to it (or attempted: a refused connection is a try).
    pub tries: u64,
    /// Tries that failed: 5xx or no response.
    pub failed_tries: u64,
    /// Failures clients saw whose last try was this backend.
    pub client_errors: u64,
    /// Its tries' latency quantiles (bucket upper bounds, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// Its tries' 99th percentile (bucket upper bound, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// The upper bound (ms) of the histogram bucket holding quantile `q`; the unbounded
/// bucket reads as twice the last bound. `None` for an empty histogram.
pub fn quantile_ms(hist: &[u64], q: f64) -> Option<f64> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let want = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= want {
            return Some(upper_ms(i));
        }
    }
    None
}

fn upper_ms(i: usize) -> f64 {
    LATENCY_BOUNDS_MS
        .get(i)
        .copied()
        .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] * 2.0)
}

/// Requests in buckets wholly above `bound_ms`.
fn above(hist: &[u64], bound_ms: f64) -> u64 {
    hist.iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && upper_ms(i - 1) >= bound_ms)
        .map(|(_, n)| n)
        .sum()
}

/// One backend over an incident's window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackendImpact {
    /// The backend's name.
    pub name: String,
    /// Tries sent to it.
    pub tries: u64,
    /// Tries that failed.
    pub failed_tries: u64,
    /// Failures clients saw whose last try was this backend.
    pub client_errors: u64,
}

/// What an incident cost, from the traffic summaries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Impact {
    /// The window's start, unix ms.
    pub from_ms: u64,
    /// Its end.
    pub to_ms: u64,
    /// Requests answered to the pool's clients in the window, and those that failed.
    pub requests: u64,
    /// Of `requests`, those that failed.
    pub errors: u64,
    /// The pool's p99 over the [`NORMAL_MS`] before the onset (bucket upper bound),
    /// leaving out the summaries in which the incident was already under way.
    pub normal_p99_ms: Option<f64>,
    /// The incident's backends that were already degraded in summaries before the onset
    /// (those summaries are left out of the normal).
    pub degraded_before: Vec<String>,
    /// The time (ms) the summaries left out of the normal span.
    pub degraded_ms: u64,
    /// Requests that did not fail but took longer than `normal_p99_ms`.
    pub slow: Option<u64>,
    /// Failed tries in the window, and how many of them a retry absorbed.
    pub failed_tries: u64,
    /// Of `failed_tries`, those a retry elsewhere absorbed.
    pub absorbed: u64,
    /// Each backend's part.
    pub backends: Vec<BackendImpact>,
    /// Summaries cover the whole window (none missing at either end).
    pub covered: bool,
}

impl Impact {
    /// Requests that failed or were answered slower than normal.
    pub fn affected(&self) -> u64 {
        self.errors + self.slow.unwrap_or(0)
    }
}

/// Of `suspects`, the backends whose tries in `s` were markedly slower than every
/// other backend's: p99 past [`DEGRADED_FLOOR_MS`] and [`DEGRADED_RATIO`] times the
/// others' highest. A backend alone in its summary has no yardstick and is not judged.
fn degraded_in<'a>(s: &'a TrafficSummary, suspects: &[&str]) -> Vec<&'a str> {
    let p99 = |b: &BackendTraffic| b.p99_ms.filter(|_| b.tries > 0);
    s.backends
        .iter()
        .filter(|b| suspects.contains(&b.name.as_str()))
        .filter_map(|b| {
            let mine = p99(b)?;
            let others = s
                .backends
                .iter()
                .filter(|o| o.name != b.name)
                .filter_map(p99)
                .reduce(f64::max)?;
            (mine > DEGRADED_FLOOR_MS && mine > DEGRADED_RATIO * others).then_some(b.name.as_str())
        })
        .collect()
}

/// The pool's p99 over the [`NORMAL_MS`] before `from_ms`, when enough requests make
/// it mean something, leaving out the summaries in which one of `suspects` (the
/// incident's backends) was already degraded: sets `out`'s normal and what was left out.
fn normal_p99(out: &mut Impact, mine: &[&TrafficSummary], from_ms: u64, suspects: &[&str]) {
    let mut normal = vec![0u64; LATENCY_BOUNDS_MS.len() + 1];
    let lo = from_ms.saturating_sub(NORMAL_MS);
    for s in mine
        .iter()
        .filter(|s| s.to_ms <= from_ms && s.from_ms >= lo)
    {
        let degraded = degraded_in(s, suspects);
        if !degraded.is_empty() {
            for name in degraded {
                if !out.degraded_before.iter().any(|d| d == name) {
                    out.degraded_before.push(name.to_string());
                }
            }
            out.degraded_ms += s.to_ms.saturating_sub(s.from_ms);
            continue;
        }
        for (a, b) in normal.iter_mut().zip(&s.latency) {
            *a += b;
        }
    }
    if normal.iter().sum::<u64>() >= NORMAL_MIN_REQUESTS {
        out.normal_p99_ms = quantile_ms(&normal, 0.99);
    }
}

/// What of one summary falls in a window: the requests and failures of its ticks whose
/// middle does, and the fractions of its totals they are.
struct Part {
    requests: u64,
    errors: u64,
    /// The part of the summary's requests (for its latency and tries).
    f_req: f64,
    /// The part of its failures (for its failed tries and client failures).
    f_err: f64,
}

fn part_in(s: &TrafficSummary, from_ms: u64, to_ms: u64) -> Part {
    let (mut requests, mut errors) = (0, 0);
    for [at, r, e] in &s.ticks {
        let mid = at.saturating_sub(500);
        if mid >= from_ms && mid <= to_ms {
            requests += r;
            errors += e;
        }
    }
    // The summary's totals (latency, backends) count in the part its ticks say falls in
    // the window: by requests, and failures by failures (they cluster in the
    // incident), else by time.
    let (all_r, all_e) = s
        .ticks
        .iter()
        .fold((0, 0), |a, [_, r, e]| (a.0 + r, a.1 + e));
    let span = s.to_ms.saturating_sub(s.from_ms).max(1);
    let overlap = s.to_ms.min(to_ms).saturating_sub(s.from_ms.max(from_ms));
    let by_time = overlap as f64 / span as f64;
    let part = |n: u64, of: u64| {
        if of > 0 {
            n as f64 / of as f64
        } else {
            by_time
        }
    };
    Part {
        requests,
        errors,
        f_req: part(requests, all_r),
        f_err: part(errors, all_e),
    }
}

/// The impact on `pool` over `[from_ms, to_ms]` (an incident's onset to its
/// resolution), from `summaries` (any order, any pools). A tick counts when its middle
/// lies in the window; a summary's latency and per-backend figures count in the
/// proportion of its requests (failures, for failures) whose ticks do. `suspects` are
/// the incident's backends: where one was already degraded before the onset, that
/// traffic is not the pool's normal.
pub fn impact(
    summaries: &[&TrafficSummary],
    pool: &str,
    from_ms: u64,
    to_ms: u64,
    suspects: &[&str],
) -> Impact {
    let mine: Vec<&TrafficSummary> = summaries
        .iter()
        .copied()
        .filter(|s| s.pool == pool)
        .collect();
    let mut out = Impact {
        from_ms,
        to_ms,
        ..Impact::default()
    };
    normal_p99(&mut out, &mine, from_ms, suspects);
    let mut slow = 0.0;
    let mut backends: Vec<(String, [f64; 3])> = Vec::new();
    for s in &mine {
        let Part {
            requests,
            errors,
            f_req,
            f_err,
        } = part_in(s, from_ms, to_ms);
        out.requests += requests;
        out.errors += errors;
        if f_req == 0.0 && f_err == 0.0 {
            continue;
        }
        if let Some(p99) = out.normal_p99_ms {
            slow += f_req * above(&s.latency, p99) as f64;
        }
        for b in &s.backends {
            // Failed tries a retry absorbed never show in the pool's failures.
            let f_failed = if b.client_errors > 0 { f_err } else { f_req };
            let add = [
                f_req * b.tries as f64,
                f_failed * b.failed_tries as f64,
                f_err * b.client_errors as f64,
            ];
            match backends.iter_mut().find(|(n, _)| *n == b.name) {
                Some((_, v)) => v.iter_mut().zip(add).for_each(|(a, b)| *a += b),
                None => backends.push((b.name.clone(), add)),
            }
        }
    }
    out.slow = out.normal_p99_ms.map(|_| slow.round() as u64);
    out.backends = backends
        .into_iter()
        .map(|(name, [t, f, c])| BackendImpact {
            name,
            tries: t.round() as u64,
            failed_tries: f.round() as u64,
            client_errors: c.round() as u64,
        })
        .collect();
    out.failed_tries = out.backends.iter().map(|b| b.failed_tries).sum();
    let reached: u64 = out.backends.iter().map(|b| b.client_errors).sum();
    out.absorbed = out.failed_tries.saturating_sub(reached);
    let first = mine.iter().map(|s| s.from_ms).min();
    let last = mine.iter().map(|s| s.to_ms).max();
    out.covered =
        matches!((first, last), (Some(a), Some(b)) if a <= from_ms && b + SUMMARY_MS >= to_ms);
    out
}
