//! What each pool served, tick by tick: the clients' view (answers, failures, latency)
//! beside each backend's tries. Summed over [`SUMMARY_MS`] it is journaled as a traffic
//! summary, which is what a post-mortem's impact is computed from, live or from the file.

use crate::journal::Sink;
use crate::stats::{ClientSnapshot, StatsSnapshot};
use tango_core::journal::{quantile_ms, BackendTraffic, EventKind, TrafficSummary, SUMMARY_MS};

/// One backend's tries in one tick.
#[derive(Debug, Clone, Default)]
pub(super) struct BackendTick {
    pub(super) name: String,
    pub(super) tries: u64,
    pub(super) failed: u64,
    pub(super) client_errors: u64,
    pub(super) latency: [u64; 15],
}

impl BackendTick {
    /// The change between two readings of a backend's counters.
    pub(super) fn between(name: &str, now: &StatsSnapshot, prev: &StatsSnapshot) -> Self {
        Self {
            name: name.to_string(),
            tries: now.requests().saturating_sub(prev.requests()),
            failed: now.errors().saturating_sub(prev.errors()),
            client_errors: now.client_errors.saturating_sub(prev.client_errors),
            latency: std::array::from_fn(|i| {
                now.latency_buckets[i].saturating_sub(prev.latency_buckets[i])
            }),
        }
    }
}

/// One pool's tick: what its clients saw and what each backend was asked.
#[derive(Debug, Clone, Default)]
pub(super) struct PoolTraffic {
    pub(super) at_ms: u64,
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) latency: [u64; 15],
    pub(super) backends: Vec<BackendTick>,
}

impl PoolTraffic {
    pub(super) fn new(at_ms: u64, now: &ClientSnapshot, prev: &ClientSnapshot) -> Self {
        Self {
            at_ms,
            requests: now.requests.saturating_sub(prev.requests),
            errors: now.errors.saturating_sub(prev.errors),
            latency: std::array::from_fn(|i| {
                now.latency_buckets[i].saturating_sub(prev.latency_buckets[i])
            }),
            backends: Vec::new(),
        }
    }
}

/// A pool's ticks since its last journaled summary.
#[derive(Debug, Default)]
pub(super) struct Summarizer {
    from_ms: Option<u64>,
    ticks: Vec<[u64; 3]>,
    latency: [u64; 15],
    backends: Vec<BackendTick>,
}

impl Summarizer {
    /// Add a tick; once [`SUMMARY_MS`] have passed, journal the summary and start the
    /// next. A period in which the pool served nothing and tried nothing is not written.
    pub(super) fn add(&mut self, pool: &str, t: &PoolTraffic, journal: &Sink) {
        let from = *self.from_ms.get_or_insert(t.at_ms.saturating_sub(1000));
        self.ticks.push([t.at_ms, t.requests, t.errors]);
        add_hist(&mut self.latency, &t.latency);
        for b in &t.backends {
            match self.backends.iter_mut().find(|x| x.name == b.name) {
                Some(x) => {
                    x.tries += b.tries;
                    x.failed += b.failed;
                    x.client_errors += b.client_errors;
                    add_hist(&mut x.latency, &b.latency);
                }
                None => self.backends.push(b.clone()),
            }
        }
        if t.at_ms.saturating_sub(from) < SUMMARY_MS {
            return;
        }
        let done = std::mem::take(self);
        self.from_ms = Some(t.at_ms);
        let busy =
            done.ticks.iter().any(|[_, r, _]| *r > 0) || done.backends.iter().any(|b| b.tries > 0);
        if busy {
            journal.record_traffic(EventKind::Traffic {
                summary: done.into_summary(pool, from, t.at_ms),
            });
        }
    }

    fn into_summary(self, pool: &str, from_ms: u64, to_ms: u64) -> TrafficSummary {
        TrafficSummary {
            pool: pool.to_string(),
            from_ms,
            to_ms,
            ticks: self.ticks,
            latency: self.latency.to_vec(),
            p50_ms: quantile_ms(&self.latency, 0.5),
            p99_ms: quantile_ms(&self.latency, 0.99),
            backends: self
                .backends
                .into_iter()
                .map(|b| BackendTraffic {
                    p50_ms: quantile_ms(&b.latency, 0.5),
                    p99_ms: quantile_ms(&b.latency, 0.99),
                    name: b.name,
                    tries: b.tries,
                    failed_tries: b.failed,
                    client_errors: b.client_errors,
                })
                .collect(),
        }
    }
}

fn add_hist(a: &mut [u64; 15], b: &[u64; 15]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at_ms: u64, requests: u64, errors: u64) -> PoolTraffic {
        let mut latency = [0; 15];
        latency[3] = requests - errors;
        PoolTraffic {
            at_ms,
            requests,
            errors,
            latency,
            backends: vec![BackendTick {
                name: "b1".into(),
                tries: requests + 1,
                failed: errors + 1,
                client_errors: errors,
                latency,
            }],
        }
    }

    fn summaries(journal: &Sink) -> Vec<TrafficSummary> {
        journal
            .all()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Traffic { summary } => Some(summary),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_ten_seconds_of_a_busy_pool_is_one_summary() {
        let journal = Sink::open(None, 1 << 20).unwrap();
        let mut s = Summarizer::default();
        for k in 1..=25u64 {
            s.add(
                "p",
                &tick(100_000 + 1000 * k, 10, u64::from(k == 3)),
                &journal,
            );
        }
        let got = summaries(&journal);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].from_ms, got[0].to_ms), (100_000, 110_000));
        assert_eq!(got[0].ticks.len(), 10);
        assert_eq!(got[0].ticks[2], [103_000, 10, 1]);
        assert_eq!((got[1].from_ms, got[1].to_ms), (110_000, 120_000));
        let b = &got[0].backends[0];
        assert_eq!((b.tries, b.failed_tries, b.client_errors), (110, 11, 1));
        assert_eq!(got[0].latency[3], 99);
        assert_eq!(got[0].p99_ms, Some(5.0));
        assert!(
            journal.recent().is_empty(),
            "summaries are kept apart from events"
        );
    }

    #[test]
    fn an_idle_period_is_not_journaled() {
        let journal = Sink::open(None, 1 << 20).unwrap();
        let mut s = Summarizer::default();
        for k in 1..=11u64 {
            let mut t = tick(1000 * k, 0, 0);
            t.backends[0].tries = 0;
            t.backends[0].failed = 0;
            s.add("p", &t, &journal);
        }
        assert!(summaries(&journal).is_empty());
    }
}
