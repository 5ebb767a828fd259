//! Latency and error-rate outliers: one backend against the pool's other backends.
//!
//! A backend alone cannot be judged "slow" or "failing" without a yardstick; the others in
//! its pool, serving the same requests, are that yardstick. Both tests need a minimum of
//! samples on each side and an absolute floor (5% errors; 10 ms), so a backend at 0.2%
//! errors beside others at 0% does not fire. The latency test is in `latency.rs`.

use super::engine::PoolDetector;
use super::latency;
use super::onset::{self, TickBar};
use super::window::{Sample, HIST_LEN};
use super::{AlertEvent, AlertKind, Basis, Cause, DetectorConfig, Evidence};

/// A computed comparison, whether or not it fires.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    pub observed: f64,
    pub expected: f64,
    pub ratio: f64,
    pub z: f64,
    pub requests: u64,
    /// Whether an active alert on this comparison may resolve.
    pub resolved: bool,
    pub detail: Option<String>,
    /// Errors: the failed tries in the window that reached clients, when known.
    pub client_errors: Option<u64>,
    /// What a tick alone must show to count as part of it (for the onset).
    pub bar: TickBar,
}

/// This backend's error rate against the others' pooled rate, if both sides have enough
/// requests. `pool` is the window's sum over every backend, this one included.
pub(crate) fn errors(cfg: &DetectorConfig, mine: &Sample, pool: &Sample) -> Option<Comparison> {
    let others_n = pool.n - mine.n;
    if mine.n < cfg.error_min_requests || others_n < cfg.error_min_requests {
        return None;
    }
    let rate = mine.errors as f64 / mine.n as f64;
    let others = (pool.errors - mine.errors) as f64 / others_n as f64;
    // A floor on the reference rate keeps z finite when the others have no errors.
    let q = others.max(1e-3);
    let n = mine.n as f64;
    Some(Comparison {
        observed: rate,
        expected: others,
        ratio: rate / q,
        z: (mine.errors as f64 - n * q) / (n * q * (1.0 - q)).sqrt(),
        requests: mine.n,
        resolved: false,
        detail: None,
        client_errors: None,
        bar: TickBar::Errors { others },
    })
}

pub(crate) fn errors_fire(cfg: &DetectorConfig, mine: &Sample, c: &Comparison) -> bool {
    mine.errors >= cfg.error_min_errors
        && c.observed >= cfg.error_min_rate
        && c.observed >= cfg.error_ratio * c.expected
}

fn errors_resolved(cfg: &DetectorConfig, c: &Comparison) -> bool {
    c.observed < cfg.error_min_rate / 2.0 || c.observed < cfg.error_ratio * 2.0 / 3.0 * c.expected
}

fn latency_comparison(t: &latency::LatencyTest) -> Comparison {
    Comparison {
        observed: t.mine_p99,
        expected: t.others_p99,
        ratio: if t.others_p99 > 0.0 {
            t.mine_p99 / t.others_p99
        } else {
            f64::INFINITY
        },
        z: t.z,
        requests: t.requests,
        resolved: t.resolved,
        detail: Some(format!(
            "{:.0}% of its requests slower than {} ms (the others: {:.1}%)",
            t.fraction * 100.0,
            t.threshold,
            t.others_fraction * 100.0
        )),
        client_errors: None,
        bar: TickBar::Slow {
            threshold: t.threshold,
            others: t.others_fraction,
        },
    }
}

/// Per window: (ticks, comparison, fires).
type Tests = Vec<(u32, Comparison, bool)>;

impl PoolDetector {
    /// Latency and error outliers of every backend for this tick.
    pub(super) fn step_outliers(&mut self, now: u64, events: &mut Vec<AlertEvent>) {
        let n_windows = self.cfg.windows.len();
        let mut pool = vec![Sample::default(); n_windows];
        for st in &self.backends {
            for (j, (_, s)) in st.windows.iter().enumerate() {
                pool[j].n += s.n;
                pool[j].errors += s.errors;
                for (a, b) in pool[j].hist.iter_mut().zip(&s.hist) {
                    *a += b;
                }
            }
        }
        let any_latency = self.cfg.latency_ratio.is_finite()
            && pool.iter().any(|s| s.hist.iter().any(|n| *n > 0));
        for i in 0..self.backends.len() {
            let mut errs: Tests = Vec::new();
            let mut lats: Tests = Vec::new();
            let st = &self.backends[i];
            for (j, (len, mine)) in st.windows.iter().enumerate() {
                if let Some(c) = errors(&self.cfg, mine, &pool[j]) {
                    let fire = errors_fire(&self.cfg, mine, &c);
                    let c = Comparison {
                        resolved: errors_resolved(&self.cfg, &c),
                        client_errors: st.client_errors_known.then_some(mine.client_errors),
                        ..c
                    };
                    errs.push((len, c, fire));
                }
                if any_latency {
                    let mut others = [0u64; HIST_LEN];
                    for (o, (p, m)) in others.iter_mut().zip(pool[j].hist.iter().zip(&mine.hist)) {
                        *o = p - m;
                    }
                    if let Some(t) = latency::test(&self.cfg, &st.windows, mine, len, &others) {
                        lats.push((len, latency_comparison(&t), t.fires));
                    }
                }
            }
            for (kind, list) in [(AlertKind::Errors, errs), (AlertKind::Latency, lats)] {
                if let Some(ev) = self.step_outlier(i, kind, list, now) {
                    events.push(ev);
                }
            }
        }
    }

    fn step_outlier(
        &mut self,
        i: usize,
        kind: AlertKind,
        list: Tests,
        now: u64,
    ) -> Option<AlertEvent> {
        let k = kind.index();
        if self.backends[i].active[k].is_some() {
            // Judged on the shortest window that can be tested.
            let done = list.first().is_none_or(|(_, c, _)| c.resolved);
            return self.count_resolve(i, kind, done, now);
        }
        let since = self.backends[i].resolved_tick[k].map(|t| self.tick - t);
        let hit = list
            .into_iter()
            .filter(|(len, _, fire)| *fire && since.is_none_or(|t| u64::from(*len) <= t))
            .max_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio));
        let st = &mut self.backends[i];
        let Some((len, c, _)) = hit else {
            st.pending[k] = 0;
            return None;
        };
        st.pending[k] += 1;
        if st.pending[k] == 1 {
            st.pending_since[k] = now;
        }
        if st.pending[k] < self.cfg.hold_ticks {
            return None;
        }
        let tick_ms = self.cfg.tick_ms;
        // The tick the condition first held is when the test could tell, which for a
        // backend slow from its first request is when its window had filled: the ticks
        // themselves date it (`onset.rs`).
        let held = st.pending_since[k].saturating_sub(tick_ms);
        let history = st.windows.recent(u32::MAX);
        let onset_ms = onset::dated(history, &self.times, &self.cfg, c.bar, since, held);
        let ev = Evidence {
            pool: self.pool.clone(),
            backend: st.name.clone(),
            kind,
            basis: Basis::Effective,
            observed: c.observed,
            expected: c.expected,
            ratio: c.ratio,
            z: c.z,
            window_ms: u64::from(len) * tick_ms,
            requests: c.requests,
            pool_requests: 0,
            phi: self.phi,
            onset_ms,
            at_ms: now,
            cause: Cause::Unknown,
            detail: c.detail,
            client_errors: c.client_errors,
        };
        st.active[k] = Some(ev.clone());
        st.pending[k] = 0;
        st.resolving[k] = 0;
        Some(AlertEvent::Fired(ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_need_both_the_ratio_and_the_floor() {
        let cfg = DetectorConfig::default();
        let mine = Sample {
            n: 1000,
            errors: 3,
            ..Sample::default()
        };
        let pool = Sample {
            n: 3000,
            errors: 3,
            ..Sample::default()
        };
        let c = errors(&cfg, &mine, &pool).unwrap();
        assert!(!errors_fire(&cfg, &mine, &c), "0.3% is under the 5% floor");
        let mine = Sample {
            n: 1000,
            errors: 100,
            ..Sample::default()
        };
        let pool = Sample {
            n: 3000,
            errors: 110,
            ..Sample::default()
        };
        let c = errors(&cfg, &mine, &pool).unwrap();
        assert!(errors_fire(&cfg, &mine, &c));
        assert!((c.expected - 0.005).abs() < 1e-12);
    }
}
