//! Attribution: which journaled event most likely caused an alert, in one sentence that
//! the log, the API, the timeline and the post-mortem all show.
//!
//! Candidates are the events in the [`LOOKBACK_MS`] before the alert's estimated onset
//! (plus a little slack, as the onset is an estimate). What counts depends on the signal:
//!
//! - **Share alerts**: a config change touching the alerting backend, or its pool, ranks
//!   first (weights, policy and hash key before health settings before membership, then
//!   latest first); a health transition or ejection of the backend itself that came after
//!   that change is nearer the onset and wins. Skew against the configured weights only
//!   (cause `health`) is the pool's health events', or else a backend's still out of
//!   rotation, however long ago it went. Skew against the eligible set or the baseline
//!   goes to another backend's health event only when it began with it (within
//!   [`HEALTH_NEAR_MS`] after it): those expectations follow the backends in rotation,
//!   so a later skew is not the outage's. When the detector saw the hash keys
//!   explain the skew, a weight, policy or hashing change in the [`JUST_BEFORE_MS`]
//!   before the onset still outranks them: a reload that moves traffic moves it first.
//! - **Latency and error alerts** are blamed only on a change to that backend or on a
//!   pool-wide change that can plausibly cause them (policy, hashing, health, timeouts or
//!   retries, a backend removed) and that came at most `POOL_WIDE_NEAR_MS` (5 s) before the
//!   onset. Otherwise the sentence says what is known: no change
//!   explains it, the backend itself is slower or failing, and its health events if any.
//!
//! A weight change that ends a run of weight changes to the same backend (each within
//! [`SERIES_GAP_MS`] of the next, each starting where the last ended, all in one
//! direction) is named as the
//! series: "b2's weight went from 10 to 19 over 9 reloads since 17:04:00".

use super::time::clock;
use super::{ConfigSource, Event, EventKind};
use crate::alert::{AlertKind, Cause, Change, ChangeKind, Evidence, SuspectedCause};
use outage::{out_cause, still_out};
use outlier::outlier_cause;
use series::series;

mod outage;
mod outlier;
mod series;

/// How far before the onset a change is still a suspect.
pub const LOOKBACK_MS: u64 = 5 * 60 * 1000;
/// A traffic-moving change this close before the onset outranks the key distribution.
pub const JUST_BEFORE_MS: u64 = 60_000;
/// Weight changes to one backend this close together form a series.
pub const SERIES_GAP_MS: u64 = 15 * 60 * 1000;
/// Another backend's health event at most this long before a share alert's onset (not
/// against the configured weights) may be its cause: the onset is dated by the CUSUM's
/// last zero or, at a low rate, by a window of up to 30 ticks that began to show it.
pub const HEALTH_NEAR_MS: u64 = 30_000;
/// The onset is an estimate to about a tick or two; a change journaled just after it
/// still counts.
const SLACK_MS: u64 = 5_000;

impl SuspectedCause {
    fn new(alert: &Evidence, class: Cause, clause: String) -> Self {
        Self {
            class,
            generation: None,
            change: None,
            at_ms: None,
            backend: None,
            sentence: format!("{}; {clause}", lead(alert)),
            clause,
            series: None,
        }
    }
}

/// The most likely cause of `alert` among `events` (any order; events outside the
/// lookback window are ignored, except the earlier steps of a series).
pub fn attribute(alert: &Evidence, events: &[Event]) -> SuspectedCause {
    let lo = alert.onset_ms.saturating_sub(LOOKBACK_MS);
    let hi = alert.onset_ms + SLACK_MS;
    let window: Vec<&Event> = events
        .iter()
        .filter(|e| e.ts_ms >= lo && e.ts_ms <= hi)
        .collect();
    match alert.kind {
        AlertKind::Latency | AlertKind::Errors => outlier_cause(alert, &window, events),
        AlertKind::OverShare | AlertKind::UnderShare => share_cause(alert, &window, events),
    }
}

/// The cause the alert was reported with: the sentence journaled with it (the binary
/// appends it to the evidence's detail) when there is one, so the timeline and the
/// post-mortem say what the log and the API said; else attributed from `events`.
pub fn cause_of(alert: &Evidence, events: &[Event]) -> SuspectedCause {
    let before: Vec<Event> = events
        .iter()
        .filter(|e| e.ts_ms <= alert.at_ms)
        .cloned()
        .collect();
    let mut cause = attribute(alert, &before);
    let lead = lead(alert);
    if let Some(p) = alert.detail.as_deref().and_then(|d| d.find(&lead)) {
        let said = &alert.detail.as_deref().unwrap_or_default()[p..];
        if said != cause.sentence {
            cause.sentence = said.to_string();
            cause.clause = said[lead.len()..].trim_start_matches("; ").to_string();
        }
    }
    cause
}

/// The detector's own detail, without a sentence the binary appended to it.
fn own_detail(alert: &Evidence) -> Option<&str> {
    let d = alert.detail.as_deref()?;
    let own = match d.find(&lead(alert)) {
        Some(p) => d[..p].trim_end_matches("; ").trim(),
        None => d,
    };
    (!own.is_empty()).then_some(own)
}

/// (affinity, rank, newest first): lower is more suspect.
type Key = (u8, u8, u64);

fn best_change<'a>(
    window: &[&'a Event],
    onset_ms: u64,
    affinity: impl Fn(&Event, &Change) -> Option<u8>,
) -> Option<(Key, &'a Event, &'a Change)> {
    let mut best: Option<(Key, &Event, &Change)> = None;
    for e in window {
        // A rollback undoes a change: an alert whose onset precedes it (a window still
        // holding the bad split) is the rolled-back change's, not the rollback's.
        let changes = match &e.kind {
            EventKind::ConfigApplied { changes, .. } => changes,
            EventKind::ConfigRolledBack { changes, .. } if e.ts_ms <= onset_ms => changes,
            _ => continue,
        };
        {
            // A rename moves no traffic: the backend keeps its address and its state.
            let moving = changes
                .iter()
                .filter(|c| !matches!(c.kind, ChangeKind::BackendRenamed { .. }));
            for c in moving {
                let Some(a) = affinity(e, c) else { continue };
                let key = (a, c.rank, u64::MAX - e.ts_ms);
                if best.is_none_or(|(k, _, _)| key < k) {
                    best = Some((key, e, c));
                }
            }
        }
    }
    best
}

fn share_cause(alert: &Evidence, window: &[&Event], all: &[Event]) -> SuspectedCause {
    let best = best_change(window, alert.onset_ms, |_, c| {
        Some(if c.pool != alert.pool {
            2
        } else if c.backend.as_deref() == Some(alert.backend.as_str()) {
            0
        } else {
            1
        })
    });
    let near = best.filter(|b| b.0 .0 <= 1);
    let pool_health = latest(window, |e| {
        is_health(&e.kind) && e.kind.pool() == Some(alert.pool.as_str())
    });
    let own_health = latest(window, |e| on_backend(e, alert));
    if alert.cause == Cause::Health {
        // A backend out for longer than the lookback still moves the others' shares.
        let out = match pool_health {
            Some(h) => Some(health_cause(alert, h)),
            None => still_out(alert, all).map(|(h, now)| out_cause(alert, h, now)),
        };
        return match (out, near) {
            (Some(c), _) => c,
            (None, Some((k, e, c))) if k.1 == 2 => config_cause(alert, e, c, all),
            _ => SuspectedCause::new(
                alert,
                Cause::Health,
                "likely cause: health (traffic follows the eligible backends, not the configured weights), though no health transition or ejection was journaled".into(),
            ),
        };
    }
    if alert.cause == Cause::KeyDistribution {
        return key_cause(alert, near, all);
    }
    // Another backend's health event explains a skew against the eligible set (or the
    // baseline over the backends in rotation) only when the skew began with it: those
    // expectations already follow who is in rotation, so a skew that began later, with
    // the backend still out, is not the outage's doing.
    let pool_health = pool_health.filter(|h| h.ts_ms + HEALTH_NEAR_MS >= alert.onset_ms);
    match (near, own_health) {
        (Some((_, e, _)), Some(h)) if h.ts_ms > e.ts_ms => health_cause(alert, h),
        (Some((_, e, c)), _) => config_cause(alert, e, c, all),
        (None, Some(h)) => health_cause(alert, h),
        (None, None) => match (pool_health, best) {
            (Some(h), _) => health_cause(alert, h),
            (None, Some((_, e, c))) => config_cause(alert, e, c, all),
            (None, None) => SuspectedCause::new(
                alert,
                Cause::Unknown,
                format!(
                    "no config or health change was journaled in the {} minutes before; cause unknown",
                    LOOKBACK_MS / 60_000
                ),
            ),
        },
    }
}

fn key_cause(
    alert: &Evidence,
    near: Option<(Key, &Event, &Change)>,
    all: &[Event],
) -> SuspectedCause {
    let why = own_detail(alert).unwrap_or("hot or missing keys");
    let moves = near.filter(|(k, _, _)| k.1 == 1);
    if let Some((_, e, c)) = moves {
        if e.ts_ms + JUST_BEFORE_MS >= alert.onset_ms {
            let mut cause = config_cause(alert, e, c, all);
            cause
                .clause
                .push_str(&format!("; the hash keys also show: {why}"));
            cause.sentence = format!("{}; {}", lead(alert), cause.clause);
            return cause;
        }
    }
    let mut clause = format!("likely cause: the key distribution ({why})");
    if let Some((_, e, c)) = moves {
        clause.push_str(&format!("; {}", change_at(e, c)));
    }
    SuspectedCause::new(alert, Cause::KeyDistribution, clause)
}

/// A change and when: "config generation 4 at 14:29:31 changed b2's weight from 1 to 10".
fn change_at(e: &Event, c: &Change) -> String {
    format!(
        "config generation {} at {} {}",
        e.generation,
        clock(e.ts_ms),
        c.describe()
    )
}

fn latest<'a>(window: &[&'a Event], f: impl Fn(&Event) -> bool) -> Option<&'a Event> {
    window
        .iter()
        .filter(|e| f(e))
        .max_by_key(|e| e.ts_ms)
        .copied()
}

fn on_backend(e: &Event, alert: &Evidence) -> bool {
    match &e.kind {
        EventKind::HealthTransition { pool, backend, .. }
        | EventKind::Ejected { pool, backend, .. }
        | EventKind::Returned { pool, backend } => *pool == alert.pool && *backend == alert.backend,
        _ => false,
    }
}

fn health_cause(alert: &Evidence, h: &Event) -> SuspectedCause {
    let mut cause = SuspectedCause::new(
        alert,
        Cause::Health,
        format!("likely cause: health, {}", health_clause(h)),
    );
    cause.at_ms = Some(h.ts_ms);
    cause.backend = match &h.kind {
        EventKind::HealthTransition { backend, .. }
        | EventKind::Ejected { backend, .. }
        | EventKind::Returned { backend, .. } => Some(backend.clone()),
        _ => None,
    };
    cause
}

fn config_cause(alert: &Evidence, e: &Event, c: &Change, all: &[Event]) -> SuspectedCause {
    let series = series(e, c, all);
    let clause = match &series {
        Some(s) => format!(
            "likely cause: {}'s weight went from {} to {} over {} reloads since {} (config generations {} to {}, the last at {})",
            s.backend,
            s.from,
            s.to,
            s.reloads,
            clock(s.since_ms),
            s.first_generation,
            s.last_generation,
            clock(e.ts_ms)
        ),
        None => format!(
            "likely cause: config generation {} ({} at {}), which {}",
            e.generation,
            source_word(&e.kind),
            clock(e.ts_ms),
            c.describe()
        ),
    };
    let mut cause = SuspectedCause::new(alert, Cause::Config, clause);
    cause.generation = Some(e.generation);
    cause.change = Some(c.clone());
    cause.at_ms = Some(e.ts_ms);
    cause.backend = c.backend.clone();
    cause.series = series;
    cause
}

/// The alert in words: "backend-2 is taking 3.1x its share since 14:29:40".
pub(super) fn lead(a: &Evidence) -> String {
    let since = clock(a.onset_ms);
    match a.kind {
        AlertKind::OverShare | AlertKind::UnderShare => format!(
            "{} is taking {:.1}x its share since {since}",
            a.backend, a.ratio
        ),
        AlertKind::Errors => {
            // Failed tries are the backend's; whether clients saw them depends on retries.
            let failed = (a.observed * a.requests as f64).round() as u64;
            let seen = match a.client_errors {
                None => String::new(),
                Some(0) => ", each retried on another backend: clients saw no error from it".into(),
                Some(n) if n >= failed => ", every one reaching clients as an error".into(),
                Some(n) => format!(", and {n} of them reached clients as errors"),
            };
            format!(
                "{} failed {:.1}% of its tries (the others {:.1}%) since {since}{seen}",
                a.backend,
                a.observed * 100.0,
                a.expected * 100.0
            )
        }
        AlertKind::Latency => format!(
            "{}'s p99 latency has been {:.1}x the other backends' ({:.0} ms vs {:.0} ms) since {since}",
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
