//! Share alerts of one backend: over- and under-share, against the eligible set's or
//! the configured weights, fired by the CUSUM at once or by a window that has held, and
//! resolved with hysteresis, or at a retune when the new tuning would not fire them. The
//! rule is stated in the module documentation of `detector`.

use super::engine::{share_stat, PoolDetector, ShareStat};
use super::keys::key_explains;
use super::{AlertEvent, AlertKind, Basis, Cause, Evidence, KeyStats};

/// Evidence a share alert may fire on: the statistic, what it was measured against,
/// and the window (in ticks) it covers.
struct Candidate {
    s: ShareStat,
    basis: Basis,
    window: u64,
}

impl Candidate {
    /// Keeps the better evidence in `best`: the eligible set's over the configured
    /// set's (it names the cause more precisely), else the larger |z|.
    fn keep_if_better(self, best: &mut Option<Candidate>) {
        let better = match best {
            None => true,
            Some(o) => {
                (self.basis == Basis::Effective && o.basis == Basis::Configured)
                    || (self.basis == o.basis && self.s.z.abs() > o.s.z.abs())
            }
        };
        if better {
            *best = Some(self);
        }
    }
}

impl PoolDetector {
    fn meets(&self, s: &ShareStat, over: bool) -> bool {
        let c = &self.cfg;
        if s.e < c.min_expected * self.phi {
            return false;
        }
        if over {
            s.ratio >= c.over_ratio && s.z >= c.min_z
        } else {
            s.ratio <= c.under_ratio && s.z <= -c.min_z
        }
    }

    /// One share kind of one backend: fire, hold, or resolve.
    pub(super) fn step_share(
        &mut self,
        i: usize,
        kind: AlertKind,
        now: u64,
        keys: Option<&KeyStats>,
    ) -> Option<AlertEvent> {
        let k = kind.index();
        if let Some(ev) = &self.backends[i].active[k] {
            let basis = ev.basis;
            let done = self.share_resolved(i, kind == AlertKind::OverShare, basis);
            return self.count_resolve(i, kind, done, now);
        }
        let mut best = self.cusum_candidate(i, kind);
        let (window_met, held) = self.window_candidates(i, kind, &mut best);
        let st = &mut self.backends[i];
        for (j, met) in held {
            st.win_pending[k][j] = if met { st.win_pending[k][j] + 1 } else { 0 };
        }
        if window_met {
            st.pending[k] += 1;
            if st.pending[k] == 1 {
                st.pending_since[k] = now;
            }
        } else {
            st.pending[k] = 0;
        }
        // The CUSUM fires at once; a window only once it has held long enough, which
        // `window_candidates` already required of its candidates.
        let c = best?;
        Some(self.fire_share(i, kind, c, now, keys))
    }

    /// The CUSUM's evidence: the requests since its last reset, when it crossed its
    /// threshold and they meet the share conditions.
    fn cusum_candidate(&self, i: usize, kind: AlertKind) -> Option<Candidate> {
        let over = kind == AlertKind::OverShare;
        let st = &self.backends[i];
        let cusum = if over { &st.over } else { &st.under };
        if cusum.s < self.cfg.cusum_threshold * self.phi {
            return None;
        }
        let g = &cusum.segment;
        let s = share_stat(g.n, g.total, g.e, g.v, self.phi);
        self.meets(&s, over).then(|| Candidate {
            s,
            basis: Basis::Effective,
            window: u64::from(cusum.segment_ticks),
        })
    }

    /// Tests each window against both expectations, keeping in `best` the evidence of
    /// those that have held long enough. Returns whether any window met the conditions
    /// this tick, and per window whether it did (for the hold counts).
    fn window_candidates(
        &self,
        i: usize,
        kind: AlertKind,
        best: &mut Option<Candidate>,
    ) -> (bool, Vec<(usize, bool)>) {
        let (over, k) = (kind == AlertKind::OverShare, kind.index());
        let st = &self.backends[i];
        let since = st.resolved_tick[k].map(|t| self.tick - t);
        let mut window_met = false;
        let mut held = Vec::new();
        let mut last_len = 0;
        for (j, (len, sums)) in st.windows.iter().enumerate() {
            if len == last_len || since.is_some_and(|t| u64::from(len) > t) {
                held.push((j, false));
                continue;
            }
            last_len = len;
            let mut met = false;
            for basis in [Basis::Effective, Basis::Configured] {
                let configured = basis == Basis::Configured;
                if configured && !self.cfg.configured_skew_alerts {
                    continue;
                }
                let (e, v) = sums.expectation(configured);
                let s = share_stat(sums.n, sums.total, e, v, self.phi);
                if self.meets(&s, over) {
                    met = true;
                    // Only a window that has held long enough may supply the evidence.
                    if st.win_pending[k][j] + 1 >= self.hold_for(len) {
                        let window = u64::from(len);
                        Candidate { s, basis, window }.keep_if_better(best);
                    }
                }
            }
            window_met |= met;
            held.push((j, met));
        }
        (window_met, held)
    }

    /// Fires a share alert on `c`: its evidence, with the onset and the cause.
    fn fire_share(
        &mut self,
        i: usize,
        kind: AlertKind,
        c: Candidate,
        now: u64,
        keys: Option<&KeyStats>,
    ) -> AlertEvent {
        let k = kind.index();
        let (tick_ms, n_backends) = (self.cfg.tick_ms, self.backends.len());
        let st = &self.backends[i];
        let cusum = if kind == AlertKind::OverShare {
            &st.over
        } else {
            &st.under
        };
        // The CUSUM's last zero dates the shift when the requests since then show it. A
        // statistic that climbed for long on a weaker deviation (1.3x, against a test for
        // 1.5x) would date a sudden shift back to that deviation's start, and the journal
        // would blame what came then; the window that fired dates it instead.
        let seg = &cusum.segment;
        let since_zero = share_stat(seg.n, seg.total, seg.e, seg.v, self.phi).ratio;
        let shows = if kind == AlertKind::OverShare {
            since_zero >= self.cfg.over_ratio
        } else {
            since_zero <= self.cfg.under_ratio
        };
        let onset_ms = if cusum.s > 0.0 && shows {
            cusum.last_zero_ms
        } else {
            st.pending_since[k].saturating_sub(tick_ms)
        };
        let s = c.s;
        let total = s.total.max(1) as f64;
        let (observed, expected) = (s.n as f64 / total, s.e / total);
        let (cause, detail) = match c.basis {
            Basis::Configured => (Cause::Health, None),
            Basis::Effective | Basis::Baseline => {
                match keys.and_then(|k| key_explains(k, &st.name, observed, expected, n_backends)) {
                    Some(d) => (Cause::KeyDistribution, Some(d)),
                    None => (Cause::Config, None),
                }
            }
        };
        let st = &mut self.backends[i];
        let ev = Evidence {
            pool: self.pool.clone(),
            backend: st.name.clone(),
            kind,
            basis: c.basis,
            observed,
            expected,
            ratio: s.ratio,
            z: s.z,
            window_ms: c.window * tick_ms,
            requests: s.n,
            pool_requests: s.total,
            phi: self.phi,
            onset_ms,
            at_ms: now,
            cause,
            detail,
            client_errors: None,
        };
        st.active[k] = Some(ev.clone());
        st.pending[k] = 0;
        st.win_pending[k].iter_mut().for_each(|p| *p = 0);
        st.resolving[k] = 0;
        AlertEvent::Fired(ev)
    }

    /// Ticks a window of `len` ticks must meet its condition: a noise excursion lingers in
    /// a long window for as long as it stays inside it, so a fixed two-tick hold would
    /// filter nothing there; a real shift keeps adding to the excess.
    fn hold_for(&self, len: u32) -> u32 {
        let scaled = (f64::from(len) * self.cfg.hold_fraction).ceil() as u32;
        self.cfg.hold_ticks.max(scaled)
    }

    /// Whether the tuning in force would fire backend `i`'s firing `kind` alert on what
    /// any of its windows holds now, on the basis it fired on: after a retune, an alert
    /// the new tuning would not raise is not left open under the old one's terms.
    pub(super) fn still_fires(&self, i: usize, kind: AlertKind) -> bool {
        let st = &self.backends[i];
        let Some(ev) = &st.active[kind.index()] else {
            return false;
        };
        let configured = ev.basis == Basis::Configured;
        if configured && !self.cfg.configured_skew_alerts {
            return false;
        }
        st.windows.iter().any(|(_, sums)| {
            let (e, v) = sums.expectation(configured);
            e > 0.0
                && self.meets(
                    &share_stat(sums.n, sums.total, e, v, self.phi),
                    kind == AlertKind::OverShare,
                )
        })
    }

    /// Judged on the shortest window with enough expected requests (the freshest
    /// trustworthy view), or the longest when none has enough.
    fn share_resolved(&self, i: usize, over: bool, basis: Basis) -> bool {
        let st = &self.backends[i];
        let configured = basis == Basis::Configured;
        let floor = self.cfg.min_expected * self.phi;
        let pick = st
            .windows
            .iter()
            .find(|(_, s)| s.expectation(configured).0 >= floor)
            .or_else(|| st.windows.iter().last());
        let Some((_, sums)) = pick else { return true };
        let (e, v) = sums.expectation(configured);
        if e <= 0.0 {
            return true;
        }
        let s = share_stat(sums.n, sums.total, e, v, self.phi);
        let c = &self.cfg;
        if over {
            s.ratio < c.resolve_over_ratio || s.z < c.resolve_z
        } else {
            s.ratio > c.resolve_under_ratio || s.z > -c.resolve_z
        }
    }
}
