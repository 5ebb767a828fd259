//! A flapping backend's incident: reopened rather than told anew when the backend goes
//! down again soon after it resolved, kept open until the backend has been back a while,
//! and re-told only when its members or headline change.

use super::{shape, IncidentTracker, Tracked};
use crate::alert::{Cause, Evidence, IncidentEvent, Signal};

impl Tracked {
    /// Whether the incident changed enough to be told again: any change of its signals'
    /// states, headline or backends down; for a flapping one, only a new member or a new
    /// headline (its backend going and coming back is what it already says).
    pub(super) fn news(&self) -> bool {
        let inc = &self.incident;
        if self.flapping {
            let members = |v: &[(String, _, bool)]| {
                v.iter()
                    .map(|(b, k, _)| (b.clone(), *k))
                    .collect::<Vec<_>>()
            };
            return members(&shape(inc)) != members(&self.reported)
                || inc.headline != self.reported_headline;
        }
        shape(inc) != self.reported
            || inc.headline != self.reported_headline
            || inc.down != self.reported_down
    }
}

impl IncidentTracker {
    /// A flapping incident stays open until its signals have been over and its backends
    /// back for `settle_ms`.
    pub(super) fn settling(&self, t: &Tracked, now_ms: u64) -> bool {
        t.flapping && now_ms < t.busy_ms.saturating_add(self.cfg.settle_ms)
    }

    /// Resolves an announced incident at `now_ms`; one whose backend was down, or blamed
    /// on health (its signal may come only once the backend is back, at a low rate), is
    /// kept a while, to be reopened if the backend goes down again.
    pub(super) fn resolve(&mut self, mut t: Tracked, now_ms: u64) -> IncidentEvent {
        t.incident.resolved_ms = Some(now_ms);
        t.incident.updated_ms = now_ms;
        let told = IncidentEvent::Resolved(t.incident.clone());
        if t.down_ms.is_some() || t.incident.cause.class == Cause::Health {
            self.settled.push(t);
        }
        told
    }

    /// Forgets resolved incidents older than `settle_ms`.
    pub(super) fn forget_settled(&mut self, now_ms: u64) {
        let settle = self.cfg.settle_ms;
        self.settled.retain(|t| {
            t.incident
                .resolved_ms
                .is_some_and(|r| now_ms <= r.saturating_add(settle))
        });
    }

    /// Reopens the incident, resolved within `settle_ms`, of the backend `e` is about,
    /// with `signal` active in it again; returns whether there was one.
    pub(super) fn reopen(&mut self, e: &Evidence, signal: &Signal, now_ms: u64) -> bool {
        let settle = self.cfg.settle_ms;
        let Some(pos) = self.settled.iter().position(|t| {
            t.incident.resolved_ms.is_some_and(|r| now_ms <= r + settle)
                && t.incident
                    .signals
                    .iter()
                    .any(|s| s.evidence.backend == e.backend)
        }) else {
            return false;
        };
        let mut t = self.settled.swap_remove(pos);
        t.flapping = true;
        let inc = &mut t.incident;
        inc.resolved_ms = None;
        inc.onset_ms = inc.onset_ms.min(e.onset_ms);
        match inc
            .signals
            .iter_mut()
            .find(|s| s.evidence.backend == e.backend && s.evidence.kind == e.kind)
        {
            Some(s) => *s = signal.clone(),
            None => inc.signals.push(signal.clone()),
        }
        // Told as updated on the next comparison: it was last told resolved.
        t.reported.clear();
        self.open.push(t);
        true
    }
}
