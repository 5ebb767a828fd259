//! When an outlier (latency, errors) began, as far as the backend's own ticks show.
//!
//! An outlier test needs a window of several ticks and enough requests on both sides,
//! then a hold; the tick its condition first held is therefore seconds after the
//! backend's requests began to stand out, and for a backend slow or failing from its
//! very first request it is merely when the test had warmed up. So once an alert fires,
//! its onset is dated by walking back over the backend's ticks, newest first, for as
//! long as each tick, judged alone on the evidence that fired (the same slow threshold
//! or the others' error rate), stands out as the window did: the start of the earliest
//! such tick is the onset. The walk stops at the first tick with requests that does not
//! stand out, so an alert that starts mid-traffic is dated no earlier than the first
//! tick that shows it; ticks without requests say nothing either way and are passed
//! over, so a backend slow from its first request is dated from the tick its traffic
//! began. It never reaches back past the backend's last resolution of the same kind
//! (that episode was told already) nor past the history held.

use super::window::Sample;
use super::{latency, DetectorConfig};
use std::collections::VecDeque;

/// The times (the injected `now`) of the last ticks read, newest first: tick `j` ago
/// covers `(times[j + 1], times[j]]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TickTimes {
    times: VecDeque<u64>,
    keep: usize,
}

impl TickTimes {
    /// Keeps enough times to date the start of every tick a window of `longest` holds.
    pub(crate) fn new(longest: u32) -> Self {
        Self {
            times: VecDeque::new(),
            keep: longest as usize + 1,
        }
    }

    pub(crate) fn push(&mut self, now_ms: u64) {
        self.times.push_front(now_ms);
        self.times.truncate(self.keep);
    }

    /// The start of the tick `j` ticks ago: the previous tick's time, or one tick's
    /// length before its own when that is not held.
    fn start(&self, j: usize, tick_ms: u64) -> Option<u64> {
        match self.times.get(j + 1) {
            Some(t) => Some(*t),
            None => self.times.get(j).map(|t| t.saturating_sub(tick_ms)),
        }
    }
}

/// What one tick alone must show to stand out as the window that fired did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TickBar {
    /// Latency: requests slower than `threshold` ms, of which the others had a
    /// fraction `others` in the window.
    Slow { threshold: f64, others: f64 },
    /// Errors: the others' error rate in the window.
    Errors { others: f64 },
}

impl TickBar {
    /// `None` when the tick had no requests to judge, else whether it stands out: for
    /// errors, the rate the error test asks of a window (no count floor: this dates an
    /// alert a window has already established, it fires none).
    fn judge(self, cfg: &DetectorConfig, s: &Sample) -> Option<bool> {
        match self {
            TickBar::Slow { threshold, others } => {
                latency::tick_stands_out(cfg, s, threshold, others)
            }
            TickBar::Errors { others } => {
                if s.n == 0 {
                    return None;
                }
                let rate = s.errors as f64 / s.n as f64;
                Some(s.errors > 0 && rate >= cfg.error_min_rate && rate >= cfg.error_ratio * others)
            }
        }
    }
}

/// The onset of an outlier firing now on a backend whose ticks are `history` (newest
/// first, read at `times`): the start of the earliest tick of the run, ending now,
/// that clears `bar` alone (see the module documentation), looking at most `since`
/// ticks back (those since its last resolution); or `fallback` (the start of the tick
/// the window's condition first held) when that is earlier or no tick clears it alone.
pub(crate) fn dated<'a>(
    history: impl Iterator<Item = &'a Sample>,
    times: &TickTimes,
    cfg: &DetectorConfig,
    bar: TickBar,
    since: Option<u64>,
    fallback: u64,
) -> u64 {
    let mut earliest = None;
    for (j, s) in history.enumerate() {
        if since.is_some_and(|t| j as u64 >= t) {
            break;
        }
        match bar.judge(cfg, s) {
            None => continue,
            Some(true) => earliest = Some(j),
            Some(false) => break,
        }
    }
    earliest
        .and_then(|j| times.start(j, cfg.tick_ms))
        .map_or(fallback, |t| t.min(fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_starts_when_the_one_before_it_was_read() {
        let mut t = TickTimes::new(2);
        for now in [10_000, 11_000, 12_100, 13_000] {
            t.push(now);
        }
        assert_eq!(t.start(0, 1000), Some(12_100));
        assert_eq!(t.start(1, 1000), Some(11_000));
        // Only three times are kept: the oldest tick's start is a tick before it.
        assert_eq!(t.start(2, 1000), Some(10_000));
        assert_eq!(t.start(3, 1000), None);
    }
}
