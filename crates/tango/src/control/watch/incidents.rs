//! Incidents as people are told about them. tango-core groups a pool's signals into
//! incidents; here each announcement becomes one WARN line, one journal event and one
//! delivery (updated, then resolved, under the same id), and goes into the API's view of
//! open and recent incidents (`WatchState`). A rollback the canary made for one of an
//! incident's signals ends the incident's sentence, wherever it is shown.

use super::state::WatchState;
use crate::journal::Sink;
use tango_core::config::Alerts;
use tango_core::detector::{AlertKind, Incident, IncidentEvent};
use tango_core::journal::EventKind;

/// Clauses to end an incident's sentence with, by the signal they were written for
/// (the canary's "rolled back to generation N").
#[derive(Debug, Default)]
pub(super) struct Decorations(Vec<(String, AlertKind, String)>);

impl Decorations {
    pub(super) fn add(&mut self, backend: &str, kind: AlertKind, clause: String) {
        self.0.push((backend.to_string(), kind, clause));
    }

    /// Ends the incident's sentence with the clauses of its signals.
    pub(super) fn apply(&self, i: &mut Incident) {
        for (backend, kind, clause) in &self.0 {
            let mine = i
                .signals
                .iter()
                .any(|s| s.evidence.backend == *backend && s.evidence.kind == *kind);
            if mine && !i.cause.sentence.ends_with(clause.as_str()) {
                i.cause.sentence = format!("{}; {clause}", i.cause.sentence);
                i.cause.clause = format!("{}; {clause}", i.cause.clause);
            }
        }
    }

    /// Forget the clauses of a resolved incident's signals.
    pub(super) fn forget(&mut self, i: &Incident) {
        self.0.retain(|(b, k, _)| {
            !i.signals
                .iter()
                .any(|s| s.evidence.backend == *b && s.evidence.kind == *k)
        });
    }
}

/// Tell one incident event: the journal, the log (one WARN line when it opens), the
/// webhook and Alertmanager, and the API's history.
pub(super) fn publish(journal: &Sink, state: &WatchState, targets: &Alerts, ev: &IncidentEvent) {
    journal.record(EventKind::from(ev));
    let (i, status) = match ev {
        IncidentEvent::Opened(i) => {
            tracing::warn!(
                pool = %i.pool,
                incident = %i.id,
                backend = %i.headline,
                kind = i.kind.as_str(),
                cause = i.cause.class.as_str(),
                signals = i.signals.len(),
                "ALERT {}",
                i.cause.sentence
            );
            (i, "firing")
        }
        IncidentEvent::Updated(i) => {
            let active: Vec<String> = i
                .signals
                .iter()
                .filter(|s| s.active)
                .map(|s| format!("{} {}", s.evidence.backend, s.evidence.kind.as_str()))
                .collect();
            tracing::info!(
                pool = %i.pool,
                incident = %i.id,
                backend = %i.headline,
                down = %i.down.join(","),
                "incident updated: {} signal(s) active ({})",
                active.len(),
                active.join(", ")
            );
            (i, "firing")
        }
        IncidentEvent::Resolved(i) => {
            tracing::info!(
                pool = %i.pool,
                incident = %i.id,
                backend = %i.headline,
                "incident resolved after {}s",
                i.resolved_ms.unwrap_or(i.updated_ms).saturating_sub(i.onset_ms) / 1000
            );
            (i, "resolved")
        }
    };
    crate::control::deliver::deliver(targets, i, status);
    state.record_incident(i);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tango_core::detector::{Basis, Cause, Evidence, Signal};
    use tango_core::journal::SuspectedCause;

    fn incident(backends: &[(&str, AlertKind)]) -> Incident {
        let signal = |(b, k): &(&str, AlertKind)| Signal {
            evidence: Evidence {
                pool: "p".into(),
                backend: b.to_string(),
                kind: *k,
                basis: Basis::Baseline,
                observed: 0.0,
                expected: 0.0,
                ratio: 1.0,
                z: 0.0,
                window_ms: 0,
                requests: 0,
                pool_requests: 0,
                phi: 1.0,
                onset_ms: 0,
                at_ms: 0,
                cause: Cause::Config,
                detail: None,
                client_errors: None,
            },
            sources: vec![Basis::Baseline],
            active: true,
            resolved_ms: None,
        };
        Incident {
            id: "p-1".into(),
            pool: "p".into(),
            headline: backends[0].0.to_string(),
            kind: backends[0].1,
            cause: SuspectedCause {
                class: Cause::Config,
                generation: Some(2),
                change: None,
                at_ms: None,
                backend: None,
                sentence: "b2 is taking 3.0x its share since 10:00:00; likely cause: x".into(),
                clause: "likely cause: x".into(),
                series: None,
            },
            onset_ms: 0,
            opened_ms: 0,
            updated_ms: 0,
            resolved_ms: None,
            signals: backends.iter().map(signal).collect(),
            down: Vec::new(),
        }
    }

    #[test]
    fn a_rollback_ends_the_sentence_of_the_incident_holding_its_signal_once() {
        let mut d = Decorations::default();
        d.add(
            "b1",
            AlertKind::UnderShare,
            "rolled back to generation 1 (now generation 3)".into(),
        );
        let mut mine = incident(&[("b2", AlertKind::OverShare), ("b1", AlertKind::UnderShare)]);
        d.apply(&mut mine);
        d.apply(&mut mine);
        assert_eq!(
            mine.cause.sentence,
            "b2 is taking 3.0x its share since 10:00:00; likely cause: x; rolled back to generation 1 (now generation 3)"
        );
        let mut other = incident(&[("b1", AlertKind::Latency)]);
        d.apply(&mut other);
        assert!(!other.cause.sentence.contains("rolled back"));
        d.forget(&mine);
        let mut again = incident(&[("b1", AlertKind::UnderShare)]);
        d.apply(&mut again);
        assert!(!again.cause.sentence.contains("rolled back"));
    }
}
