//! Incidents as people are told about them. tango-core groups a pool's signals into
//! incidents; here each announcement becomes one WARN line, one journal event and one
//! delivery (updated, then resolved, under the same id), and goes into the API's view of
//! open and recent incidents (`WatchState`). A rollback the canary made for one of an
//! incident's signals ends the incident's sentence, wherever it is shown.

use super::state::WatchState;
use crate::journal::Sink;
use tango_core::config::Alerts;
use tango_core::detector::{AlertKind, Incident, IncidentEvent};
use tango_core::journal::{EventKind, SuspectedCause};

/// Clauses to end an incident's sentence with, by the signal they were written for
/// (the canary's "rolled back to generation N").
#[derive(Debug, Default)]
pub(super) struct Decorations(Vec<Decoration>);

/// One signal's clause, with that signal's own cause.
#[derive(Debug)]
struct Decoration {
    backend: String,
    kind: AlertKind,
    cause: SuspectedCause,
    clause: String,
}

impl Decorations {
    /// `cause` is the signal's, as the canary judged it.
    pub(super) fn add(
        &mut self,
        backend: &str,
        kind: AlertKind,
        cause: &SuspectedCause,
        clause: String,
    ) {
        self.0.push(Decoration {
            backend: backend.to_string(),
            kind,
            cause: cause.clone(),
            clause,
        });
    }

    /// Ends the incident's sentence with the clauses of its signals. An incident told
    /// under another cause than the signal's (a backend already slow, which a reload's
    /// over-share of it joined) names the signal and its cause before the clause, or the
    /// rollback would read as undoing the other cause.
    pub(super) fn apply(&self, i: &mut Incident) {
        for d in &self.0 {
            let mine = i
                .signals
                .iter()
                .any(|s| s.evidence.backend == d.backend && s.evidence.kind == d.kind);
            let told = match i.cause.generation == d.cause.generation {
                true => d.clause.clone(),
                false => format!(
                    "{}'s {} ({}): {}",
                    d.backend,
                    d.kind.as_str().replace('_', "-"),
                    d.cause.clause,
                    d.clause
                ),
            };
            if mine && !i.cause.sentence.ends_with(told.as_str()) {
                i.cause.sentence = format!("{}; {told}", i.cause.sentence);
                i.cause.clause = format!("{}; {told}", i.cause.clause);
            }
        }
    }

    /// Forget the clauses of a resolved incident's signals.
    pub(super) fn forget(&mut self, i: &Incident) {
        self.0.retain(
            |Decoration {
                 backend: b,
                 kind: k,
                 ..
             }| {
                !i.signals
                    .iter()
                    .any(|s| s.evidence.backend == *b && s.evidence.kind == *k)
            },
        );
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
        let typo = incident(&[("b2", AlertKind::OverShare)]).cause;
        d.add(
            "b1",
            AlertKind::UnderShare,
            &typo,
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

    /// b2 was already slow (an incident blamed on b2 itself) when a forced weight typo
    /// on it was rolled back: the incident does not read as if its own cause was.
    #[test]
    fn a_rollback_of_a_signal_that_joined_under_another_cause_names_that_signal() {
        let mut d = Decorations::default();
        let typo = incident(&[("b2", AlertKind::OverShare)]).cause;
        d.add(
            "b2",
            AlertKind::OverShare,
            &typo,
            "rolled back to generation 7 (now generation 9)".into(),
        );
        let mut slow = incident(&[("b2", AlertKind::Latency), ("b2", AlertKind::OverShare)]);
        slow.cause.class = Cause::Backend;
        slow.cause.generation = None;
        slow.cause.sentence =
            "b2's p99 latency has been 50.0x the others'; b2 itself is slower".into();
        d.apply(&mut slow);
        d.apply(&mut slow);
        assert_eq!(
            slow.cause.sentence,
            "b2's p99 latency has been 50.0x the others'; b2 itself is slower; b2's over-share (likely cause: x): rolled back to generation 7 (now generation 9)"
        );
    }
}
