//! Latency and error alerts: blamed only on a change to the alerting backend, or on a
//! pool-wide change that can make one backend slower or failing (policy, hashing,
//! health, timeouts, a backend removed) made at most [`POOL_WIDE_NEAR_MS`] before the
//! onset; otherwise a sentence that says no change explains it, which changes touched
//! the backend or its pool and why they are not the cause, and what is known about the
//! backend.

use super::{best_change, change_at, config_cause, health_clause, latest, on_backend, Key};
use super::{Event, LOOKBACK_MS};
use crate::alert::{AlertKind, Cause, Change, ChangeKind, Evidence, SuspectedCause};

/// A pool-wide change (policy, hashing, health, timeouts, a backend removed) explains a
/// backend's latency or errors only when they began within this long after it: such a
/// setting shows with the first requests under it, and the onset is dated to the tick
/// (walked back over the ticks that stand out), so a backend that served normally for
/// longer after the change broke for reasons of its own. Blaming the change would also
/// have its canary roll back an innocent reload. A constant, not a `[guard]` setting: it
/// is how closely the onset is dated (a tick or two, plus `SLACK_MS`), not a tolerance
/// an operator trades; and it decides the incident's stated cause too, not only the
/// canary's verdict.
const POOL_WIDE_NEAR_MS: u64 = 5_000;

/// A pool-wide change that can make one backend slower or failing than the others.
fn pool_wide_outlier_cause(c: &Change) -> bool {
    matches!(
        c.kind,
        ChangeKind::Policy { .. }
            | ChangeKind::HashKey { .. }
            | ChangeKind::Hashing { .. }
            | ChangeKind::Health { .. }
            | ChangeKind::Timeouts { .. }
            | ChangeKind::BackendRemoved { .. }
    )
}

/// A change that sends the backend less traffic: it cannot make it slower or failing.
fn lowers_weight(c: &Change) -> bool {
    matches!(c.kind, ChangeKind::Weight { from, to } if to < from)
}

pub(super) fn outlier_cause(alert: &Evidence, window: &[&Event], all: &[Event]) -> SuspectedCause {
    let best = best_change(window, alert.onset_ms, |e, c| {
        if c.pool != alert.pool {
            return None;
        }
        if c.backend.as_deref() == Some(alert.backend.as_str()) {
            return (!lowers_weight(c)).then_some(0);
        }
        (pool_wide_outlier_cause(c) && e.ts_ms + POOL_WIDE_NEAR_MS >= alert.onset_ms).then_some(1)
    });
    if let Some((_, e, c)) = best {
        return config_cause(alert, e, c, all);
    }
    let b = &alert.backend;
    let state = match alert.kind {
        AlertKind::Errors => "is failing",
        _ => "is slower",
    };
    // A change did touch the backend or its pool's settings and is not the cause: say
    // which, and why.
    let lowered = best_change(window, alert.onset_ms, |_, c| {
        (c.pool == alert.pool && c.backend.as_deref() == Some(b.as_str()) && lowers_weight(c))
            .then_some(0)
    });
    let earlier = best_change(window, alert.onset_ms, |_, c| {
        (c.pool == alert.pool && c.backend.is_none() && pool_wide_outlier_cause(c)).then_some(0)
    });
    let why_not =
        |(_, e, c): (Key, &Event, &Change), why: String| format!("{}, {why}", change_at(e, c));
    let touched = match (lowered, earlier) {
        (Some(l), _) => why_not(l, format!(
            "which sends it less traffic, not more, and no other configuration change touched {b} or pool {}'s policy, hashing, health or timeout settings",
            alert.pool
        )),
        (None, Some(w)) => {
            let before = alert.onset_ms.saturating_sub(w.1.ts_ms).div_ceil(1000);
            why_not(w, format!(
                "{before} s before this began ({b}'s requests under it were fine until then, and a pool's setting shows with its first requests), and no configuration change touched {b}"
            ))
        }
        (None, None) => format!(
            "no configuration change touched {b} or pool {}'s policy, hashing, health or timeout settings",
            alert.pool
        ),
    };
    let mut clause = format!(
        "{touched} in the {} minutes before; {b} itself {state}",
        LOOKBACK_MS / 60_000
    );
    let own_health = latest(window, |e| on_backend(e, alert));
    if let Some(h) = own_health {
        clause.push_str(&format!("; {}", health_clause(h)));
    }
    let mut cause = SuspectedCause::new(alert, Cause::Backend, clause);
    cause.at_ms = own_health.map(|h| h.ts_ms);
    cause.backend = Some(b.clone());
    cause
}
