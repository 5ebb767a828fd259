//! The per-pool detector: tick bookkeeping, the dispersion estimate, gauges, and the
//! resolve count every alert kind shares. Share alerts are in `share.rs`, latency and
//! error outliers in `outliers.rs`.

use super::cusum::Cusum;
use super::onset::TickTimes;
use super::window::{to_hist, Sample, Windows};
use super::{
    AlertEvent, AlertKind, BackendGauge, BackendSample, DetectorConfig, Evidence, PoolTick,
    TickReport,
};

/// The skew detector of one pool. Feed it one [`PoolTick`] per tick.
#[derive(Debug, Clone)]
pub struct PoolDetector {
    pub(super) pool: String,
    pub(super) cfg: DetectorConfig,
    pub(super) backends: Vec<BackendState>,
    phi_raw: f64,
    pub(super) phi: f64,
    pub(super) tick: u64,
    /// When the ticks the windows hold were read, to date an outlier's onset.
    pub(super) times: TickTimes,
}

#[derive(Debug, Clone)]
pub(super) struct BackendState {
    pub(super) name: String,
    last_requests: Option<u64>,
    last_errors: Option<u64>,
    last_client_errors: Option<u64>,
    /// Whether the caller reports client-visible errors for this backend.
    pub(super) client_errors_known: bool,
    pub(super) windows: Windows,
    pub(super) over: Cusum,
    pub(super) under: Cusum,
    pub(super) pending: [u32; 4],
    pub(super) pending_since: [u64; 4],
    /// Consecutive ticks each window has met the share condition, per direction.
    pub(super) win_pending: [Vec<u32>; 2],
    pub(super) resolving: [u32; 4],
    pub(super) active: [Option<Evidence>; 4],
    /// Tick of the last resolution per kind: a window reaching back before it may not
    /// refire, or every resolution would be followed by a refire from stale ticks.
    pub(super) resolved_tick: [Option<u64>; 4],
}

impl BackendState {
    fn new(name: &str, cfg: &DetectorConfig, now_ms: u64) -> Self {
        Self {
            name: name.to_string(),
            last_requests: None,
            last_errors: None,
            last_client_errors: None,
            client_errors_known: false,
            windows: Windows::new(&cfg.windows),
            over: Cusum::new(now_ms),
            under: Cusum::new(now_ms),
            pending: [0; 4],
            pending_since: [0; 4],
            win_pending: [vec![0; cfg.windows.len()], vec![0; cfg.windows.len()]],
            resolving: [0; 4],
            active: Default::default(),
            resolved_tick: [None; 4],
        }
    }
}

/// Ratio, z and expected count of one share test.
#[derive(Debug, Clone, Copy)]
pub(super) struct ShareStat {
    pub(super) n: u64,
    pub(super) total: u64,
    pub(super) e: f64,
    pub(super) ratio: f64,
    pub(super) z: f64,
}

pub(super) fn share_stat(n: u64, total: u64, e: f64, v: f64, phi: f64) -> ShareStat {
    let nf = n as f64;
    let ratio = if e > 0.0 { nf / e } else { f64::INFINITY };
    let z = if v > 0.0 {
        (nf - e) / (phi * v).sqrt()
    } else {
        0.0
    };
    ShareStat {
        n,
        total,
        e,
        ratio,
        z,
    }
}

/// Counter delta, reading a decrease as a restart from zero.
fn delta(last: Option<u64>, now: u64) -> u64 {
    match last {
        None => 0,
        Some(l) if now >= l => now - l,
        Some(_) => now,
    }
}

/// `cfg` with its window lengths sorted and deduplicated, the dispersion window among
/// them.
fn with_windows_sorted(mut cfg: DetectorConfig) -> DetectorConfig {
    if !cfg.windows.contains(&cfg.phi_window) {
        cfg.windows.push(cfg.phi_window);
    }
    cfg.windows.retain(|w| *w > 0);
    cfg.windows.sort_unstable();
    cfg.windows.dedup();
    cfg
}

/// The longest window, in ticks.
fn longest(cfg: &DetectorConfig) -> u32 {
    cfg.windows.iter().copied().max().unwrap_or(1)
}

/// Each backend's expected share: by `weights`, or by `over` when given for every
/// backend; a backend read for the first time (`first`) expects nothing, and the others
/// share what is left.
fn shares(weights: &[f64], over: Option<&Vec<f64>>, first: &[bool]) -> Vec<f64> {
    let mut raw: Vec<f64> = match over {
        Some(v) if v.len() == weights.len() => v.iter().map(|x| x.max(0.0)).collect(),
        _ => weights.iter().map(|w| w.max(0.0)).collect(),
    };
    for (x, _) in raw.iter_mut().zip(first).filter(|(_, f)| **f) {
        *x = 0.0;
    }
    let sum: f64 = raw.iter().sum();
    if sum > 0.0 {
        raw.iter().map(|x| x / sum).collect()
    } else {
        vec![0.0; raw.len()]
    }
}

impl PoolDetector {
    /// A detector for `pool`. Window lengths are sorted and deduplicated, and the
    /// dispersion window is added to them.
    pub fn new(pool: impl Into<String>, cfg: DetectorConfig) -> Self {
        let cfg = with_windows_sorted(cfg);
        Self {
            pool: pool.into(),
            times: TickTimes::new(longest(&cfg)),
            cfg,
            backends: Vec::new(),
            phi_raw: 1.0,
            phi: 1.0,
            tick: 0,
        }
    }

    /// The tunables in force.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// The current over-dispersion estimate (at least 1).
    pub fn phi(&self) -> f64 {
        self.phi
    }

    /// Takes `cfg`'s tuning (a pool's new policy changes what is worth an alert) and
    /// keeps what was read: windows, CUSUMs, the over-dispersion estimate. A share alert
    /// firing now stays only if the new tuning would fire it on what its windows hold;
    /// otherwise it resolves now, once, and no window reaching back before that may
    /// fire it again (as after any resolution). New window lengths cannot keep the
    /// windows: every alert resolves and the detector starts afresh. The same tuning
    /// changes nothing. Returns the resolutions.
    pub fn retune(&mut self, cfg: DetectorConfig, now: u64) -> Vec<AlertEvent> {
        let cfg = with_windows_sorted(cfg);
        // The same tuning (a policy the watch tunes alike, such as round robin to
        // random) changes nothing: an alert held in its hysteresis band, under the
        // firing ratio and over the resolving one, is still firing under it.
        if cfg == self.cfg {
            return Vec::new();
        }
        let same_windows = cfg.windows == self.cfg.windows && cfg.phi_window == self.cfg.phi_window;
        self.cfg = cfg;
        if !same_windows {
            self.times = TickTimes::new(longest(&self.cfg));
            let ended = self
                .active()
                .into_iter()
                .map(|evidence| AlertEvent::Resolved {
                    evidence,
                    resolved_ms: now,
                })
                .collect();
            self.restart();
            return ended;
        }
        let mut ended = Vec::new();
        for i in 0..self.backends.len() {
            for kind in [AlertKind::OverShare, AlertKind::UnderShare] {
                if self.backends[i].active[kind.index()].is_some() && !self.still_fires(i, kind) {
                    ended.extend(self.end_alert(i, kind, now));
                }
            }
        }
        ended
    }

    /// Alerts firing now, with the evidence they fired on.
    pub fn active(&self) -> Vec<Evidence> {
        self.backends
            .iter()
            .flat_map(|b| b.active.iter().flatten().cloned())
            .collect()
    }

    /// Reads one tick. The first reading of a backend is its baseline (no requests
    /// counted), so a detector started on a running instance does not see its history;
    /// and it is left out of that tick's split, which the others share (a backend a
    /// reload adds would otherwise read as taking nothing of its share, and the
    /// reload's canary would roll back a good change).
    pub fn tick(&mut self, input: &PoolTick) -> TickReport {
        self.tick += 1;
        let now = input.now_ms;
        self.times.push(now);
        let mut report = TickReport::default();
        self.reconcile(&input.backends, now, &mut report.events);

        let eff: Vec<f64> = input.backends.iter().map(|b| b.effective_weight).collect();
        let conf: Vec<f64> = input.backends.iter().map(|b| b.configured_weight).collect();
        let first: Vec<bool> = self
            .backends
            .iter()
            .map(|b| b.last_requests.is_none())
            .collect();
        let p_eff = shares(&eff, input.expected.as_ref(), &first);
        let p_conf = shares(&conf, input.expected_configured.as_ref(), &first);
        self.record(&input.backends, &p_eff, &p_conf, now);

        for i in 0..self.backends.len() {
            for kind in [AlertKind::OverShare, AlertKind::UnderShare] {
                if let Some(ev) = self.step_share(i, kind, now, input.keys.as_ref()) {
                    report.events.push(ev);
                }
            }
        }
        self.step_outliers(now, &mut report.events);
        self.update_phi();
        self.gauges(&p_eff, &p_conf, &mut report);
        report.phi = self.phi;
        report
    }

    /// Follows the tick's backend list: new names start fresh, vanished names resolve.
    fn reconcile(&mut self, samples: &[BackendSample], now: u64, events: &mut Vec<AlertEvent>) {
        let mut old = std::mem::take(&mut self.backends);
        for s in samples {
            let st = match old.iter().position(|b| b.name == s.name) {
                Some(pos) => old.swap_remove(pos),
                None => BackendState::new(&s.name, &self.cfg, now),
            };
            self.backends.push(st);
        }
        for gone in old {
            for ev in gone.active.into_iter().flatten() {
                events.push(AlertEvent::Resolved {
                    evidence: ev,
                    resolved_ms: now,
                });
            }
        }
    }

    fn record(&mut self, samples: &[BackendSample], p_eff: &[f64], p_conf: &[f64], now: u64) {
        let deltas: Vec<(u64, u64)> = samples
            .iter()
            .zip(self.backends.iter())
            .map(|(s, st)| {
                (
                    delta(st.last_requests, s.requests),
                    delta(st.last_errors, s.errors),
                )
            })
            .collect();
        let total: u64 = deltas.iter().map(|d| d.0).sum();
        let shift = self.cfg.cusum_shift;
        for (i, (s, st)) in samples.iter().zip(self.backends.iter_mut()).enumerate() {
            let (n, errors) = deltas[i];
            st.last_requests = Some(s.requests);
            st.last_errors = Some(s.errors);
            let mut sample = Sample::new(total, n, p_eff[i], p_conf[i]);
            sample.errors = errors;
            st.client_errors_known = s.client_errors.is_some();
            if let Some(c) = s.client_errors {
                sample.client_errors = delta(st.last_client_errors, c);
            }
            st.last_client_errors = s.client_errors;
            sample.lat_sum = s.latency_sum_ms.max(0.0);
            sample.lat_count = s.latency_count;
            sample.hist = to_hist(&s.latency_buckets);
            st.windows.push(sample);
            st.over.update(now, total, n, p_eff[i], shift);
            st.under.update(now, total, n, p_eff[i], 2.0 - shift);
        }
    }

    pub(super) fn count_resolve(
        &mut self,
        i: usize,
        kind: AlertKind,
        done: bool,
        now: u64,
    ) -> Option<AlertEvent> {
        let k = kind.index();
        let st = &mut self.backends[i];
        if !done {
            st.resolving[k] = 0;
            return None;
        }
        st.resolving[k] += 1;
        if st.resolving[k] < self.cfg.resolve_ticks {
            return None;
        }
        self.end_alert(i, kind, now)
    }

    /// Resolves backend `i`'s `kind` alert now, if it is firing.
    fn end_alert(&mut self, i: usize, kind: AlertKind, now: u64) -> Option<AlertEvent> {
        let (k, tick) = (kind.index(), self.tick);
        let st = &mut self.backends[i];
        let evidence = st.active[k].take()?;
        st.resolving[k] = 0;
        st.pending[k] = 0;
        st.resolved_tick[k] = Some(tick);
        match kind {
            AlertKind::OverShare => st.over.reset(now),
            AlertKind::UnderShare => st.under.reset(now),
            _ => {}
        }
        Some(AlertEvent::Resolved {
            evidence,
            resolved_ms: now,
        })
    }

    /// Pearson dispersion over the `phi_window`, learned only while nothing is pending or
    /// firing, so a skew in progress cannot raise the bar it is measured against.
    ///
    /// `X^2` is computed against both expectations the detector is given (effective and
    /// configured) and the smaller is kept: an expectation that is wrong about the mean
    /// only adds its bias to `X^2`, so the better-fitting one measures the noise. This is
    /// what keeps the shift detector (whose first expectation is the lagging baseline, and
    /// whose second is the configuration's intent) from learning a slow drift as noise:
    /// a drift made of reloads is followed exactly by the intent.
    fn update_phi(&mut self) {
        let h = self.cfg.cusum_threshold * self.phi / 2.0;
        let quiet = self.backends.iter().all(|b| {
            b.active.iter().all(Option::is_none)
                && b.pending.iter().all(|p| *p == 0)
                && b.over.s < h
                && b.under.s < h
        });
        if !quiet {
            return;
        }
        let pearson = |configured: bool| {
            let (mut x2, mut k, mut e_sum) = (0.0, 0usize, 0.0);
            for b in &self.backends {
                if let Some((_, s)) = b.windows.window(self.cfg.phi_window) {
                    let e = s.expectation(configured).0;
                    if e > 0.0 {
                        let d = s.n as f64 - e;
                        x2 += d * d / e;
                        k += 1;
                        e_sum += e;
                    }
                }
            }
            (k >= 2 && e_sum >= 5.0 * k as f64).then(|| x2 / (k - 1) as f64)
        };
        let sample = match (pearson(false), pearson(true)) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return,
        };
        self.phi_raw += self.cfg.phi_alpha * (sample - self.phi_raw);
        self.phi = self.phi_raw.clamp(1.0, self.cfg.max_phi.max(1.0));
    }

    fn gauges(&self, p_eff: &[f64], p_conf: &[f64], report: &mut TickReport) {
        let mut score: f64 = 0.0;
        for (i, b) in self.backends.iter().enumerate() {
            let win = b.windows.window(self.cfg.phi_window);
            let (observed, expected, configured, ratio, z) = match win {
                Some((_, s)) if s.total > 0 => {
                    let t = s.total as f64;
                    let st = share_stat(s.n, s.total, s.e_eff, s.v_eff, self.phi);
                    let ratio = if st.ratio.is_finite() { st.ratio } else { 0.0 };
                    (s.n as f64 / t, s.e_eff / t, s.e_conf / t, ratio, st.z)
                }
                _ => (0.0, p_eff[i], p_conf[i], 0.0, 0.0),
            };
            score = score.max(z.abs());
            report.gauges.push(BackendGauge {
                backend: b.name.clone(),
                observed_share: observed,
                expected_share: expected,
                configured_share: configured,
                ratio,
                z,
            });
        }
        report.skew_score = score;
    }

    /// Forgets every backend's windows, CUSUMs and alerts, as a new detector would, and
    /// keeps the over-dispersion estimate: it was learned while nothing was amiss, and a
    /// pool measured with `phi = 1` until it learned it again would alarm on its own
    /// noise. The shift detector starts afresh so on a baseline it has adopted.
    pub(super) fn restart(&mut self) {
        self.backends.clear();
    }

    /// Ticks read so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    /// Ticks of history held for the named backend.
    pub fn history(&self, backend: &str) -> Option<usize> {
        self.backends
            .iter()
            .find(|b| b.name == backend)
            .map(|b| b.windows.held())
    }
}
