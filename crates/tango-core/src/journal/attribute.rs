//! Attribution: which journaled event most likely caused an alert.
//!
//! Candidates are the events in the [`LOOKBACK_MS`] before the alert's estimated onset
//! (plus a little slack, as the onset is an estimate). A config change (a reload or a
//! rollback) touching the
//! alerting backend ranks first, then one touching its pool, by the change's rank
//! (weights, policy, hash key before health settings before membership), latest first.
//! Health and ejection events in the pool come next; changes to other pools last.

use super::render::clock;
use super::{Change, ConfigSource, Event, EventKind};
use crate::detector::{AlertKind, Cause, Evidence};
use serde::Serialize;

/// How far before the onset a change is still a suspect.
pub const LOOKBACK_MS: u64 = 5 * 60 * 1000;
/// The onset is an estimate to about a tick or two; a change journaled just after it
/// still counts.
const SLACK_MS: u64 = 5_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuspectedCause {
    pub class: Cause,
    /// The config generation, when a config change is suspected.
    pub generation: Option<u64>,
    pub change: Option<Change>,
    /// When the suspected event happened.
    pub at_ms: Option<u64>,
    /// For people: "backend-2 is taking 3.1x its share since 14:29:40; likely cause: ...".
    pub sentence: String,
}

/// The most likely cause of `alert` among `events` (any order; events outside the
/// lookback window are ignored).
pub fn attribute(alert: &Evidence, events: &[Event]) -> SuspectedCause {
    let lo = alert.onset_ms.saturating_sub(LOOKBACK_MS);
    let hi = alert.onset_ms + SLACK_MS;
    let window: Vec<&Event> = events
        .iter()
        .filter(|e| e.ts_ms >= lo && e.ts_ms <= hi)
        .collect();

    // (affinity, rank, -ts): lower is more suspect.
    let mut best_change: Option<(u8, u8, u64, &Event, &Change)> = None;
    for e in &window {
        // A rollback undoes a change: an alert whose onset precedes it (a window still
        // holding the bad split) is the rolled-back change's, not the rollback's.
        let rolled_back_after =
            matches!(e.kind, EventKind::ConfigRolledBack { .. }) && e.ts_ms > alert.onset_ms;
        if let (
            EventKind::ConfigApplied { changes, .. } | EventKind::ConfigRolledBack { changes, .. },
            false,
        ) = (&e.kind, rolled_back_after)
        {
            for c in changes {
                let affinity = if c.pool != alert.pool {
                    2
                } else if c.backend.as_deref() == Some(alert.backend.as_str()) {
                    0
                } else {
                    1
                };
                let key = (affinity, c.rank, u64::MAX - e.ts_ms);
                if best_change.is_none_or(|(a, r, t, _, _)| key < (a, r, t)) {
                    best_change = Some((key.0, key.1, key.2, e, c));
                }
            }
        }
    }
    let health = window
        .iter()
        .filter(|e| is_health(&e.kind) && e.kind.pool() == Some(alert.pool.as_str()))
        .max_by_key(|e| e.ts_ms)
        .copied();

    let lead = lead(alert);
    let config_cause = |e: &Event, c: &Change| SuspectedCause {
        class: Cause::Config,
        generation: Some(e.generation),
        change: Some(c.clone()),
        at_ms: Some(e.ts_ms),
        sentence: format!(
            "{lead}; likely cause: config generation {} ({} at {}), which {}",
            e.generation,
            source_word(&e.kind),
            clock(e.ts_ms),
            c.describe()
        ),
    };
    let health_cause = |e: &Event| SuspectedCause {
        class: Cause::Health,
        generation: None,
        change: None,
        at_ms: Some(e.ts_ms),
        sentence: format!("{lead}; likely cause: health, {}", health_clause(e)),
    };
    let near = best_change.filter(|b| b.0 <= 1);
    if let (Cause::Health, Some(h)) = (alert.cause, health) {
        return health_cause(h);
    }
    match alert.cause {
        Cause::KeyDistribution => {
            let why = alert.detail.clone().unwrap_or_else(|| "hot or missing keys".into());
            let mut sentence = format!("{lead}; likely cause: the key distribution ({why})");
            if let Some((_, _, _, e, c)) = near.filter(|b| b.1 == 1) {
                sentence.push_str(&format!(
                    "; config generation {} at {} {}",
                    e.generation,
                    clock(e.ts_ms),
                    c.describe()
                ));
            }
            SuspectedCause {
                class: Cause::KeyDistribution,
                generation: None,
                change: None,
                at_ms: None,
                sentence,
            }
        }
        _ => match (near, health) {
            (Some((_, _, _, e, c)), _) => config_cause(e, c),
            (None, Some(h)) => health_cause(h),
            (None, None) => match best_change {
                Some((_, _, _, e, c)) => config_cause(e, c),
                None => SuspectedCause {
                    class: if alert.cause == Cause::Health {
                        Cause::Health
                    } else {
                        Cause::Unknown
                    },
                    generation: None,
                    change: None,
                    at_ms: None,
                    sentence: format!(
                        "{lead}; no config or health change was journaled in the {} minutes before; cause unknown",
                        LOOKBACK_MS / 60_000
                    ),
                },
            },
        },
    }
}

/// The alert in words: "backend-2 is taking 3.1x its share since 14:29:40".
pub(super) fn lead(a: &Evidence) -> String {
    let since = clock(a.onset_ms);
    match a.kind {
        AlertKind::OverShare | AlertKind::UnderShare => format!(
            "{} is taking {:.1}x its share since {since}",
            a.backend, a.ratio
        ),
        AlertKind::Errors => format!(
            "{} has returned {:.1}% errors (the others {:.1}%) since {since}",
            a.backend,
            a.observed * 100.0,
            a.expected * 100.0
        ),
        AlertKind::Latency => format!(
            "{} has been {:.1}x slower than the pool's median ({:.0} ms vs {:.0} ms) since {since}",
            a.backend, a.ratio, a.observed, a.expected
        ),
    }
}

fn is_health(k: &EventKind) -> bool {
    matches!(
        k,
        EventKind::HealthTransition { .. }
            | EventKind::Ejected { .. }
            | EventKind::Returned { .. }
            | EventKind::PanicMode { .. }
    )
}

fn source_word(k: &EventKind) -> &'static str {
    match k {
        EventKind::ConfigRolledBack { .. } => "rollback",
        EventKind::ConfigApplied {
            source: ConfigSource::Startup,
            ..
        } => "startup",
        _ => "reload",
    }
}

pub(super) fn health_clause(e: &Event) -> String {
    let at = clock(e.ts_ms);
    match &e.kind {
        EventKind::HealthTransition {
            backend,
            healthy,
            reason,
            ..
        } => format!(
            "{backend} became {} at {at} ({reason})",
            if *healthy { "healthy" } else { "unhealthy" }
        ),
        EventKind::Ejected {
            backend, reason, ..
        } => format!("{backend} was ejected at {at} ({reason})"),
        EventKind::Returned { backend, .. } => format!("{backend} returned at {at}"),
        EventKind::PanicMode { pool, entered } => format!(
            "pool {pool} {} panic mode at {at}",
            if *entered { "entered" } else { "left" }
        ),
        _ => format!("an event at {at}"),
    }
}
