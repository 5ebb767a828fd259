//! The watch loop: once a tick, read every backend's counters and what each pool's
//! clients saw (never the hot path's locks), feed tango-core's share and shift
//! detectors, journal each signal as evidence and hand it to `Control::on_alert` (the
//! armed canary may roll its reload back), and group the signals into incidents, each
//! told once (`incidents.rs`: the log, the journal, the API, deliveries). It journals
//! each pool's traffic every 10 s (`traffic.rs`). What it publishes (gauges, observed
//! load for the reload guard, incidents, history) and the splits it is told to expect
//! after a predicted change are `state.rs`'s.

pub(crate) mod history;
mod incidents;
pub(crate) mod state;
mod straddle;
mod traffic;

use crate::control::canary::Seen;
use crate::control::reload::Control;
use crate::journal::{unix_ms, Sink};
use crate::proxy::keys::pick_for_key;
use crate::runtime::{PoolRuntime, Runtime};
use crate::stats::{ClientSnapshot, StatsSnapshot};
use incidents::Decorations;
use state::{Observed, PoolView, TrafficPoint, WatchState};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;
use straddle::Straddle;
use tango_core::config::Alerts;
use tango_core::config::PolicyKind;
use tango_core::detector::{
    key_space_split, AlertEvent, BackendSample, DetectorConfig, IncidentConfig, IncidentEvent,
    IncidentTracker, KeyStats, PoolDetector, PoolTick, ShiftConfig, ShiftDetector,
};
use tango_core::journal::{attribute, Event, EventKind};
use tango_core::policy::Pick;
use traffic::{BackendTick, PoolTraffic, Summarizer};

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

/// The journal's recent events, read at most once a tick (and again after a rollback):
/// most ticks have no signal and no open incident, and need none.
struct Recent<'a> {
    journal: &'a Sink,
    events: Option<Vec<Event>>,
}

impl Recent<'_> {
    fn get(&mut self) -> &[Event] {
        self.events.get_or_insert_with(|| self.journal.recent())
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
        let mut recent = Recent {
            journal: &journal,
            events: None,
        };
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

/// A pool's signals this tick: each journaled as evidence (and shown to the canary,
/// which may roll its reload back), then grouped into incidents, which are told.
async fn signals(
    journal: &Sink,
    state: &WatchState,
    control: &Weak<Control>,
    targets: &Alerts,
    w: &mut PoolWatch,
    recent: &mut Recent<'_>,
    now_ms: u64,
) {
    let events = std::mem::take(&mut w.events);
    if events.is_empty() && w.incidents.is_idle() {
        return;
    }
    for ev in &events {
        evidence(journal, control, w, recent, ev, now_ms).await;
    }
    let out = w.incidents.tick(now_ms, &events, recent.get(), &w.down);
    for mut ie in out {
        let (IncidentEvent::Opened(i) | IncidentEvent::Updated(i) | IncidentEvent::Resolved(i)) =
            &mut ie;
        w.decorations.apply(i);
        incidents::publish(journal, state, targets, &ie);
        if let IncidentEvent::Resolved(i) = &ie {
            w.decorations.forget(i);
        }
    }
    let mut open = w.incidents.open();
    for i in &mut open {
        w.decorations.apply(i);
    }
    state.set_open(&w.name, open);
}

/// One signal as evidence: journaled with the cause it would have alone (the incident
/// it joins may be headed by another backend); a fired one goes to the canary.
async fn evidence(
    journal: &Sink,
    control: &Weak<Control>,
    w: &mut PoolWatch,
    recent: &mut Recent<'_>,
    ev: &AlertEvent,
    now_ms: u64,
) {
    match ev {
        AlertEvent::Fired(e) => {
            // What was known when it fired, as its incident will say (the journal is
            // in the order it was written).
            let known = recent.get();
            let cause = attribute(e, &known[..known.partition_point(|x| x.ts_ms <= e.at_ms)]);
            let mut journaled = e.clone();
            journaled.detail = Some(match &e.detail {
                Some(d) => format!("{d}; {}", cause.sentence),
                None => cause.sentence.clone(),
            });
            journal.record(EventKind::AlertFired {
                evidence: journaled,
            });
            tracing::debug!(pool = %e.pool, backend = %e.backend, kind = e.kind.as_str(), basis = ?e.basis, "signal: {}", cause.sentence);
            // Journaled before the canary acts, so the journal reads: applied, alert,
            // rollback.
            let rollback = match control.upgrade() {
                Some(c) => c.on_alert(e, &cause, now_ms).await,
                None => None,
            };
            if let Some(clause) = rollback {
                w.decorations.add(&e.backend, e.kind, &cause, clause);
                // The rollback is journaled now: read the journal again.
                recent.events = None;
            }
        }
        AlertEvent::Resolved { evidence, .. } => {
            journal.record(EventKind::AlertResolved {
                evidence: evidence.clone(),
            });
        }
    }
}

/// A pool that left the configuration: its open incidents end with it.
fn close_pool(
    journal: &Sink,
    state: &WatchState,
    targets: &Alerts,
    name: &str,
    w: PoolWatch,
    now_ms: u64,
) {
    for mut i in w.incidents.open() {
        w.decorations.apply(&mut i);
        i.resolved_ms = Some(now_ms);
        i.updated_ms = now_ms;
        incidents::publish(journal, state, targets, &IncidentEvent::Resolved(i));
    }
    state.set_open(name, Vec::new());
}

/// Read one pool's counters into the detector's input and the tick's traffic.
fn sample(
    rt: &Runtime,
    pool: &PoolRuntime,
    w: &mut PoolWatch,
    now_ms: u64,
) -> (PoolTick, PoolTraffic) {
    let now = rt.now_ms();
    let client = pool.shared.client.snapshot();
    let mut traffic = PoolTraffic::new(now_ms, &client, &w.prev_client);
    w.prev_client = client;
    let mut backends = Vec::with_capacity(pool.backends.len());
    let tick_ms = w.detector.config().tick_ms;
    let span = w
        .sampled_ms
        .map_or(tick_ms, |last| now.saturating_sub(last));
    w.sampled_ms = Some(now);
    for (i, b) in pool.backends.iter().enumerate() {
        let cfg = &pool.cfg.backends[i];
        let s = b.stats.snapshot();
        let p = w.prev.get(&cfg.address).cloned().unwrap_or_default();
        let t = BackendTick::between(&cfg.name, &s, &p);
        backends.push(BackendSample {
            name: cfg.name.clone(),
            configured_weight: f64::from(cfg.weight),
            effective_weight: tick_weight(pool, i, now, span),
            requests: s.requests(),
            errors: s.errors(),
            client_errors: Some(s.client_errors),
            latency_sum_ms: s.latency_sum_us.saturating_sub(p.latency_sum_us) as f64 / 1000.0,
            latency_count: t.latency.iter().sum(),
            latency_buckets: t.latency.to_vec(),
        });
        traffic.backends.push(t);
        w.prev.insert(cfg.address.clone(), s);
    }
    let expected = pool.cfg.policy.is_hash().then(|| {
        // Key-space ownership, with each backend's part in rotation as the effective
        // weight scales the configured one: an ineligible backend's keys spread over the
        // rest, a backend that came back during the tick owns its keys for that part of
        // it, and one in slow start takes only its ramp's part of its own keys and turns
        // the rest away to the others, as the picker does (renormalised like weights, a
        // backend a reload adds read as an under-share while it ramps, and the canary
        // rolled the reload back).
        let parts: Vec<f64> = backends
            .iter()
            .map(|b| match b.configured_weight > 0.0 {
                true => (b.effective_weight / b.configured_weight).min(1.0),
                false => 0.0,
            })
            .collect();
        key_space_split(&pool.ownership, &parts)
    });
    let expected_configured = pool.cfg.policy.is_hash().then(|| pool.ownership.clone());
    let keys = pool
        .cfg
        .policy
        .is_hash()
        .then(|| key_stats(pool, rt.elapsed()));
    let input = PoolTick {
        now_ms,
        backends,
        expected,
        expected_configured,
        keys,
    };
    (input, traffic)
}

/// Backend `i`'s effective weight over the tick, `span` long and sampled at `now` (time
/// since start): scaled by the part of the tick it was in rotation, so the tick it came
/// back in or left in counts it only for the part it was in (one that left, at the
/// weight and ramp it had then). In panic mode every backend is in rotation.
fn tick_weight(pool: &PoolRuntime, i: usize, now: u64, span: u64) -> f64 {
    let b = &pool.backends[i];
    let available = b.available();
    let panic = pool.shared.panic();
    let stints = straddle::Stints {
        available: available || panic,
        back_ms: b.ready_since_ms(),
        left_ms: b.left_ms(),
    };
    let part = straddle::rotation_part(now, span, stints);
    if panic {
        return f64::from(pool.cfg.backends[i].weight) * part;
    }
    if available {
        // A ramping backend at the ramp's mean over the part of the tick it was in, not
        // at the tick's end: a second into a 3 s ramp that is 0.25 where the end says
        // 0.4, and the backend a reload added read as an under-share.
        let from = now
            .saturating_sub(span)
            .max(b.ready_since_ms().unwrap_or(0));
        return f64::from(pool.cfg.backends[i].weight) * pool.slow_start_over(i, from, now) * part;
    }
    let left = b.left_ms().unwrap_or(now);
    f64::from(pool.cfg.backends[i].weight) * pool.slow_start(i, left) * part
}

/// Heavy hitters handed to the detector.
const TOP_KEYS: usize = 8;
/// Samples the recent view's heaviest key needs before it is preferred.
const RECENT_MIN_SAMPLES: u64 = 10;

/// A hash pool's key statistics, as the detector judges by, with the backend each heavy
/// key maps to now: the minute's, unless a key is markedly heavier in the last seconds
/// (and seen there often enough to say so). `now` is the time since start.
fn key_stats(pool: &PoolRuntime, now: Duration) -> KeyStats {
    let [minute, recent] = pool.shared.keys.summaries(now.as_millis() as u64);
    let backend_of = |k| match pick_for_key(pool, k, now) {
        Pick::Backend(i) => Some(pool.cfg.backends[i].name.clone()),
        _ => None,
    };
    let minute = minute.key_stats(TOP_KEYS, backend_of);
    let recent = recent.key_stats(TOP_KEYS, backend_of);
    if recent.markedly_heavier_than(&minute, RECENT_MIN_SAMPLES) {
        recent
    } else {
        minute
    }
}
