//! The shift detector's hold: when its baseline stops learning from the split served
//! (a shift alert firing, or a split plainly moved but under the alert ratio), when the
//! hold ends, and how a hold that lasts `adopt_after_ms` becomes the new baseline.

use super::ShiftDetector;
use crate::detector::AlertEvent;

/// The baseline held, not learning from the split served.
#[derive(Debug)]
pub(super) struct Hold {
    /// When it began (for a hold under the alert ratio: or the configured split last
    /// changed): it is adopted `adopt_after_ms` later.
    since_ms: u64,
    /// A shift alert is firing; else the split is only plainly moved.
    alerting: bool,
    /// Consecutive ticks the split has looked like the baseline, in a hold under the
    /// alert ratio: a skew window of them ends it.
    quiet_ticks: u32,
    /// The configured split it began under.
    configured: Vec<f64>,
}

/// What a tick does to the hold.
enum HoldStep {
    Keep,
    Start { alerting: bool },
    End,
}

/// The least part of a hold a backend must have been in rotation at full weight for its
/// split since then to be adopted.
const ADOPT_MIN_PART: f64 = 0.1;

impl ShiftDetector {
    /// Notes when the baseline began to be held, and why. An alert's hold lasts while it
    /// fires, and starts when it fires even if the split was held before: the alert is
    /// told for its full time. A hold under the alert ratio lasts until the split has
    /// looked like the baseline for a skew window (one quiet tick between plain ones
    /// would otherwise restart the clock, and a split hovering at the line would never
    /// be adopted), and starts over when the configured split changes: what is adopted
    /// is the split of the configuration in force.
    pub(super) fn track_hold(&mut self, now: u64, conf: &[f64], alerting: bool, moved: bool) {
        let release = self.inner.config().phi_window;
        let step = match &mut self.hold {
            None if alerting || moved => HoldStep::Start { alerting },
            None => HoldStep::Keep,
            Some(h) if h.alerting => match (alerting, moved) {
                (true, _) => HoldStep::Keep,
                // It resolved with the split still plainly moved.
                (false, true) => HoldStep::Start { alerting },
                (false, false) => HoldStep::End,
            },
            Some(_) if alerting => HoldStep::Start { alerting },
            Some(h) if moved => {
                h.quiet_ticks = 0;
                let changed = h
                    .configured
                    .iter()
                    .zip(conf)
                    .any(|(a, b)| (a - b).abs() > 1e-9);
                if changed {
                    HoldStep::Start { alerting }
                } else {
                    HoldStep::Keep
                }
            }
            Some(h) => {
                h.quiet_ticks += 1;
                if h.quiet_ticks >= release {
                    HoldStep::End
                } else {
                    HoldStep::Keep
                }
            }
        };
        match step {
            HoldStep::Keep => {}
            HoldStep::End => self.hold = None,
            HoldStep::Start { alerting } => {
                self.hold = Some(Hold {
                    since_ms: now,
                    alerting,
                    quiet_ticks: 0,
                    configured: conf.to_vec(),
                });
                for b in &mut self.baseline {
                    b.held_requests = 0.0;
                    b.held_among = 0.0;
                }
            }
        }
    }

    /// Once the baseline has been held for `adopt_after_ms`, the split since the hold
    /// began is the new normal: its alerts resolve, and the windows start afresh on the
    /// new baseline.
    pub(super) fn adopt_if_lasting(
        &mut self,
        now: u64,
        conf: &[f64],
        events: &mut Vec<AlertEvent>,
    ) {
        let Some(hold) = &self.hold else { return };
        if now.saturating_sub(hold.since_ms) < self.cfg.adopt_after_ms {
            return;
        }
        events.extend(self.resolve_reported(now));
        // A backend in rotation for less than a tenth of the hold keeps its share: a
        // tick or two says little, and the tick it came back in holds only part of a
        // second of it. One out of rotation throughout keeps it too.
        let most = self
            .baseline
            .iter()
            .map(|b| b.held_among)
            .fold(0.0, f64::max);
        for (b, c) in self.baseline.iter_mut().zip(conf) {
            if b.held_among > 0.0 && b.held_among >= most * ADOPT_MIN_PART {
                b.share = b.held_requests / b.held_among;
            }
            b.configured = *c;
            b.settled = *c;
        }
        self.normalize_baseline();
        // The adopted split is the one this configuration brought: its alert, if it had
        // one, has fired and resolved, so the change explains nothing more.
        self.caught_up = 1.0;
        self.inner.restart();
        self.hold = None;
    }
}
