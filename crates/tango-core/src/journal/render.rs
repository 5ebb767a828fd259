//! Text for people: one line per journal event, and the timeline (`tango timeline`)
//! from journal events the caller has read. The post-mortem is in `postmortem.rs`.

use super::attribute::{cause_of, health_clause};
use super::time::{date_time, human_duration};
use super::{Event, EventKind};
use crate::alert::{AlertKind, Evidence};
use std::fmt::Write as _;

pub(super) fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub(super) fn alert_figures(ev: &Evidence) -> String {
    match ev.kind {
        AlertKind::OverShare | AlertKind::UnderShare => format!(
            "share {} vs expected {} ({:.1}x, z {:.1}, over {} s, {} requests)",
            percent(ev.observed),
            percent(ev.expected),
            ev.ratio,
            ev.z,
            ev.window_ms / 1000,
            ev.requests
        ),
        AlertKind::Errors => format!(
            "error rate {} vs {} on the others",
            percent(ev.observed),
            percent(ev.expected)
        ),
        AlertKind::Latency => format!(
            "latency {:.0} ms vs {:.0} ms median of the others",
            ev.observed, ev.expected
        ),
    }
}

/// A signal of an incident in a few words: "b1 under_share 0.4x".
pub(super) fn signal_line(ev: &Evidence) -> String {
    format!("{} {} {:.1}x", ev.backend, ev.kind.as_str(), ev.ratio)
}

/// One event in a line (config changes and incidents add indented lines).
pub fn describe(e: &Event) -> String {
    config_line(e)
        .or_else(|| canary_line(e))
        .or_else(|| incident_line(e))
        .unwrap_or_else(|| other_line(e))
}

/// A configuration event: applied (with its changes), rolled back, its canary passed,
/// rejected.
fn config_line(e: &Event) -> Option<String> {
    Some(match &e.kind {
        EventKind::ConfigApplied {
            content_hash,
            source,
            changes,
            findings,
            overrides,
            ..
        } => {
            let hash: String = content_hash.chars().take(12).collect();
            let mut s = format!(
                "config generation {} applied ({}, {hash}): {} change(s)",
                e.generation,
                source.as_str(),
                changes.len()
            );
            let new = findings.iter().filter(|f| f.new).count();
            if new > 0 {
                let _ = write!(s, ", {new} new checklist finding(s)");
            }
            if !overrides.is_empty() {
                let _ = write!(s, "; {}", overrides.join("; "));
            }
            for c in changes {
                let _ = write!(s, "\n    - {}", c.describe());
            }
            s
        }
        EventKind::ConfigRolledBack {
            from_generation,
            to_generation,
            evidence,
            ..
        } => format!(
            "config generation {from_generation} rolled back to generation {to_generation} (now generation {}){}",
            e.generation,
            evidence
                .first()
                .map(|ev| format!(
                    " after {} on {}/{}",
                    ev.kind.as_str(),
                    ev.pool,
                    ev.backend
                ))
                .unwrap_or_default()
        ),
        EventKind::CanaryPassed { pools, window_ms } => format!(
            "config generation {} passed its {} s canary (pools {})",
            e.generation,
            window_ms / 1000,
            pools.join(", ")
        ),
        EventKind::ConfigRejected { source, errors, .. } => format!(
            "config rejected ({}): {} error(s){}",
            source.as_str(),
            errors.len(),
            errors
                .first()
                .map(|f| format!(", first: {f}"))
                .unwrap_or_default()
        ),
        _ => return None,
    })
}

/// A canary extended or ended unjudged, or a rollback that failed.
fn canary_line(e: &Event) -> Option<String> {
    Some(match &e.kind {
        EventKind::CanaryExtended {
            traffic, until_ms, ..
        } => format!(
            "config generation {}'s canary extended until {}: too few requests to judge yet ({})",
            e.generation,
            super::time::clock(*until_ms),
            traffic_list(traffic)
        ),
        EventKind::CanaryEnded { reason, .. } => format!(
            "config generation {}'s canary ended without judging it: {reason}",
            e.generation
        ),
        EventKind::ConfigRollbackFailed {
            from_generation,
            to_generation,
            reason,
            attempts,
            retrying,
            ..
        } => format!(
            "ROLLBACK FAILED: config generation {from_generation} could not be rolled back to generation {to_generation} (attempt {attempts}): {reason}{}",
            if *retrying { "; retrying" } else { "; given up" }
        ),
        _ => return None,
    })
}

fn traffic_list(traffic: &[super::CanaryTraffic]) -> String {
    traffic
        .iter()
        .map(super::CanaryTraffic::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An incident opened (its other signals indented), updated (its active signals) or
/// resolved.
fn incident_line(e: &Event) -> Option<String> {
    Some(match &e.kind {
        EventKind::IncidentOpened { incident: i } => {
            let mut s = format!("INCIDENT {} opened: {}", i.id, i.cause.sentence);
            for sig in i.signals.iter().skip(1) {
                let _ = write!(s, "\n    - also: {}", signal_line(&sig.evidence));
            }
            s
        }
        EventKind::IncidentUpdated { incident: i } => {
            let active: Vec<String> = i
                .signals
                .iter()
                .filter(|s| s.active)
                .map(|s| signal_line(&s.evidence))
                .collect();
            let mut s = format!(
                "INCIDENT {} updated: {} signal(s) active",
                i.id,
                active.len()
            );
            if !i.down.is_empty() {
                let _ = write!(s, "; down: {}", i.down.join(", "));
            }
            for a in active {
                let _ = write!(s, "\n    - {a}");
            }
            s
        }
        EventKind::IncidentResolved { incident: i } => format!(
            "INCIDENT {} resolved after {} (headline {})",
            i.id,
            human_duration(i.resolved_ms.unwrap_or(e.ts_ms).saturating_sub(i.onset_ms)),
            i.headline
        ),
        _ => return None,
    })
}

/// Alerts, traffic summaries, and a backend's health, ejection or the pool's panic mode.
fn other_line(e: &Event) -> String {
    match &e.kind {
        EventKind::AlertFired { evidence: ev } => format!(
            "ALERT {} {}/{}: {}; cause {}",
            ev.kind.as_str(),
            ev.pool,
            ev.backend,
            alert_figures(ev),
            ev.cause.as_str()
        ),
        EventKind::AlertResolved { evidence: ev } => {
            format!("resolved {} {}/{}", ev.kind.as_str(), ev.pool, ev.backend)
        }
        EventKind::Traffic { summary: t } => {
            let (requests, errors) = t
                .ticks
                .iter()
                .fold((0, 0), |a, [_, r, e]| (a.0 + r, a.1 + e));
            format!(
                "traffic {}: {requests} requests, {errors} failed, over {} s",
                t.pool,
                t.to_ms.saturating_sub(t.from_ms) / 1000
            )
        }
        _ => {
            let pool = e.kind.pool().unwrap_or("?");
            format!("{pool}: {}", health_clause(e))
        }
    }
}

/// One event in a line, as [`describe`] does, except that an alert states its cause as
/// the log and the API did ([`cause_of`]): the same sentence, from the same function.
pub fn describe_in(e: &Event, events: &[Event]) -> String {
    match &e.kind {
        EventKind::AlertFired { evidence: ev } => format!(
            "ALERT {} {}/{}: {}; {}",
            ev.kind.as_str(),
            ev.pool,
            ev.backend,
            alert_figures(ev),
            cause_of(ev, events).clause
        ),
        _ => describe(e),
    }
}

/// Whether a timeline shows `e`: traffic summaries are data, not events; once the
/// journal has incidents, each alert is evidence inside one and the incident's lines
/// tell it (one event, one entry).
pub(super) fn shown(e: &Event, incidents: bool) -> bool {
    match &e.kind {
        EventKind::Traffic { .. } => false,
        EventKind::AlertFired { .. } | EventKind::AlertResolved { .. } => !incidents,
        _ => true,
    }
}

/// Whether `events` hold incidents (journals written before incidents hold alerts only).
pub(super) fn has_incidents(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::IncidentOpened { .. }
                | EventKind::IncidentUpdated { .. }
                | EventKind::IncidentResolved { .. }
        )
    })
}

/// Every event, oldest first, one per line.
pub fn render_timeline(events: &[Event]) -> String {
    let incidents = has_incidents(events);
    let mut sorted: Vec<&Event> = events.iter().filter(|e| shown(e, incidents)).collect();
    sorted.sort_by_key(|e| e.ts_ms);
    let mut out = String::new();
    for e in sorted {
        let _ = writeln!(
            out,
            "{}  gen {:<4} {}",
            date_time(e.ts_ms),
            e.generation,
            describe_in(e, events)
        );
    }
    out
}
