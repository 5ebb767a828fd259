//! What a probe result means, and when to send the next probe.
//!
//! The binary performs the probe; these functions turn its outcome into a [`Probe`] and
//! spread probes over time so that many tango instances (or many backends) do not probe
//! in lockstep.

use std::time::Duration;

/// The verdict on one probe, as fed to [`super::HealthState::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The probe passed.
    Pass,
    /// The probe failed; the text says how ("status 500", "timed out after 1s",
    /// "connection refused") and ends up in the transition reason.
    Fail(String),
}

impl Probe {
    /// A failed probe, for the reason given.
    pub fn fail(reason: impl Into<String>) -> Self {
        Probe::Fail(reason.into())
    }

    /// Whether the probe passed.
    pub fn passed(&self) -> bool {
        matches!(self, Probe::Pass)
    }
}

/// Judges an HTTP probe by its response status against the configured inclusive
/// `expect` ranges. An empty `expect` accepts nothing: validation always fills in the
/// default (200-399), so an empty list here is a caller's bug and should be visible.
pub fn evaluate_http(status: u16, expect: &[(u16, u16)]) -> Probe {
    if expect.iter().any(|&(lo, hi)| (lo..=hi).contains(&status)) {
        return Probe::Pass;
    }
    let ranges: Vec<String> = expect
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    Probe::Fail(format!(
        "status {status} (expected {})",
        if ranges.is_empty() {
            "nothing".to_string()
        } else {
            ranges.join(", ")
        }
    ))
}

/// Delay until the next probe: `interval` scaled by a factor drawn uniformly from
/// `[1 - jitter, 1 + jitter)` using `random` (any `u64`, e.g. from the caller's RNG).
/// After rounding to whole nanoseconds the upper bound `interval x (1 + jitter)` itself
/// can be returned.
///
/// `jitter` is a fraction of the interval; it is clamped to `[0, 1]` (NaN counts as 0)
/// so the delay is never negative. Only the top 53 bits of `random` are used, which maps
/// the full `u64` range evenly onto the factor range.
pub fn next_probe_delay(interval: Duration, jitter: f64, random: u64) -> Duration {
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    // (random >> 11) / 2^53 is exactly representable and lies in [0, 1).
    let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
    let factor = 1.0 - jitter + 2.0 * jitter * unit;
    interval.mul_f64(factor)
}
