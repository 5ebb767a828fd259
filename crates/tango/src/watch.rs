//! The watch: once a tick, read every backend's counters (never the hot path's locks),
//! feed tango-core's skew detector, publish gauges, and turn alerts into log lines,
//! journal events (with the suspected cause) and deliveries. It also keeps what the
//! reload guard predicts from (each pool's recent rate and latency), takes the split to
//! expect after a predicted change, and hands every alert to the armed canary.

use crate::canary::{Expectations, Split};

pub(crate) mod history;
mod straddle;
use crate::journal::{unix_ms, Sink};
use crate::runtime::{PoolRuntime, Runtime};
use crate::stats::{StatsSnapshot, LATENCY_BUCKETS};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use straddle::Straddle;
use tango_core::config::Alerts;
use tango_core::config::PolicyKind;
use tango_core::detector::{
    AlertEvent, BackendGauge, BackendSample, DetectorConfig, Evidence, PoolDetector, PoolTick,
    ShiftConfig, ShiftDetector,
};
use tango_core::journal::{attribute, EventKind, SuspectedCause};

/// An alert as the API shows it: the evidence and what probably caused it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct AlertRecord {
    pub(crate) evidence: Evidence,
    pub(crate) cause: SuspectedCause,
    pub(crate) active: bool,
    pub(crate) resolved_ms: Option<u64>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct PoolView {
    pub(crate) gauges: Vec<BackendGauge>,
    pub(crate) skew_score: f64,
}

/// Pool requests and errors per tick, for a post-mortem's impact line.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct TrafficPoint {
    pub(crate) ts_ms: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
}

/// What the watch publishes; read by `/metrics` and the admin API.
/// A pool's recent load, for the reload guard's prediction.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Observed {
    pub(crate) rate_rps: f64,
    /// Mean response time in milliseconds (0: no response seen).
    pub(crate) latency_ms: f64,
}

#[derive(Default)]
pub(crate) struct WatchState {
    pub(crate) pools: Mutex<HashMap<String, PoolView>>,
    pub(crate) alerts: Mutex<VecDeque<AlertRecord>>,
    pub(crate) traffic: Mutex<VecDeque<TrafficPoint>>,
    pub(crate) observed: Mutex<HashMap<String, Observed>>,
    /// Per pool, the split the shift detector should expect from a generation on.
    expectations: Mutex<HashMap<String, (u64, Split)>>,
    pub(crate) canary: Mutex<Option<crate::canary::Armed>>,
    /// Shares and latency over the last fifteen minutes, for the dashboard.
    pub(crate) history: Mutex<history::History>,
}

const ALERT_HISTORY: usize = 1000;
/// Six hours of one-second points.
const TRAFFIC_HISTORY: usize = 6 * 3600;

impl WatchState {
    /// From `generation` on, expect these splits (a change the guard predicted and let
    /// through without force): the shift detector re-baselines to them. A pool in
    /// `changed` without a split here forgets any it was still to expect: that change
    /// was not predicted.
    pub(crate) fn expect(&self, generation: u64, e: Expectations, changed: &[String]) {
        let mut x = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
        for pool in changed {
            x.remove(pool);
        }
        for (pool, shares) in e {
            x.insert(pool, (generation, shares));
        }
    }

    /// The expectations due at `generation`.
    fn due(&self, generation: u64) -> Expectations {
        let mut x = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
        let pools: Vec<String> = x
            .iter()
            .filter(|(_, (g, _))| *g <= generation)
            .map(|(p, _)| p.clone())
            .collect();
        pools
            .into_iter()
            .filter_map(|p| x.remove(&p).map(|(_, shares)| (p, shares)))
            .collect()
    }

    pub(crate) fn active_alerts(&self) -> Vec<AlertRecord> {
        self.alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|a| a.active)
            .cloned()
            .collect()
    }
}

/// Detector settings for a pool's policy. Latency-aware policies move traffic away from
/// slow backends on purpose, so a backend under its weight share is expected there;
/// only a large over-share is worth an alert.
fn detector_config(policy: PolicyKind, tick: Duration) -> DetectorConfig {
    let mut c = DetectorConfig {
        tick_ms: tick.as_millis() as u64,
        ..DetectorConfig::default()
    };
    match policy {
        PolicyKind::LeastRequest | PolicyKind::PeakEwma => {
            c.over_ratio = 2.5;
            c.resolve_over_ratio = 1.8;
            c.under_ratio = 0.0;
            c.configured_skew_alerts = false;
        }
        _ => {}
    }
    c
}

/// Per pool: the share detector (does traffic follow the configuration?) and the shift
/// detector (did the split change, e.g. because the configuration did?).
struct PoolWatch {
    detector: PoolDetector,
    shift: ShiftDetector,
    policy: PolicyKind,
    prev: HashMap<String, StatsSnapshot>,
    /// The tick that straddles a reload.
    straddle: Straddle,
    /// Recent ticks' (requests, latency sum in ms, latency count), newest last.
    load: VecDeque<(u64, f64, u64)>,
}

/// Ticks the observed rate and latency are averaged over.
const LOAD_TICKS: usize = 10;

impl PoolWatch {
    fn new(pool: &str, policy: PolicyKind, tick: Duration) -> Self {
        let cfg = detector_config(policy, tick);
        Self {
            detector: PoolDetector::new(pool, cfg.clone()),
            shift: ShiftDetector::new(pool, cfg, ShiftConfig::default()),
            policy,
            prev: HashMap::new(),
            straddle: Straddle::default(),
            load: VecDeque::new(),
        }
    }

    /// Record the tick's load; returns the recent rate and mean latency.
    fn observe(&mut self, input: &PoolTick, requests: u64, tick: Duration) -> Observed {
        let sum: f64 = input.backends.iter().map(|b| b.latency_sum_ms).sum();
        let count: u64 = input.backends.iter().map(|b| b.latency_count).sum();
        if self.load.len() == LOAD_TICKS {
            self.load.pop_front();
        }
        self.load.push_back((requests, sum, count));
        let (r, s, c) = self
            .load
            .iter()
            .fold((0, 0.0, 0), |a, x| (a.0 + x.0, a.1 + x.1, a.2 + x.2));
        Observed {
            rate_rps: r as f64 / (self.load.len() as f64 * tick.as_secs_f64()),
            latency_ms: if c > 0 { s / c as f64 } else { 0.0 },
        }
    }
}

pub(crate) async fn run(rt: Arc<Runtime>, journal: Sink, state: Arc<WatchState>, tick: Duration) {
    let mut pools: HashMap<String, PoolWatch> = HashMap::new();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let snap = rt.snapshot.load_full();
        let now_ms = unix_ms();
        let applied_ms = (snap.applied_at * 1000.0) as u64;
        let mut views = HashMap::new();
        let mut observed = HashMap::new();
        let mut events = Vec::new();
        let (mut tick_requests, mut tick_errors) = (0, 0);
        pools.retain(|name, _| snap.pools.iter().any(|p| &p.cfg.name == name));
        let mut due = state.due(snap.generation);
        for pool in &snap.pools {
            let w = pools
                .entry(pool.cfg.name.clone())
                .or_insert_with(|| PoolWatch::new(&pool.cfg.name, pool.cfg.policy, tick));
            if w.policy != pool.cfg.policy {
                // A new policy changes what "even" means for the share detector. The
                // shift detector keeps its baseline: the change may be the incident.
                w.detector = PoolDetector::new(
                    pool.cfg.name.clone(),
                    detector_config(pool.cfg.policy, tick),
                );
                w.policy = pool.cfg.policy;
            }
            if let Some(i) = due.iter().position(|(p, _)| *p == pool.cfg.name) {
                w.shift.expect(due.swap_remove(i).1);
            }
            let (mut input, requests, errors) = sample(&rt, pool, &mut w.prev, now_ms);
            w.straddle.apply(&mut input, snap.generation, applied_ms);
            observed.insert(pool.cfg.name.clone(), w.observe(&input, requests, tick));
            tick_requests += requests;
            tick_errors += errors;
            let report = w.detector.tick(&input);
            events.extend(report.events);
            events.extend(w.shift.tick(&input).events);
            views.insert(
                pool.cfg.name.clone(),
                PoolView {
                    gauges: report.gauges,
                    skew_score: report.skew_score,
                },
            );
        }
        history::record(&state.history, now_ms, &snap.pools, &views, &observed);
        *state.pools.lock().unwrap_or_else(|p| p.into_inner()) = views;
        *state.observed.lock().unwrap_or_else(|p| p.into_inner()) = observed;
        {
            let mut t = state.traffic.lock().unwrap_or_else(|p| p.into_inner());
            if t.len() == TRAFFIC_HISTORY {
                t.pop_front();
            }
            t.push_back(TrafficPoint {
                ts_ms: now_ms,
                requests: tick_requests,
                errors: tick_errors,
            });
        }
        for ev in events {
            handle_event(&journal, &state, &snap.config.alerts, ev, now_ms).await;
        }
        crate::canary::expire(&state, &journal, now_ms);
    }
}

/// Read one pool's counters into the detector's input. Returns the input and the
/// pool's requests and errors in this tick.
fn sample(
    rt: &Runtime,
    pool: &PoolRuntime,
    prev: &mut HashMap<String, StatsSnapshot>,
    now_ms: u64,
) -> (PoolTick, u64, u64) {
    let now = rt.now_ms();
    let mut backends = Vec::with_capacity(pool.backends.len());
    let (mut req, mut err) = (0, 0);
    for (i, b) in pool.backends.iter().enumerate() {
        let cfg = &pool.cfg.backends[i];
        let s = b.stats.snapshot();
        let p = prev.get(&cfg.address).cloned().unwrap_or_default();
        let buckets: Vec<u64> = s
            .latency_buckets
            .iter()
            .zip(p.latency_buckets.iter())
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let count: u64 = buckets.iter().sum();
        req += s.requests().saturating_sub(p.requests());
        err += s.errors().saturating_sub(p.errors());
        backends.push(BackendSample {
            name: cfg.name.clone(),
            configured_weight: f64::from(cfg.weight),
            effective_weight: crate::keys::effective_weight(pool, i, now),
            requests: s.requests(),
            errors: s.errors(),
            latency_sum_ms: s.latency_sum_us.saturating_sub(p.latency_sum_us) as f64 / 1000.0,
            latency_count: count,
            latency_p99_ms: quantile_ms(&buckets, 0.99),
            latency_buckets: buckets,
        });
        prev.insert(cfg.address.clone(), s);
    }
    let expected = pool.cfg.policy.is_hash().then(|| {
        // Key-space ownership, with ineligible backends' keys spread over the rest.
        let masked: Vec<f64> = pool
            .ownership
            .iter()
            .zip(&backends)
            .map(|(o, b)| if b.effective_weight > 0.0 { *o } else { 0.0 })
            .collect();
        let sum: f64 = masked.iter().sum();
        if sum > 0.0 {
            masked.iter().map(|m| m / sum).collect()
        } else {
            masked
        }
    });
    let expected_configured = pool.cfg.policy.is_hash().then(|| pool.ownership.clone());
    let keys = pool
        .cfg
        .policy
        .is_hash()
        .then(|| pool.shared.keys.take_stats(pool, rt.elapsed()));
    (
        PoolTick {
            now_ms,
            backends,
            expected,
            expected_configured,
            keys,
        },
        req,
        err,
    )
}

/// The upper bound of the bucket holding quantile `q`, in milliseconds.
fn quantile_ms(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil() as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= want {
            return Some(
                LATENCY_BUCKETS
                    .get(i)
                    .copied()
                    .unwrap_or(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1] * 2.0)
                    * 1000.0,
            );
        }
    }
    None
}

async fn handle_event(
    journal: &Sink,
    state: &WatchState,
    targets: &Alerts,
    ev: AlertEvent,
    now_ms: u64,
) {
    match ev {
        AlertEvent::Fired(evidence) => {
            let mut cause = attribute(&evidence, &journal.recent());
            // Journaled before the canary acts, so the journal reads: applied, alert,
            // rollback.
            let mut journaled = evidence.clone();
            journaled.detail = Some(match &journaled.detail {
                Some(d) => format!("{d}; {}", cause.sentence),
                None => cause.sentence.clone(),
            });
            journal.record(EventKind::AlertFired {
                evidence: journaled,
            });
            if let Some(clause) = crate::canary::on_alert(state, &evidence, &cause, now_ms).await {
                cause.sentence = format!("{}; {clause}", cause.sentence);
            }
            tracing::warn!(
                pool = %evidence.pool,
                backend = %evidence.backend,
                kind = evidence.kind.as_str(),
                observed = evidence.observed,
                expected = evidence.expected,
                ratio = evidence.ratio,
                z = evidence.z,
                window_ms = evidence.window_ms,
                requests = evidence.requests,
                cause = cause.class.as_str(),
                "ALERT {}",
                cause.sentence
            );
            let record = AlertRecord {
                evidence,
                cause,
                active: true,
                resolved_ms: None,
            };
            crate::deliver::deliver(targets, &record);
            push_alert(state, record);
        }
        AlertEvent::Resolved {
            evidence,
            resolved_ms,
        } => {
            tracing::info!(pool = %evidence.pool, backend = %evidence.backend, kind = evidence.kind.as_str(), "alert resolved");
            journal.record(EventKind::AlertResolved {
                evidence: evidence.clone(),
            });
            let mut alerts = state.alerts.lock().unwrap_or_else(|p| p.into_inner());
            for a in alerts.iter_mut().filter(|a| a.active) {
                // Both detectors may alert on the same backend and kind; the basis
                // tells their alerts apart.
                if a.evidence.pool == evidence.pool
                    && a.evidence.backend == evidence.backend
                    && a.evidence.kind == evidence.kind
                    && a.evidence.basis == evidence.basis
                {
                    a.active = false;
                    a.resolved_ms = Some(resolved_ms);
                    crate::deliver::deliver(targets, a);
                }
            }
        }
    }
}

fn push_alert(state: &WatchState, a: AlertRecord) {
    let mut alerts = state.alerts.lock().unwrap_or_else(|p| p.into_inner());
    if alerts.len() == ALERT_HISTORY {
        if let Some(i) = alerts.iter().position(|a| !a.active) {
            alerts.remove(i);
        } else {
            alerts.pop_front();
        }
    }
    alerts.push_back(a);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_the_upper_bound_of_its_bucket() {
        let mut b = vec![0u64; 15];
        b[2] = 98; // <= 2.5 ms
        b[6] = 2; // <= 50 ms
        assert_eq!(quantile_ms(&b, 0.99), Some(50.0));
        assert_eq!(quantile_ms(&b, 0.5), Some(2.5));
        assert_eq!(quantile_ms(&[0; 15], 0.99), None);
    }
}
