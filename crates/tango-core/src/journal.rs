//! Journal event types: config changes (applied, rejected, rolled back), health
//! transitions, alerts.
//!
//! The journal is a JSON Lines file (one [`Event`] per line) written by the binary. This
//! module owns the event types (with the reload guard's records, [`FindingRecord`] and
//! [`PredictedShare`]), the structured summary of what a config change changed
//! ([`summarize_changes`]), the attribution of an alert to the change that preceded it
//! ([`attribute`]), reading journal text back ([`parse_lines`]) and the pure halves of
//! `tango timeline` and `tango postmortem` ([`render_timeline`], [`render_postmortem`]),
//! with the traffic summaries a post-mortem's impact is computed from ([`impact`]).

mod attribute;
mod changes;
mod guard;
mod markdown;
mod postmortem;
mod render;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_attribution;
#[cfg(test)]
mod tests_postmortem;
mod time;
mod traffic;

pub use crate::alert::{Change, ChangeKind, Series, SuspectedCause};
pub use attribute::{
    attribute, cause_of, HEALTH_NEAR_MS, JUST_BEFORE_MS, LOOKBACK_MS, SERIES_GAP_MS,
};
pub use changes::summarize_changes;
pub(crate) use guard::location as location_of;
pub use guard::{FindingRecord, PredictedShare};
pub use postmortem::{has_incident, render_postmortem, PostmortemInput};
pub use render::{describe, describe_in, render_timeline};
pub use time::{clock, date_time};
pub use traffic::{
    impact, quantile_ms, BackendImpact, BackendTraffic, Impact, TrafficSummary, NORMAL_MS,
    SUMMARY_MS,
};

use crate::alert::{Evidence, Incident, IncidentEvent};
use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time in milliseconds.
    pub ts_ms: u64,
    /// The config generation in force after this event.
    pub generation: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What asked for a configuration to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// Read when tango started.
    Startup,
    /// SIGHUP.
    Sighup,
    /// The admin API's reload.
    Api,
    /// `tango reload`.
    Cli,
}

impl ConfigSource {
    /// The source's name in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigSource::Startup => "startup",
            ConfigSource::Sighup => "sighup",
            ConfigSource::Api => "api",
            ConfigSource::Cli => "cli",
        }
    }
}

/// A pool a canary watches: its requests since the reload, and what the detector needs
/// to judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryTraffic {
    /// The pool.
    pub pool: String,
    /// Its requests (tries) since the reload.
    pub requests: u64,
    /// The requests judging it needs.
    pub needed: u64,
}

impl CanaryTraffic {
    /// "p: 12 of 60 requests".
    pub fn describe(&self) -> String {
        format!(
            "{}: {} of {} requests",
            self.pool, self.requests, self.needed
        )
    }
}

/// What a journal event records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A configuration was applied.
    ConfigApplied {
        /// The text's content hash.
        content_hash: String,
        /// What asked for it.
        source: ConfigSource,
        /// What changed in the pools.
        changes: Vec<Change>,
        /// The checklist's findings on the applied file.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        findings: Vec<FindingRecord>,
        /// Predicted shares of the backends in the pools the reload changed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        predicted: Vec<PredictedShare>,
        /// What the operator overrode to let this reload through (`--force`,
        /// `--allow-shift`), as sentences.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        overrides: Vec<String>,
    },
    /// An invalid file, or one the reload guard refused: nothing changed.
    ConfigRejected {
        /// What asked for it.
        source: ConfigSource,
        /// Validation errors, or the guard's reasons, one sentence each.
        errors: Vec<String>,
        /// The checklist's findings on the refused file.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        findings: Vec<FindingRecord>,
        /// Predicted shares, when the guard judged the shift.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        predicted: Vec<PredictedShare>,
    },
    /// The canary after a reload saw an alert that reload caused, and the configuration
    /// before it was restored. The event's generation is the restored one's new number.
    ConfigRolledBack {
        /// The generation rolled back.
        from_generation: u64,
        /// The generation whose configuration is restored.
        to_generation: u64,
        /// The restored text's content hash.
        content_hash: String,
        /// What the rollback changes (the reverse of the rolled-back reload).
        changes: Vec<Change>,
        /// The alerts that caused it.
        evidence: Vec<Evidence>,
    },
    /// A reload's canary window ended without an alert it caused.
    CanaryPassed {
        /// The pools watched.
        pools: Vec<String>,
        /// How long they were watched.
        window_ms: u64,
    },
    /// A reload's canary window has passed, but these pools have had too few requests
    /// since the reload for the detector to judge them: it stays open until they have,
    /// or until `until_ms`.
    CanaryExtended {
        /// The pools short of requests.
        traffic: Vec<CanaryTraffic>,
        /// The window's length.
        window_ms: u64,
        /// Unix milliseconds when it closes at the latest.
        until_ms: u64,
    },
    /// A reload's canary ended without judging it: at its longest, these pools still had
    /// too few requests. Not a pass: an alert the reload causes later is not rolled back.
    CanaryEnded {
        /// The pools watched.
        pools: Vec<String>,
        /// How long they were watched.
        window_ms: u64,
        /// The pools short of requests.
        traffic: Vec<CanaryTraffic>,
        /// Why, as a sentence.
        reason: String,
    },
    /// The canary blamed an alert on its reload, and restoring the configuration before
    /// it failed. The event's generation is the one still in force.
    ConfigRollbackFailed {
        /// The generation that was to be rolled back.
        from_generation: u64,
        /// The generation whose configuration was to be restored.
        to_generation: u64,
        /// Why it failed.
        reason: String,
        /// Failed attempts so far.
        attempts: u32,
        /// Whether it is tried again (the cause may pass) or given up.
        retrying: bool,
        /// The alerts that called for it.
        evidence: Vec<Evidence>,
    },
    /// A backend's health flipped.
    HealthTransition {
        /// The pool.
        pool: String,
        /// The backend.
        backend: String,
        /// The new state.
        healthy: bool,
        /// Why, e.g. "3 consecutive failed probes: status 500".
        reason: String,
    },
    /// Passive outlier detection ejected a backend.
    Ejected {
        /// The pool.
        pool: String,
        /// The backend.
        backend: String,
        /// Why, e.g. "5 consecutive failures".
        reason: String,
    },
    /// An ejected backend is eligible again.
    Returned {
        /// The pool.
        pool: String,
        /// The backend.
        backend: String,
    },
    /// A pool entered or left panic mode (too few eligible backends: all are used).
    PanicMode {
        /// The pool.
        pool: String,
        /// Entered (`true`) or left.
        entered: bool,
    },
    /// A detector's alert fired.
    AlertFired {
        /// What it rests on.
        evidence: Evidence,
    },
    /// An alert stopped holding.
    AlertResolved {
        /// What it rested on.
        evidence: Evidence,
    },
    /// An incident (one event's grouped alerts, see `detector::IncidentTracker`) was
    /// announced, changed, or resolved; its cause sentence is the one the log showed.
    IncidentOpened {
        /// The incident as announced.
        incident: Incident,
    },
    /// An incident's signals, headline or backends down changed.
    IncidentUpdated {
        /// The incident as it now stands.
        incident: Incident,
    },
    /// An incident ended.
    IncidentResolved {
        /// The incident as it ended.
        incident: Incident,
    },
    /// A pool's traffic over a summary period, for an incident's impact offline.
    Traffic {
        /// The pool's counts over the period.
        summary: TrafficSummary,
    },
}

impl From<&IncidentEvent> for EventKind {
    fn from(e: &IncidentEvent) -> Self {
        match e {
            IncidentEvent::Opened(i) => EventKind::IncidentOpened {
                incident: i.clone(),
            },
            IncidentEvent::Updated(i) => EventKind::IncidentUpdated {
                incident: i.clone(),
            },
            IncidentEvent::Resolved(i) => EventKind::IncidentResolved {
                incident: i.clone(),
            },
        }
    }
}

impl EventKind {
    /// The pool an event concerns, if it concerns one.
    pub fn pool(&self) -> Option<&str> {
        match self {
            EventKind::HealthTransition { pool, .. }
            | EventKind::Ejected { pool, .. }
            | EventKind::Returned { pool, .. }
            | EventKind::PanicMode { pool, .. } => Some(pool),
            EventKind::AlertFired { evidence } | EventKind::AlertResolved { evidence } => {
                Some(&evidence.pool)
            }
            EventKind::Traffic { summary } => Some(&summary.pool),
            _ => self.incident().map(|i| i.pool.as_str()),
        }
    }

    /// The incident an event carries whole: opened, updated or resolved.
    pub fn incident(&self) -> Option<&Incident> {
        match self {
            EventKind::IncidentOpened { incident }
            | EventKind::IncidentUpdated { incident }
            | EventKind::IncidentResolved { incident } => Some(incident),
            _ => None,
        }
    }
}

impl Event {
    /// One JSON Lines line, without the newline.
    pub fn to_line(&self) -> String {
        // Serializing these plain types cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Journal text read back: the events, and a warning per line that was skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The events, in file order.
    pub events: Vec<Event>,
    /// One warning per line that was skipped.
    pub warnings: Vec<String>,
    /// The number (from 1) of each line that was skipped, as the warnings say them.
    pub skipped_lines: Vec<usize>,
}

/// Reads JSON Lines. A last line without its newline that does not parse is a write torn
/// by a crash: it is skipped with a warning, as is any other line that does not parse.
pub fn parse_lines(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Event>(line);
        if parsed.is_err() {
            out.skipped_lines.push(i + 1);
        }
        match parsed {
            Ok(e) => out.events.push(e),
            Err(err) if i + 1 == lines.len() && !complete => out.warnings.push(format!(
                "line {}: skipped a torn last line (an interrupted write): {err}",
                i + 1
            )),
            Err(err) => out.warnings.push(format!(
                "line {}: skipped, not a journal event: {err}",
                i + 1
            )),
        }
    }
    out
}
