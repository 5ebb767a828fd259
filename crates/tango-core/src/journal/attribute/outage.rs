//! Which of a pool's backends are still out of rotation, however long ago they went,
//! following the reloads that removed, renamed or added backends since: the cause of a
//! skew against the configured weights when no health event is recent.

use super::{health_cause, is_health, lead, SLACK_MS};
use crate::alert::{ChangeKind, Evidence, SuspectedCause};
use crate::journal::{Event, EventKind};

/// The latest event that took one of the alert's pool's backends out of rotation (an
/// ejection, a health check's "unhealthy") before the alert's onset, of a backend not
/// back since, however long ago, with the backend's name now. A reload that removed the
/// backend (or added one under its name) ends its outage too: a backend removed is out
/// of the split, not out of rotation, and one added starts in it. One that renamed it
/// does not: the backend at that address is still out, and its return is journaled
/// under the new name.
pub(super) fn still_out<'a>(alert: &Evidence, all: &'a [Event]) -> Option<(&'a Event, &'a str)> {
    let hi = alert.onset_ms + SLACK_MS;
    let mut events: Vec<&Event> = all
        .iter()
        .filter(|e| {
            e.ts_ms <= hi
                && ((is_health(&e.kind) && e.kind.pool() == Some(&alert.pool))
                    || matches!(
                        e.kind,
                        EventKind::ConfigApplied { .. } | EventKind::ConfigRolledBack { .. }
                    ))
        })
        .collect();
    events.sort_by_key(|e| e.ts_ms);
    // Per backend: what ejected it and what made it unhealthy, while each holds.
    let mut out: Vec<(&str, Option<&Event>, Option<&Event>)> = Vec::new();
    for e in events {
        let (backend, ejected, unhealthy) = match &e.kind {
            EventKind::Ejected { backend, .. } => (backend, Some(Some(e)), None),
            EventKind::Returned { backend, .. } => (backend, Some(None), None),
            EventKind::HealthTransition {
                backend, healthy, ..
            } => (backend, None, Some((!healthy).then_some(e))),
            _ => {
                let (removed, renamed, added) = membership(e, &alert.pool);
                out.retain(|o| !removed.contains(&o.0));
                for o in &mut out {
                    if let Some((_, to)) = renamed.iter().find(|(from, _)| *from == o.0) {
                        o.0 = to;
                    }
                }
                out.retain(|o| !added.contains(&o.0));
                continue;
            }
        };
        let i = match out.iter().position(|o| o.0 == backend.as_str()) {
            Some(i) => i,
            None => {
                out.push((backend.as_str(), None, None));
                out.len() - 1
            }
        };
        if let Some(x) = ejected {
            out[i].1 = x;
        }
        if let Some(x) = unhealthy {
            out[i].2 = x;
        }
    }
    out.iter()
        .flat_map(|o| [o.1, o.2].map(|e| e.map(|e| (e, o.0))))
        .flatten()
        .max_by_key(|(e, _)| e.ts_ms)
}

/// The backends of `pool` a reload (or rollback) removed (by their old names), renamed
/// (old name, new name) and added (by their new names).
type Membership<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<&'a str>);

fn membership<'a>(e: &'a Event, pool: &str) -> Membership<'a> {
    let mut m: Membership<'a> = Default::default();
    let changes = match &e.kind {
        EventKind::ConfigApplied { changes, .. } | EventKind::ConfigRolledBack { changes, .. } => {
            changes
        }
        _ => return m,
    };
    for c in changes.iter().filter(|c| c.pool == pool) {
        match (&c.kind, c.backend.as_deref()) {
            (ChangeKind::BackendRemoved { .. }, Some(b)) => m.0.push(b),
            (ChangeKind::BackendRenamed { from, to, .. }, _) => m.1.push((from, to)),
            (ChangeKind::BackendAdded { .. }, Some(b)) => m.2.push(b),
            _ => {}
        }
    }
    m
}

/// The cause of a health alert while a backend is still out: `h` took it out, and
/// `now` is its name now (a reload may have renamed it since).
pub(super) fn out_cause(alert: &Evidence, h: &Event, now: &str) -> SuspectedCause {
    let mut cause = health_cause(alert, h);
    if cause.backend.as_deref() != Some(now) {
        cause.clause.push_str(&format!(", since renamed {now}"));
        cause.sentence = format!("{}; {}", lead(alert), cause.clause);
        cause.backend = Some(now.to_string());
    }
    cause
}
