//! One event's alerts, told as one incident. `detector::IncidentTracker` groups them.

use super::cause::SuspectedCause;
use super::{AlertKind, Basis, Evidence};
use serde::{Deserialize, Serialize};

/// One backend and kind within an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The evidence it fired with (the first source's).
    pub evidence: Evidence,
    /// The detectors reporting it now, by basis (`effective`/`configured`: the share
    /// detector; `baseline`: the shift detector).
    pub sources: Vec<Basis>,
    /// Some source still reports it.
    pub active: bool,
    /// When the last source stopped reporting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_ms: Option<u64>,
}

/// One event in a pool, as people are told about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// "{pool}-{unix seconds when opened}", unique within a tracker.
    pub id: String,
    /// The pool.
    pub pool: String,
    /// The backend whose change explains the rest.
    pub headline: String,
    /// The headline signal's kind.
    pub kind: AlertKind,
    /// The headline signal's cause; its sentence is the incident's one line.
    pub cause: SuspectedCause,
    /// The earliest onset of its signals.
    pub onset_ms: u64,
    /// When it was announced.
    pub opened_ms: u64,
    /// When it last changed.
    pub updated_ms: u64,
    /// When it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_ms: Option<u64>,
    /// Every signal, the headline's first.
    pub signals: Vec<Signal>,
    /// Backends of the incident that are down (unhealthy or ejected) now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub down: Vec<String>,
}

/// What a tracker tells about an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum IncidentEvent {
    /// Announced, once its headline is known.
    Opened(Incident),
    /// Its signals, headline or backends down changed.
    Updated(Incident),
    /// No signal is active and none of its backends is down.
    Resolved(Incident),
}
