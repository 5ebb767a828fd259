//! The vocabulary of alerts, shared by those who make, record and explain them: what a
//! detector reports ([`Evidence`] of an [`AlertKind`], fired and resolved), what it is
//! attributed to ([`SuspectedCause`], which may name a configuration [`Change`]), and
//! how one event's alerts are told as one [`Incident`].
//!
//! Types only. The detectors (`crate::detector`) make them and the journal
//! (`crate::journal`) records and explains them; with the types here, the journal
//! needs nothing of the detectors, and the incident tracker (a detector that reads the
//! journal's attribution) depends on the journal without a loop back. Both modules
//! re-export the types under the paths they always had.

mod cause;
mod change;
mod incident;

pub use cause::{Series, SuspectedCause};
pub use change::{Change, ChangeKind};
pub use incident::{Incident, IncidentEvent, Signal};

use serde::{Deserialize, Serialize};

/// The latency histogram bounds the binary keeps (`stats.rs`), in milliseconds.
pub const LATENCY_BOUNDS_MS: [f64; 14] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A backend takes markedly more than its share.
    OverShare,
    /// A backend takes markedly less than its share.
    UnderShare,
    /// A backend is markedly slower than the others.
    Latency,
    /// A backend fails markedly more often than the others.
    Errors,
}

impl AlertKind {
    /// Every kind, in index order.
    pub const ALL: [AlertKind; 4] = [
        AlertKind::OverShare,
        AlertKind::UnderShare,
        AlertKind::Latency,
        AlertKind::Errors,
    ];

    /// The kind's name in the journal, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::OverShare => "over_share",
            AlertKind::UnderShare => "under_share",
            AlertKind::Latency => "latency",
            AlertKind::Errors => "errors",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Which expectation a share alert was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The eligible set's weights (or key-space ownership): what the policy should give.
    Effective,
    /// The configured weights: what the file says, whatever the health.
    Configured,
    /// The backend's own share before the shift (see [`ShiftDetector`](crate::detector::ShiftDetector)).
    Baseline,
}

/// The detector's own reading of why traffic moved; the journal refines `Config` into
/// the generation and change that did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The eligible set does not explain it: policy, weights or hash key.
    Config,
    /// Only the configured set shows it: health, ejection, draining or slow start.
    Health,
    /// A hot key, keyless requests or too few distinct keys explain it.
    KeyDistribution,
    /// No change explains it: the backend itself is slower or failing (attribution of
    /// latency and error alerts only).
    Backend,
    /// No cause is known.
    Unknown,
}

impl Cause {
    /// The cause's name in the journal and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Config => "config",
            Cause::Health => "health",
            Cause::KeyDistribution => "key_distribution",
            Cause::Backend => "backend",
            Cause::Unknown => "unknown",
        }
    }
}

/// What an alert rests on. For share kinds `observed`/`expected` are shares of the
/// pool's requests; for `errors` they are this backend's and the others' error rates;
/// for `latency` this backend's and the others' p99 latency in milliseconds (bucket
/// upper bounds), with the fraction of its requests slower than the others' in `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The pool.
    pub pool: String,
    /// The backend the alert is about.
    pub backend: String,
    /// What the alert is about.
    pub kind: AlertKind,
    /// What a share was measured against.
    pub basis: Basis,
    /// This backend's figure (see above).
    pub observed: f64,
    /// What was expected of it.
    pub expected: f64,
    /// `observed / expected`.
    pub ratio: f64,
    /// The test's z score.
    pub z: f64,
    /// The window the alert was found on.
    pub window_ms: u64,
    /// This backend's requests in the window.
    pub requests: u64,
    /// The pool's requests in the window.
    pub pool_requests: u64,
    /// The pool's over-dispersion when the alert fired.
    pub phi: f64,
    /// When the shift most likely began.
    pub onset_ms: u64,
    /// When the alert fired.
    pub at_ms: u64,
    /// The detector's reading of why.
    pub cause: Cause,
    /// Free-form detail, e.g. which key explains a hash pool's skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Error alerts: how many of this backend's failed tries in the window reached
    /// clients as failures (the rest were retried elsewhere), when the caller knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_errors: Option<u64>,
}

/// An alert's life: fired, then resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AlertEvent {
    /// A new alert, with its evidence.
    Fired(Evidence),
    /// An alert no longer holds.
    Resolved {
        /// The evidence it fired with.
        evidence: Evidence,
        /// When it stopped holding.
        resolved_ms: u64,
    },
}
