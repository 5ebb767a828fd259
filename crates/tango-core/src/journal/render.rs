//! Text for people: the timeline (`tango timeline`) and the post-mortem draft
//! (`tango postmortem --from --to`), from journal events the caller has read.

use super::attribute::{cause_of, health_clause, lead};
use super::{Event, EventKind};
use crate::detector::{AlertKind, Evidence};
use std::fmt::Write as _;

/// "14:29:32" (UTC) from unix milliseconds.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// "2024-03-05 14:29:32Z" from unix milliseconds (humantime's RFC 3339, with a space
/// for the `T`). A time past the year 9999 (a mangled journal line) shows as the last
/// second humantime can write rather than failing.
pub fn date_time(ms: u64) -> String {
    const LAST_MS: u64 = 253_402_300_799_000; // 9999-12-31 23:59:59Z
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.min(LAST_MS));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn alert_figures(ev: &Evidence) -> String {
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
fn signal_line(ev: &Evidence) -> String {
    format!("{} {} {:.1}x", ev.backend, ev.kind.as_str(), ev.ratio)
}

/// One event in a line (config changes and incidents add indented lines).
pub fn describe(e: &Event) -> String {
    match &e.kind {
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

/// Every event, oldest first, one per line.
pub fn render_timeline(events: &[Event]) -> String {
    let mut sorted: Vec<&Event> = events.iter().collect();
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

/// What the post-mortem needs besides the journal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostmortemInput {
    pub from_ms: u64,
    pub to_ms: u64,
    /// Requests and failed requests in the period (from metrics), for the impact line.
    pub requests: u64,
    pub errors: u64,
    /// Corrective measures, e.g. the lint findings on the configuration involved.
    pub corrective: Vec<String>,
}

fn same_alert(a: &Evidence, b: &Evidence) -> bool {
    a.pool == b.pool && a.backend == b.backend && a.kind == b.kind
}

fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

/// A Markdown post-mortem draft for `[from, to]`: Issue Summary, Timeline, Root Cause,
/// Resolution, Corrective measures. The first share alert of the period (or else the
/// first alert) is the incident.
/// Alerts firing this close to the first one belong to the same start of an incident.
const INCIDENT_START_MS: u64 = 10_000;

pub fn render_postmortem(events: &[Event], input: &PostmortemInput) -> String {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.ts_ms);
    let in_range: Vec<&Event> = sorted
        .iter()
        .copied()
        .filter(|e| e.ts_ms >= input.from_ms && e.ts_ms <= input.to_ms)
        .collect();
    // The incident is the strongest share alert among those that fired together at
    // its start (one shift fires over-share on one backend and under-share on the
    // rest); failing share alerts, the first alert of any kind.
    let fired = |share_only: bool| {
        let all: Vec<&Evidence> = in_range
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::AlertFired { evidence }
                    if !share_only
                        || matches!(
                            evidence.kind,
                            AlertKind::OverShare | AlertKind::UnderShare
                        ) =>
                {
                    Some(evidence)
                }
                _ => None,
            })
            .collect();
        let first = all.first()?.at_ms;
        all.into_iter()
            .filter(|e| e.at_ms <= first + INCIDENT_START_MS)
            .max_by(|a, b| a.z.abs().total_cmp(&b.z.abs()))
    };
    let mut out = String::new();
    let Some(alert) = fired(true).or_else(|| fired(false)) else {
        let _ = writeln!(
            out,
            "# Post-mortem draft\n\nNo alert fired between {} and {}.\n\n## Timeline\n",
            date_time(input.from_ms),
            date_time(input.to_ms)
        );
        push_timeline(&mut out, &in_range, events);
        push_corrective(&mut out, input);
        return out;
    };
    let resolved_at = sorted.iter().find_map(|e| match &e.kind {
        EventKind::AlertResolved { evidence }
            if same_alert(evidence, alert) && e.ts_ms >= alert.at_ms =>
        {
            Some(e.ts_ms)
        }
        _ => None,
    });
    let end = resolved_at.unwrap_or(input.to_ms);
    // Only what was known when the alert fired can have caused it (cause_of looks no
    // further), and the cause reads as it did when the alert fired.
    let cause = cause_of(alert, events);
    let _ = writeln!(
        out,
        "# Post-mortem draft: {} {} in pool {}\n",
        alert.backend,
        alert.kind.as_str().replace('_', "-"),
        alert.pool
    );
    let _ = writeln!(out, "## Issue Summary\n");
    let _ = writeln!(
        out,
        "From {} to {} ({}{}): {}.",
        date_time(alert.onset_ms),
        date_time(end),
        human_duration(end.saturating_sub(alert.onset_ms)),
        if resolved_at.is_none() {
            ", still active at the end of the period"
        } else {
            ""
        },
        lead(alert)
    );
    let rate = if input.requests > 0 {
        input.errors as f64 / input.requests as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "Impact: {} requests in the period, {} of them failed ({}).\n",
        input.requests,
        input.errors,
        percent(rate)
    );
    let _ = writeln!(out, "## Timeline\n");
    push_timeline(&mut out, &in_range, events);
    let _ = writeln!(out, "\n## Root Cause\n\n{}\n", cause.sentence);
    let _ = writeln!(out, "## Resolution\n");
    match resolved_at {
        Some(t) => {
            let fix = sorted.iter().rev().find(|e| {
                e.ts_ms > alert.onset_ms
                    && e.ts_ms <= t
                    && match &e.kind {
                        EventKind::ConfigApplied { .. } | EventKind::ConfigRolledBack { .. } => {
                            true
                        }
                        EventKind::AlertFired { .. } | EventKind::AlertResolved { .. } => false,
                        k => k.pool() == Some(alert.pool.as_str()),
                    }
            });
            let what = match fix {
                Some(e) => match &e.kind {
                    EventKind::ConfigRolledBack { to_generation, .. } => format!(
                        "the automatic rollback to generation {to_generation} at {} (now generation {})",
                        clock(e.ts_ms),
                        e.generation
                    ),
                    EventKind::ConfigApplied { changes, .. } => format!(
                        "config generation {} at {}{}",
                        e.generation,
                        clock(e.ts_ms),
                        changes
                            .iter()
                            .find(|c| c.pool == alert.pool)
                            .or(changes.first())
                            .map(|c| format!(", which {}", c.describe()))
                            .unwrap_or_default()
                    ),
                    _ => health_clause(e),
                },
                None => "no journaled change (the traffic returned by itself)".into(),
            };
            let _ = writeln!(
                out,
                "Cleared by {what}; the alert resolved at {}.\n",
                clock(t)
            );
        }
        None => {
            let _ = writeln!(out, "Not resolved within the period.\n");
        }
    }
    push_corrective(&mut out, input);
    out
}

fn push_timeline(out: &mut String, shown: &[&Event], events: &[Event]) {
    for e in shown {
        let text = describe_in(e, events).replace("\n    ", "\n  ");
        let _ = writeln!(out, "- `{}` {}", clock(e.ts_ms), text);
    }
}

fn push_corrective(out: &mut String, input: &PostmortemInput) {
    let _ = writeln!(out, "## Corrective measures\n");
    if input.corrective.is_empty() {
        let _ = writeln!(out, "- (none recorded)");
    }
    for c in &input.corrective {
        let _ = writeln!(out, "- {c}");
    }
}
