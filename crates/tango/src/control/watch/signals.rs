//! A pool's signals after the detectors ran: each journaled as evidence with the cause
//! it would have alone, a fired one shown to the canary (which may roll its reload back),
//! then grouped into incidents and told (`incidents.rs`); and a pool that left the
//! configuration, whose open incidents end with it.

use super::incidents;
use super::state::WatchState;
use super::PoolWatch;
use crate::control::reload::Control;
use crate::journal::Sink;
use std::sync::Weak;
use tango_core::config::Alerts;
use tango_core::detector::{AlertEvent, IncidentEvent};
use tango_core::journal::{attribute, Event, EventKind};

/// The journal's recent events, read at most once a tick (and again after a rollback):
/// most ticks have no signal and no open incident, and need none.
pub(super) struct Recent<'a> {
    journal: &'a Sink,
    events: Option<Vec<Event>>,
}

impl Recent<'_> {
    fn get(&mut self) -> &[Event] {
        self.events.get_or_insert_with(|| self.journal.recent())
    }
}

impl<'a> Recent<'a> {
    pub(super) fn new(journal: &'a Sink) -> Self {
        Self {
            journal,
            events: None,
        }
    }
}

/// A pool's signals this tick: each journaled as evidence (and shown to the canary,
/// which may roll its reload back), then grouped into incidents, which are told.
pub(super) async fn signals(
    journal: &Sink,
    state: &WatchState,
    control: &Weak<Control>,
    targets: &Alerts,
    w: &mut PoolWatch,
    recent: &mut Recent<'_>,
    now_ms: u64,
) {
    let events = std::mem::take(&mut w.events);
    if events.is_empty() && w.incidents.is_idle() {
        return;
    }
    for ev in &events {
        evidence(journal, control, w, recent, ev, now_ms).await;
    }
    let out = w.incidents.tick(now_ms, &events, recent.get(), &w.down);
    for mut ie in out {
        let (IncidentEvent::Opened(i) | IncidentEvent::Updated(i) | IncidentEvent::Resolved(i)) =
            &mut ie;
        w.decorations.apply(i);
        incidents::publish(journal, state, targets, &ie);
        if let IncidentEvent::Resolved(i) = &ie {
            w.decorations.forget(i);
        }
    }
    let mut open = w.incidents.open();
    for i in &mut open {
        w.decorations.apply(i);
    }
    state.set_open(&w.name, open);
}

/// One signal as evidence: journaled with the cause it would have alone (the incident
/// it joins may be headed by another backend); a fired one goes to the canary.
async fn evidence(
    journal: &Sink,
    control: &Weak<Control>,
    w: &mut PoolWatch,
    recent: &mut Recent<'_>,
    ev: &AlertEvent,
    now_ms: u64,
) {
    match ev {
        AlertEvent::Fired(e) => {
            // What was known when it fired, as its incident will say (the journal is
            // in the order it was written).
            let known = recent.get();
            let cause = attribute(e, &known[..known.partition_point(|x| x.ts_ms <= e.at_ms)]);
            let mut journaled = e.clone();
            journaled.detail = Some(match &e.detail {
                Some(d) => format!("{d}; {}", cause.sentence),
                None => cause.sentence.clone(),
            });
            journal.record(EventKind::AlertFired {
                evidence: journaled,
            });
            tracing::debug!(pool = %e.pool, backend = %e.backend, kind = e.kind.as_str(), basis = ?e.basis, "signal: {}", cause.sentence);
            // Journaled before the canary acts, so the journal reads: applied, alert,
            // rollback.
            let rollback = match control.upgrade() {
                Some(c) => c.on_alert(e, &cause, now_ms).await,
                None => None,
            };
            if let Some(clause) = rollback {
                w.decorations.add(&e.backend, e.kind, &cause, clause);
                // The rollback is journaled now: read the journal again.
                recent.events = None;
            }
        }
        AlertEvent::Resolved { evidence, .. } => {
            journal.record(EventKind::AlertResolved {
                evidence: evidence.clone(),
            });
        }
    }
}

/// A pool that left the configuration: its open incidents end with it.
pub(super) fn close_pool(
    journal: &Sink,
    state: &WatchState,
    targets: &Alerts,
    name: &str,
    w: PoolWatch,
    now_ms: u64,
) {
    for mut i in w.incidents.open() {
        w.decorations.apply(&mut i);
        i.resolved_ms = Some(now_ms);
        i.updated_ms = now_ms;
        incidents::publish(journal, state, targets, &IncidentEvent::Resolved(i));
    }
    state.set_open(name, Vec::new());
}
