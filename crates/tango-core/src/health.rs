//! Active health-check state: one [`HealthState`] per backend, driven by probe results.
//!
//! The binary runs the probes (HTTP, TCP or gRPC) on its own schedule and reports each
//! result here with the time it finished; this module decides when a backend flips
//! between healthy and unhealthy (rise/fall thresholds), says why, and remembers when it
//! last recovered so the caller can ramp its weight back up (slow start). Probe
//! evaluation and probe scheduling are in [`probe`], the gRPC health check's messages and
//! verdict in [`grpc`]; which backends a policy may pick, including panic mode, is in
//! [`eligibility`](mod@eligibility).
//!
//! Time is `now`: a [`Duration`] since process start, injected by the caller.

pub mod eligibility;
pub mod grpc;
pub mod probe;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::config::HealthCheck;

pub use eligibility::{eligibility, Eligibility};
pub use grpc::evaluate_grpc;
pub use probe::{evaluate_http, next_probe_delay, Probe};

/// A change of a backend's health, for the journal, logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new state: `true` when the backend just came up.
    pub healthy: bool,
    /// When the probe that caused the flip finished.
    pub at: Duration,
    /// Human-readable cause, e.g. "3 consecutive failed probes: status 500".
    pub reason: String,
}

/// Rise/fall state machine of one backend.
///
/// A backend starts **healthy**. A fresh configuration (or a newly added backend) must
/// not blackhole traffic for a whole `interval x rise` before the first probes come
/// back, and a pool whose backends all start down would serve nothing but 503s right
/// after `tango run`. Starting healthy costs little: a backend that is really down fails
/// its first `fall` probes and is taken out then, exactly as if it had been up before.
/// HAProxy starts servers the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    rise: u32,
    fall: u32,
    healthy: bool,
    /// Consecutive results that disagree with the current state; they reset whenever a
    /// result agrees with it, so flapping probes never reach a threshold.
    streak: u32,
    /// When the backend last went from unhealthy to healthy (`None`: never, it has been
    /// healthy since it was created).
    recovered_at: Option<Duration>,
    /// When the state last changed (`None`: it has kept its initial state).
    changed_at: Option<Duration>,
    /// Reason of the most recent failed probe, kept so status pages can say why a
    /// backend is down without looking through logs.
    last_failure: Option<String>,
}

impl HealthState {
    /// A healthy backend with the thresholds of `cfg`.
    pub fn new(cfg: &HealthCheck) -> Self {
        Self::with_thresholds(cfg.rise, cfg.fall)
    }

    /// A healthy backend that goes down after `fall` consecutive failed probes and comes
    /// back after `rise` consecutive passed ones. Zero thresholds act as 1.
    pub fn with_thresholds(rise: u32, fall: u32) -> Self {
        HealthState {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: true,
            streak: 0,
            recovered_at: None,
            changed_at: None,
            last_failure: None,
        }
    }

    /// Applies new thresholds after a reload while keeping the current state, so a
    /// reload neither resurrects a down backend nor takes an up one out. A streak already
    /// at or past a lowered threshold flips on the next disagreeing probe, not at once:
    /// the reload itself is not evidence about the backend.
    pub fn reconfigure(&mut self, rise: u32, fall: u32) {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
    }

    /// Records one probe result finished at `now`; returns the transition when this
    /// result flips the state.
    pub fn record(&mut self, probe: Probe, now: Duration) -> Option<Transition> {
        let passed = match probe {
            Probe::Pass => true,
            Probe::Fail(reason) => {
                self.last_failure = Some(reason);
                false
            }
        };
        if passed == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let threshold = if self.healthy { self.fall } else { self.rise };
        if self.streak < threshold {
            return None;
        }
        let count = self.streak;
        self.streak = 0;
        self.healthy = passed;
        self.changed_at = Some(now);
        let reason = if passed {
            self.recovered_at = Some(now);
            format!("{count} consecutive passed {}", probes(count))
        } else {
            let why = self.last_failure.as_deref().unwrap_or("failed");
            format!("{count} consecutive failed {}: {why}", probes(count))
        };
        Some(Transition {
            healthy: passed,
            at: now,
            reason,
        })
    }

    /// Whether the backend is healthy now.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// When the backend last came back up, for slow start; `None` if it never went down.
    pub fn recovered_at(&self) -> Option<Duration> {
        self.recovered_at
    }

    /// When the state last changed; `None` if it has kept its initial (healthy) state.
    pub fn changed_at(&self) -> Option<Duration> {
        self.changed_at
    }

    /// Reason of the most recent failed probe, if any probe has failed.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Consecutive probe results that disagree with the current state (failures while
    /// healthy, passes while unhealthy): how close the backend is to flipping.
    pub fn streak(&self) -> u32 {
        self.streak
    }
}

fn probes(n: u32) -> &'static str {
    if n == 1 {
        "probe"
    } else {
        "probes"
    }
}
