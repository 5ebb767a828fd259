//! The watch loop: once a tick, read every backend's counters and what each pool's
//! clients saw (never the hot path's locks), feed tango-core's share and shift
//! detectors, journal each signal as evidence and hand it to `Control::on_alert` (the
//! armed canary may roll its reload back), and group the signals into incidents, each
//! told once (`incidents.rs`: the log, the journal, the API, deliveries). It journals
//! each pool's traffic every 10 s (`traffic.rs`). What it publishes (gauges, observed
//! load for the reload guard, incidents, history) and the splits it is told to expect
//! after a predicted change are `state.rs`'s. Reading a pool's counters each tick is
//! `sample.rs`'s; what becomes of a pool's signals (evidence, the canary, incidents)
//! `signals.rs`'s.

pub(crate) mod history;
mod incidents;
mod sample;
mod signals;
pub(crate) mod state;
mod straddle;
mod traffic;

use crate::control::canary::Seen;
use crate::control::reload::Control;
use crate::journal::{unix_ms, Sink};
use crate::runtime::Runtime;
use crate::stats::{ClientSnapshot, StatsSnapshot};
use incidents::Decorations;
use sample::sample;
use signals::{close_pool, signals, Recent};
use state::{Observed, PoolView, TrafficPoint, WatchState};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;
use straddle::Straddle;
use tango_core::config::PolicyKind;
use tango_core::detector::{
    AlertEvent, DetectorConfig, IncidentConfig, IncidentTracker, PoolDetector, PoolTick,
    ShiftConfig, ShiftDetector,
};
use traffic::Summarizer;

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
/// detector (did the split change, e.g. because the configuration did?), whose signals
/// the incident tracker groups into incidents.
struct PoolWatch {
    name: String,
    detector: PoolDetector,
    shift: ShiftDetector,
    incidents: IncidentTracker,
    decorations: Decorations,
    policy: PolicyKind,
    prev: HashMap<String, StatsSnapshot>,
    prev_client: ClientSnapshot,
    summary: Summarizer,
    /// The tick that straddles a reload.
    straddle: Straddle,
    /// When the last tick was sampled (time since start): a backend that came back
    /// since was in rotation for only part of the tick.
    sampled_ms: Option<u64>,
    /// Recent ticks' (requests, latency sum in ms, latency count), newest last.
    load: VecDeque<(u64, f64, u64)>,
    /// This tick's signals from both detectors, and the backends down now.
    events: Vec<AlertEvent>,
    down: Vec<String>,
}

/// Ticks the observed rate and latency are averaged over.
const LOAD_TICKS: usize = 10;

impl PoolWatch {
    fn new(pool: &str, policy: PolicyKind, tick: Duration) -> Self {
        let cfg = detector_config(policy, tick);
        Self {
            name: pool.to_string(),
            detector: PoolDetector::new(pool, cfg.clone()),
            shift: ShiftDetector::new(pool, cfg, ShiftConfig::default()),
            incidents: IncidentTracker::new(pool, IncidentConfig::default()),
            decorations: Decorations::default(),
            policy,
            prev: HashMap::new(),
            prev_client: ClientSnapshot::default(),
            summary: Summarizer::default(),
            straddle: Straddle::default(),
            sampled_ms: None,
            load: VecDeque::new(),
            events: Vec::new(),
            down: Vec::new(),
        }
    }

    /// A new policy changes what "even" means for the share detector: it starts afresh,
    /// and its signals end (returned as resolved). The shift detector takes the new
    /// policy's tuning too, and keeps its baseline: the change may be the incident. Its
    /// alerts that the new tuning would not raise end with the old one.
    fn follow_policy(
        &mut self,
        policy: PolicyKind,
        tick: Duration,
        now_ms: u64,
    ) -> Vec<AlertEvent> {
        if self.policy == policy {
            return Vec::new();
        }
        let mut ended: Vec<AlertEvent> = self
            .detector
            .active()
            .into_iter()
            .map(|evidence| AlertEvent::Resolved {
                evidence,
                resolved_ms: now_ms,
            })
            .collect();
        self.detector = PoolDetector::new(self.name.clone(), detector_config(policy, tick));
        ended.extend(self.shift.retune(detector_config(policy, tick), now_ms));
        self.policy = policy;
        ended
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

/// Six hours of one-second points.
pub(crate) const TRAFFIC_HISTORY: usize = 6 * 3600;

/// Every `tick` until the process ends. `control` rolls back a reload the armed canary
/// blames for an alert.
pub(crate) async fn run(
    rt: Arc<Runtime>,
    journal: Sink,
    state: Arc<WatchState>,
    control: Weak<Control>,
    tick: Duration,
) {
    let mut pools: HashMap<String, PoolWatch> = HashMap::new();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut resend = crate::control::deliver::Resend::new(unix_ms());
    loop {
        interval.tick().await;
        let snap = rt.snapshot.load_full();
        let now_ms = unix_ms();
        let targets = snap.config.alerts.clone();
        let gone: Vec<String> = pools
            .keys()
            .filter(|name| !snap.pools.iter().any(|p| &p.cfg.name == *name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(w) = pools.remove(&name) {
                close_pool(&journal, &state, &targets, &name, w, now_ms);
            }
        }
        let (requests, errors, seen) =
            detect(&rt, &snap, &state, &journal, &mut pools, tick, now_ms);
        {
            let mut t = state.traffic.lock().unwrap_or_else(|p| p.into_inner());
            if t.len() == TRAFFIC_HISTORY {
                t.pop_front();
            }
            t.push_back(TrafficPoint {
                ts_ms: now_ms,
                requests,
                errors,
            });
        }
        let mut recent = Recent::new(&journal);
        for pool in &snap.pools {
            if let Some(w) = pools.get_mut(&pool.cfg.name) {
                signals(&journal, &state, &control, &targets, w, &mut recent, now_ms).await;
            }
        }
        resend.tick(&targets, || state.incidents().0, now_ms);
        let retried = match control.upgrade() {
            Some(control) => control.canary_tick(now_ms, &seen).await,
            None => None,
        };
        // A rollback retried after it failed ends its alert's incident too.
        if let Some(r) = retried {
            if let Some(w) = pools.get_mut(&r.evidence.pool) {
                let e = &r.evidence;
                w.decorations.add(&e.backend, e.kind, &r.cause, r.clause);
            }
        }
    }
}

/// Sample every pool and run its detectors; publishes the gauges and the observed load.
/// Returns the tick's client requests and failures over all pools, and each pool's
/// tick as the canary counts it.
fn detect(
    rt: &Runtime,
    snap: &crate::runtime::Snapshot,
    state: &WatchState,
    journal: &Sink,
    pools: &mut HashMap<String, PoolWatch>,
    tick: Duration,
    now_ms: u64,
) -> (u64, u64, Vec<Seen>) {
    let applied_ms = (snap.applied_at * 1000.0) as u64;
    let mut views = HashMap::new();
    let mut observed = HashMap::new();
    let (mut requests, mut errors) = (0, 0);
    let mut seen = Vec::with_capacity(snap.pools.len());
    let mut due = state.due(snap.generation);
    for pool in &snap.pools {
        let w = pools
            .entry(pool.cfg.name.clone())
            .or_insert_with(|| PoolWatch::new(&pool.cfg.name, pool.cfg.policy, tick));
        let ended = w.follow_policy(pool.cfg.policy, tick, now_ms);
        if let Some(i) = due.iter().position(|(p, _)| *p == pool.cfg.name) {
            w.shift.expect(due.swap_remove(i).1);
        }
        let (mut input, traffic) = sample(rt, pool, w, now_ms);
        w.straddle.apply(&mut input, snap.generation, applied_ms);
        let tries: u64 = traffic.backends.iter().map(|b| b.tries).sum();
        observed.insert(pool.cfg.name.clone(), w.observe(&input, tries, tick));
        requests += traffic.requests;
        errors += traffic.errors;
        w.summary.add(&pool.cfg.name, &traffic, journal);
        let report = w.detector.tick(&input);
        w.events = ended;
        w.events.extend(report.events);
        let shift = w.shift.tick(&input);
        seen.push(Seen {
            pool: pool.cfg.name.clone(),
            requests: tries,
            floor: w.detector.config().min_expected * shift.phi,
        });
        w.events.extend(shift.events);
        straddle::onset_not_before_reload(&mut w.events, applied_ms);
        w.down = pool
            .backends
            .iter()
            .zip(&pool.cfg.backends)
            .filter(|(b, _)| !b.available())
            .map(|(_, c)| c.name.clone())
            .collect();
        views.insert(
            pool.cfg.name.clone(),
            PoolView {
                gauges: report.gauges,
                skew_score: report.skew_score,
            },
        );
    }
    state.publish(now_ms, &snap.pools, views, observed);
    (requests, errors, seen)
}
