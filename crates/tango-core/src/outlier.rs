//! Passive outlier ejection: one [`OutlierDetector`] per pool.
//!
//! The binary classifies every try (5xx, gateway errors, connect failures and response
//! bodies the backend broke off are failures; the rest succeed) and reports it with
//! [`OutlierDetector::record`]. A backend
//! that fails `consecutive_failures` times in a row is ejected for a while; the binary
//! calls [`OutlierDetector::tick`] (at [`OutlierDetector::next_return`] or on its regular
//! tick) to bring ejected backends back. Every decision comes back as an [`Event`] for
//! the journal and logs.
//!
//! Rules, with the reasoning behind them:
//! - **Backoff.** The k-th ejection of a backend lasts `base_ejection x k`, capped at
//!   `max_ejection` (as Envoy): a backend that keeps failing right after it returns is
//!   kept out longer each time instead of bouncing.
//! - **Decay.** For every full `base_ejection` a backend spends back in the pool without
//!   being ejected, its ejection count drops by one, counted from its scheduled return.
//!   A backend that failed once last week should not get a long ejection today.
//! - **Cap.** At most [`max_ejected`] backends of the pool are ejected at once; see there
//!   for the rounding. A backend that reaches the threshold while the cap is full stays
//!   in (reported once per failure streak as [`Event::EjectionCapped`]) and is ejected by
//!   its next failure once a slot is free.
//! - **While ejected**, failures are ignored (they come from requests already in flight,
//!   or from panic-mode traffic, and must not extend the ejection); a success still
//!   resets the failure count.
//!
//! Backends are indexes into the pool's backend list. Time is `now`: a [`Duration`]
//! since process start, injected by the caller.

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::config::Outlier;

/// How the caller classified one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Anything else: an answer below 500.
    Success,
    /// A 5xx, a gateway error (502/503/504 produced on the backend's behalf), a failed
    /// connect, or an answer whose body the backend broke off after its head.
    Failure,
}

/// A decision, for the journal, logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A backend was ejected.
    Ejected {
        /// Its index in the pool.
        backend: usize,
        /// When it comes back.
        until: Duration,
        /// The consecutive failures that triggered it.
        consecutive: u32,
        /// This backend's ejection count after this one (after decay), 1 the first time.
        times_ejected: u32,
    },
    /// An ejected backend's time is up: it is eligible again.
    Returned {
        /// Its index in the pool.
        backend: usize,
    },
    /// The backend reached the failure threshold but the pool already has `max_ejected`
    /// backends ejected, so it keeps receiving traffic.
    EjectionCapped {
        /// Its index in the pool.
        backend: usize,
        /// Its failures in a row.
        consecutive: u32,
        /// Backends ejected now.
        ejected: usize,
        /// The most the pool may have ejected at once.
        max_ejected: usize,
    },
}

/// Outlier state of one backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BackendOutlier {
    consecutive: u32,
    times_ejected: u32,
    ejected_until: Option<Duration>,
    /// Start of the current decay period: the scheduled return time, advanced by
    /// `base_ejection` at each decrement.
    decay_from: Duration,
}

/// Outlier-ejection state of one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetector {
    consecutive_failures: u32,
    base_ejection: Duration,
    max_ejection: Duration,
    max_ejected_percent: f64,
    backends: Vec<BackendOutlier>,
    ejected: usize,
}

/// Most backends of a pool of `backends` that may be ejected at once, given
/// `max_ejected_percent` (0-100).
///
/// `floor(percent x backends / 100)`, but at least one when the pool has two or more
/// backends and the percent is above 0: like Envoy, a small pool with a low percent
/// (10% of 3) can still eject a clearly broken backend, otherwise outlier detection
/// would silently do nothing there. Two exceptions keep that from hurting: a percent of 0
/// disables ejection, and a single-backend pool only ejects its backend at 100%,
/// because its traffic has nowhere else to go (panic mode would send it straight back,
/// or without panic mode every request would fail).
pub fn max_ejected(backends: usize, max_ejected_percent: f64) -> usize {
    if backends == 0 || max_ejected_percent.is_nan() || max_ejected_percent <= 0.0 {
        return 0;
    }
    let percent = max_ejected_percent.min(100.0);
    // The epsilon absorbs products such as 58 x 0.01 landing just under an integer.
    let floor = (percent * backends as f64 / 100.0 + 1e-9).floor() as usize;
    let floor = floor.min(backends);
    if backends >= 2 {
        floor.max(1)
    } else {
        floor
    }
}

impl OutlierDetector {
    /// A pool of `backends` backends, none ejected.
    pub fn new(cfg: &Outlier, backends: usize) -> Self {
        OutlierDetector {
            consecutive_failures: cfg.consecutive_failures.max(1),
            base_ejection: cfg.base_ejection,
            max_ejection: cfg.max_ejection,
            max_ejected_percent: cfg.max_ejected_percent,
            backends: vec![BackendOutlier::default(); backends],
            ejected: 0,
        }
    }

    /// The detector for a reloaded pool: new backend `i` keeps the state of old backend
    /// `old_index[i]` (matched by address), or starts fresh when `None`; the new
    /// configuration applies from now on. Carried-over ejections end at their original
    /// time even if the new cap is lower: cutting them short would return backends
    /// that are still failing.
    pub fn rebuild(&self, cfg: &Outlier, old_index: &[Option<usize>]) -> Self {
        let mut next = Self::new(cfg, old_index.len());
        for (slot, old) in next.backends.iter_mut().zip(old_index) {
            if let Some(state) = old.and_then(|o| self.backends.get(o)) {
                *slot = state.clone();
            }
        }
        next.ejected = next
            .backends
            .iter()
            .filter(|b| b.ejected_until.is_some())
            .count();
        next
    }

    /// Records one classified response from `backend`. An index outside the pool is
    /// ignored (a response that finished after a reload removed its backend).
    pub fn record(&mut self, backend: usize, outcome: Outcome, now: Duration) -> Option<Event> {
        let max = self.max_ejected();
        let base = self.base_ejection;
        let b = self.backends.get_mut(backend)?;
        if outcome == Outcome::Success {
            b.consecutive = 0;
            return None;
        }
        if b.ejected_until.is_some() {
            return None;
        }
        b.consecutive = b.consecutive.saturating_add(1);
        if b.consecutive < self.consecutive_failures {
            return None;
        }
        if self.ejected >= max {
            // Report once per streak, not on every further failure.
            return (b.consecutive == self.consecutive_failures).then_some(Event::EjectionCapped {
                backend,
                consecutive: b.consecutive,
                ejected: self.ejected,
                max_ejected: max,
            });
        }
        decay(b, base, now);
        b.times_ejected = b.times_ejected.saturating_add(1);
        let length = base
            .checked_mul(b.times_ejected)
            .unwrap_or(Duration::MAX)
            .min(self.max_ejection);
        let until = now.saturating_add(length);
        let consecutive = b.consecutive;
        b.consecutive = 0;
        b.ejected_until = Some(until);
        self.ejected += 1;
        Some(Event::Ejected {
            backend,
            until,
            consecutive,
            times_ejected: b.times_ejected,
        })
    }

    /// Returns every backend whose ejection has ended by `now`, in backend order, and
    /// applies ejection-count decay.
    pub fn tick(&mut self, now: Duration) -> Vec<Event> {
        let base = self.base_ejection;
        let mut events = Vec::new();
        for (i, b) in self.backends.iter_mut().enumerate() {
            if let Some(until) = b.ejected_until {
                if until > now {
                    continue;
                }
                b.ejected_until = None;
                b.consecutive = 0;
                // From the scheduled return, so a late tick does not stretch decay.
                b.decay_from = until;
                self.ejected -= 1;
                events.push(Event::Returned { backend: i });
            }
            decay(b, base, now);
        }
        events
    }

    /// When the earliest ejection ends: the latest moment the caller should next call
    /// [`tick`](Self::tick). `None` when nothing is ejected.
    pub fn next_return(&self) -> Option<Duration> {
        self.backends.iter().filter_map(|b| b.ejected_until).min()
    }

    /// Whether `backend` is ejected now.
    pub fn is_ejected(&self, backend: usize) -> bool {
        self.ejected_until(backend).is_some()
    }

    /// Per backend, whether it is ejected; the input of
    /// [`eligibility()`](crate::health::eligibility()).
    pub fn ejected(&self) -> Vec<bool> {
        self.backends
            .iter()
            .map(|b| b.ejected_until.is_some())
            .collect()
    }

    /// Number of backends ejected now.
    pub fn ejected_count(&self) -> usize {
        self.ejected
    }

    /// When `backend`'s ejection ends; `None` when it is not ejected.
    pub fn ejected_until(&self, backend: usize) -> Option<Duration> {
        self.backends.get(backend).and_then(|b| b.ejected_until)
    }

    /// Current run of failures of `backend` (0 for an unknown index).
    pub fn consecutive_failures(&self, backend: usize) -> u32 {
        self.backends.get(backend).map_or(0, |b| b.consecutive)
    }

    /// Ejection count of `backend` as of `now`, after decay; it sets the length of the
    /// next ejection (`base_ejection x (count + 1)`).
    pub fn times_ejected(&self, backend: usize, now: Duration) -> u32 {
        self.backends.get(backend).map_or(0, |b| {
            let mut b = b.clone();
            decay(&mut b, self.base_ejection, now);
            b.times_ejected
        })
    }

    /// Most backends this pool may have ejected at once; see [`max_ejected`].
    pub fn max_ejected(&self) -> usize {
        max_ejected(self.backends.len(), self.max_ejected_percent)
    }

    /// Number of backends in the pool.
    pub fn len(&self) -> usize {
        self.backends.len()
    }

    /// Whether the pool has no backends.
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }
}

/// Drops one ejection from the count per full `base` spent in the pool since
/// `decay_from`.
fn decay(b: &mut BackendOutlier, base: Duration, now: Duration) {
    if b.ejected_until.is_some() || b.times_ejected == 0 || now <= b.decay_from {
        return;
    }
    if base.is_zero() {
        b.times_ejected = 0;
        b.decay_from = now;
        return;
    }
    let periods = (now - b.decay_from).as_nanos() / base.as_nanos();
    let dropped = periods.min(u128::from(b.times_ejected)) as u32;
    b.times_ejected -= dropped;
    b.decay_from = if b.times_ejected == 0 {
        now
    } else {
        b.decay_from + base * dropped
    };
}
