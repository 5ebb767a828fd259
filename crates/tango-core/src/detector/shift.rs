//! The shift detector: a backend's share against the share it had before.
//!
//! The share detector ([`PoolDetector`] on effective weights) asks "does traffic follow
//! the configuration?". It cannot see a configuration that is itself the problem: after
//! a weight typo (1 became 10) the pool does exactly what the file says, and one backend
//! takes 77% where it took 25%. The shift detector asks "did the split change?": its
//! expectation is each backend's *baseline* share, learned from the observed split
//! while nothing is amiss (an EWMA with a time constant of minutes), frozen while a
//! shift is suspected. The same windowed z-tests and CUSUM then fire within seconds of a
//! sudden change, and the journal names the change that preceded it.
//!
//! The baseline is each backend's share with every backend in rotation, and a tick
//! expects it over the backends in rotation then (`rotation.rs`): a backend ejected,
//! unhealthy, draining or in slow start moves the expectation, never the baseline,
//! however long it is out, so its return to its share is no shift. What eligibility
//! moves is the share detector's to report, on its configured-weights basis, with cause
//! `health`. A shift that persists for `adopt_after_ms` becomes the new baseline: a
//! deliberate change alerts once, then is the norm; a backend out of rotation for most
//! of that time keeps its share.
//!
//! So does a shift the baseline holds without an alert: plain in the counts (skew score
//! at or above `learn_below_z`) but under the alert ratio. Learning it at once could
//! absorb a shift still growing into an alert; holding it for good would leave the old
//! split to fire noise alerts, and to date and blame later shifts, for ever. It is
//! adopted once it has lasted `adopt_after_ms` under one configured split: weight steps
//! closer together than that add up against the split before them and fire; steps
//! further apart are each the new normal. Whether the split follows the weights is the
//! share detector's question, and it learns nothing.
//!
//! A shift is blamed on the configuration (cause `config`) while the baseline has not
//! caught up with a change of the configured split, not only until it first learns after
//! it: at a low rate the ticks right after a reload are often too quiet to fire, the
//! baseline learns a little from them, and the alert that fires a tick later is still
//! the reload's doing (the incident, attributed from the journal, says so too).

mod hold;
mod rotation;

use hold::Hold;

use super::{
    AlertEvent, AlertKind, Basis, Cause, DetectorConfig, PoolDetector, PoolTick, TickReport,
};

/// Tunables of the shift detector; the share tests' are a [`DetectorConfig`]'s.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftConfig {
    /// Time constant of the baseline EWMA.
    pub baseline_tau_ms: u64,
    /// After this long, a persisting shift becomes the baseline: one that fired, from
    /// when it fired; one under the alert ratio that stopped the baseline learning, from
    /// when it did or the configured split last changed.
    pub adopt_after_ms: u64,
    /// Ticks with fewer requests than this do not move the baseline.
    pub min_tick_requests: u64,
    /// The baseline learns only while the pool's skew score stays below this.
    pub learn_below_z: f64,
}

impl Default for ShiftConfig {
    fn default() -> Self {
        Self {
            baseline_tau_ms: 300_000,
            adopt_after_ms: 900_000,
            min_tick_requests: 10,
            learn_below_z: 3.0,
        }
    }
}

#[derive(Debug)]
struct Baseline {
    name: String,
    /// Learned share, with every backend in rotation at full weight.
    share: f64,
    /// Since the current hold began, on ticks it was in rotation at full weight: its
    /// requests read in the baseline's frame ([`rotation::Frame`] share x requests)...
    held_requests: f64,
    /// ...and the requests they were read among. Their ratio is its split since then,
    /// adopted when the hold persists.
    held_among: f64,
    /// Configured-weight share when the baseline last learned.
    configured: f64,
    /// Configured-weight share the baseline has caught up with: it differs from the
    /// current one while the baseline still holds mostly traffic from before a change.
    settled: f64,
    last_requests: Option<u64>,
}

/// One pool's shift detector: its backends' shares against their own baselines.
#[derive(Debug)]
pub struct ShiftDetector {
    pool: String,
    inner: PoolDetector,
    cfg: ShiftConfig,
    baseline: Vec<Baseline>,
    /// Why the baseline is not learning, and since when.
    hold: Option<Hold>,
    /// Alerts reported as fired, so their resolutions are reported and no others.
    reported: Vec<(String, AlertKind)>,
    /// A split to expect from the next tick on (see [`ShiftDetector::expect`]).
    pending: Option<Vec<(String, f64)>>,
    /// The weight the baseline's EWMA gives to ticks learned since the configured split
    /// last changed (1: nothing from before it is left).
    caught_up: f64,
}

/// The baseline has caught up with a configuration change once this much of it was
/// learned since (three time constants, `1 - e^-3`): even a share cut to a tenth then
/// leaves the baseline within the under-share ratio of the new split, so the change can
/// no longer be what an alert sees.
const CAUGHT_UP: f64 = 0.95;

fn normalize(v: &mut [f64]) {
    let sum: f64 = v.iter().sum();
    if sum > 0.0 {
        v.iter_mut().for_each(|x| *x /= sum);
    }
}

impl ShiftDetector {
    /// `base` is the pool's share-detector configuration (see `inner_config`).
    pub fn new(pool: impl Into<String>, base: DetectorConfig, cfg: ShiftConfig) -> Self {
        let pool = pool.into();
        Self {
            inner: PoolDetector::new(pool.clone(), inner_config(base)),
            pool,
            cfg,
            baseline: Vec::new(),
            hold: None,
            reported: Vec::new(),
            pending: None,
            caught_up: 1.0,
        }
    }

    /// Takes `base` (the share detector's configuration for the pool's new policy: what
    /// that policy is expected to do to the split is no alert) and keeps the baseline,
    /// the hold and the windows: the change may be the incident, and a shift it brings is
    /// judged against the split from before it. A shift alert firing now stays if the new
    /// tuning would fire it too, and otherwise resolves now; the same tuning changes
    /// nothing. Returns the resolutions.
    pub fn retune(&mut self, base: DetectorConfig, now_ms: u64) -> Vec<AlertEvent> {
        let mut ended = self.inner.retune(inner_config(base), now_ms);
        let reported = &mut self.reported;
        ended.retain_mut(|ev| match ev {
            AlertEvent::Resolved { evidence, .. } => unreport(reported, evidence),
            AlertEvent::Fired(_) => false,
        });
        ended
    }

    /// Expect `shares` (backend name, share of the pool) from the next tick on: a change
    /// that was predicted and allowed, such as an intended weight change, so it is no
    /// shift. At that tick the shift alerts firing resolve, the baseline becomes these
    /// shares (backends not named get none), and the windows start afresh, so the tick
    /// that straddles the change is judged against neither split.
    pub fn expect(&mut self, shares: Vec<(String, f64)>) {
        self.pending = Some(shares);
    }

    /// The shift alerts told and firing now, resolved at `now`: the baseline they were
    /// judged against is being replaced.
    fn resolve_reported(&mut self, now: u64) -> Vec<AlertEvent> {
        let mut resolved = Vec::new();
        for mut evidence in self.inner.active() {
            evidence.basis = Basis::Baseline;
            let key = (evidence.backend.clone(), evidence.kind);
            if let Some(p) = self.reported.iter().position(|r| *r == key) {
                self.reported.swap_remove(p);
                resolved.push(AlertEvent::Resolved {
                    evidence,
                    resolved_ms: now,
                });
            }
        }
        resolved
    }

    /// Scale the baseline's shares to sum to 1 again, after some of them moved.
    fn normalize_baseline(&mut self) {
        let mut shares: Vec<f64> = self.baseline.iter().map(|b| b.share).collect();
        normalize(&mut shares);
        self.baseline
            .iter_mut()
            .zip(shares)
            .for_each(|(b, s)| b.share = s);
    }

    /// Apply a pending [`ShiftDetector::expect`]; returns the resolutions it causes.
    fn take_expectation(&mut self, input: &PoolTick, conf: &[f64]) -> Vec<AlertEvent> {
        let Some(shares) = self.pending.take() else {
            return Vec::new();
        };
        let resolved = self.resolve_reported(input.now_ms);
        let mut share: Vec<f64> = input
            .backends
            .iter()
            .map(|b| {
                shares
                    .iter()
                    .find(|(n, _)| *n == b.name)
                    .map_or(0.0, |(_, s)| s.max(0.0))
            })
            .collect();
        normalize(&mut share);
        self.baseline = fresh_baseline(input, &share, conf, true);
        self.caught_up = 1.0;
        let cfg = self.inner.config().clone();
        self.inner = PoolDetector::new(self.pool.clone(), cfg);
        self.hold = None;
        resolved
    }

    fn intended(input: &PoolTick, configured: bool) -> Vec<f64> {
        let over = if configured {
            input.expected_configured.as_ref()
        } else {
            input.expected.as_ref()
        };
        let mut v: Vec<f64> = match over {
            Some(e) if e.len() == input.backends.len() => e.clone(),
            _ => input
                .backends
                .iter()
                .map(|b| {
                    if configured {
                        b.configured_weight
                    } else {
                        b.effective_weight
                    }
                })
                .collect(),
        };
        normalize(&mut v);
        v
    }

    /// Follow membership: a new set of backends starts from the configured intent.
    fn reconcile(&mut self, input: &PoolTick) {
        let same = self.baseline.len() == input.backends.len()
            && self
                .baseline
                .iter()
                .zip(&input.backends)
                .all(|(b, s)| b.name == s.name);
        if same {
            return;
        }
        // The configured split, not the eligible set's: a backend out of rotation now is
        // expected its share back when it returns.
        let conf = Self::intended(input, true);
        self.baseline = fresh_baseline(input, &conf, &conf, false);
        self.caught_up = 1.0;
        self.hold = None;
    }

    /// Feed one tick: learns the baseline while nothing is amiss, tests against it, and
    /// reports alerts with basis `baseline`.
    pub fn tick(&mut self, input: &PoolTick) -> TickReport {
        self.reconcile(input);
        let conf = Self::intended(input, true);
        let eff = Self::intended(input, false);
        let parts = rotation::parts(input);
        let resolved = self.take_expectation(input, &conf);
        let base: Vec<f64> = self.baseline.iter().map(|b| b.share).collect();
        // A hash pool's tick carries the key space each backend owns.
        let hashed = input.expected_configured.is_some();
        let expected = rotation::expected(&base, &parts, &eff, hashed);
        // The inner detector's configured basis raises no alerts here; it carries the
        // configuration's intent, against which the over-dispersion is also measured (a
        // drift made of reloads moves the intent with it, not the noise estimate).
        let tick = PoolTick {
            expected: Some(expected),
            expected_configured: Some(eff.clone()),
            ..input.clone()
        };
        let mut report = self.inner.tick(&tick);
        let alerting = !self.inner.active().is_empty();
        let moved = report.skew_score >= self.cfg.learn_below_z;
        let counted = self.learn(input, &conf, &parts, !alerting && !moved);
        self.classify(&mut report.events, &conf);
        report.events.extend(resolved);
        // A tick too quiet to learn from holds nothing back: below that rate the split is
        // learned only from an alert that lasted (and the skew score of a few requests
        // over many backends is mostly their Poisson tails).
        self.track_hold(input.now_ms, &conf, alerting, moved && counted);
        self.adopt_if_lasting(input.now_ms, &conf, &mut report.events);
        report
    }

    /// Moves the baseline toward this tick's observed split, while nothing is amiss, and
    /// adds the tick to the split since the hold began. Only backends in rotation at
    /// full weight are read, within the part of the baseline they hold together: the
    /// others keep their share (see `rotation`). Returns whether the tick had the
    /// requests to learn from.
    fn learn(&mut self, input: &PoolTick, conf: &[f64], parts: &[f64], quiet: bool) -> bool {
        let deltas: Vec<u64> = self
            .baseline
            .iter_mut()
            .zip(&input.backends)
            .map(|(b, s)| {
                let d = b
                    .last_requests
                    .map(|l| s.requests.saturating_sub(l))
                    .unwrap_or(0);
                b.last_requests = Some(s.requests);
                d
            })
            .collect();
        let total: u64 = deltas.iter().sum();
        let base: Vec<f64> = self.baseline.iter().map(|b| b.share).collect();
        let frame = rotation::Frame::read(&deltas, &base, parts);
        let among = frame.requests as f64;
        for (b, share) in self.baseline.iter_mut().zip(&frame.shares) {
            if let Some(share) = share {
                b.held_requests += share * among;
                b.held_among += among;
            }
        }
        let alpha =
            (self.inner.config().tick_ms as f64 / self.cfg.baseline_tau_ms.max(1) as f64).min(1.0);
        let counted = total >= self.cfg.min_tick_requests;
        if !quiet || !counted || frame.requests == 0 {
            return counted;
        }
        self.follow_configuration(conf, alpha);
        for (b, share) in self.baseline.iter_mut().zip(&frame.shares) {
            if let Some(share) = share {
                b.share += alpha * (share - b.share);
            }
        }
        self.normalize_baseline();
        true
    }

    /// Notes, on a tick the baseline learns from, the configured split it learns under,
    /// and how far it has caught up with the last change of it: one quiet tick moves the
    /// baseline only `alpha` of the way, so forgetting the change there would leave the
    /// alert it brings a tick later with no cause.
    fn follow_configuration(&mut self, conf: &[f64], alpha: f64) {
        let changed = self
            .baseline
            .iter()
            .zip(conf)
            .any(|(b, c)| (c - b.configured).abs() > 1e-9);
        if changed {
            self.caught_up = 0.0;
        }
        self.caught_up += alpha * (1.0 - self.caught_up);
        let settled = self.caught_up >= CAUGHT_UP;
        for (b, c) in self.baseline.iter_mut().zip(conf) {
            b.configured = *c;
            if settled {
                b.settled = *c;
            }
        }
    }

    /// Classifies the inner detector's events: a shift is the configuration's while the
    /// baseline has not caught up with a change of the configured split, else of no
    /// known cause. Every shift is kept, whoever is in rotation: each tick's expectation
    /// is the baseline over the backends in rotation then, so what eligibility alone
    /// moves is no shift to begin with, and what still fires while a backend is out or
    /// ramping is a shift among the others (dropping it, as was done while any backend
    /// was out, left a hot key during an ejection to the share detector alone).
    fn classify(&mut self, events: &mut Vec<AlertEvent>, conf: &[f64]) {
        let baseline = &self.baseline;
        let reported = &mut self.reported;
        events.retain_mut(|ev| match ev {
            AlertEvent::Fired(e) => {
                e.basis = Basis::Baseline;
                let Some(i) = baseline.iter().position(|b| b.name == e.backend) else {
                    return false;
                };
                let weights_moved = (conf[i] - baseline[i].configured).abs() > 1e-9;
                let unsettled = (conf[i] - baseline[i].settled).abs() > 1e-9;
                if e.cause != Cause::KeyDistribution {
                    e.cause = if weights_moved || unsettled {
                        Cause::Config
                    } else {
                        Cause::Unknown
                    };
                }
                reported.push((e.backend.clone(), e.kind));
                true
            }
            AlertEvent::Resolved { evidence, .. } => unreport(reported, evidence),
        });
    }

    /// Shift alerts firing now.
    pub fn active(&self) -> Vec<super::Evidence> {
        self.inner
            .active()
            .into_iter()
            .filter(|e| {
                self.reported
                    .iter()
                    .any(|(b, k)| *b == e.backend && *k == e.kind)
            })
            .collect()
    }

    /// Each backend's learned baseline share, by name, in the order of the last tick's
    /// backends.
    pub fn baseline(&self) -> Vec<(String, f64)> {
        self.baseline
            .iter()
            .map(|b| (b.name.clone(), b.share))
            .collect()
    }
}

/// A resolution of the inner detector's: kept (with basis `baseline`) if its alert was
/// reported as fired, which from now on it is not.
fn unreport(reported: &mut Vec<(String, AlertKind)>, evidence: &mut super::Evidence) -> bool {
    evidence.basis = Basis::Baseline;
    let key = (evidence.backend.clone(), evidence.kind);
    match reported.iter().position(|r| *r == key) {
        Some(p) => {
            reported.swap_remove(p);
            true
        }
        None => false,
    }
}

/// The inner detector's configuration: latency and error outliers and the
/// configured-weights basis are the share detector's job, so they are off.
fn inner_config(base: DetectorConfig) -> DetectorConfig {
    DetectorConfig {
        configured_skew_alerts: false,
        error_ratio: f64::INFINITY,
        latency_ratio: f64::INFINITY,
        ..base
    }
}

/// A baseline starting over at `share` (the configured intent in `conf`), with no shift
/// under way; `counted` keeps this tick's request counts as the last seen.
fn fresh_baseline(input: &PoolTick, share: &[f64], conf: &[f64], counted: bool) -> Vec<Baseline> {
    input
        .backends
        .iter()
        .enumerate()
        .map(|(i, s)| Baseline {
            name: s.name.clone(),
            share: share[i],
            held_requests: 0.0,
            held_among: 0.0,
            configured: conf[i],
            settled: conf[i],
            last_requests: counted.then_some(s.requests),
        })
        .collect()
}

#[cfg(test)]
mod tests;
