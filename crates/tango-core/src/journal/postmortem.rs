//! The post-mortem draft (`tango postmortem`): Markdown with an Issue Summary (the
//! incident's window and its impact), a Timeline, the Root Cause, the Resolution and the
//! Corrective measures, from journal events alone, so the draft reads the same whether
//! the events came from a running instance or from the journal file.
//!
//! The subject is an incident (the first opened in the period, or the one asked for);
//! journals written before incidents existed fall back to the strongest share alert
//! among those that fired together first. The impact covers the incident's window only
//! (its onset to its resolution) and comes from the journaled traffic summaries.

use super::attribute::{cause_of, health_clause, lead};
use super::markdown::{code_block, inline};
use super::render::{alert_figures, describe_in, has_incidents, percent, shown, signal_line};
use super::time::{clock, date_time, human_duration};
use super::traffic::{impact, Impact, TrafficSummary, NORMAL_MS};
use super::{Event, EventKind};
use crate::alert::{AlertKind, Evidence, Incident};
use std::fmt::Write as _;

/// What the post-mortem needs besides the journal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostmortemInput {
    /// The period whose events the timeline shows (and where the incident is looked for).
    pub from_ms: u64,
    /// Its end.
    pub to_ms: u64,
    /// The incident to write about (its id); default: the first opened in the period.
    pub incident: Option<String>,
    /// Corrective measures, e.g. the lint findings on the configuration involved.
    pub corrective: Vec<String>,
}

/// What the draft is about.
struct Subject {
    id: Option<String>,
    pool: String,
    headline: String,
    kind: AlertKind,
    onset_ms: u64,
    resolved_ms: Option<u64>,
    /// The alert in words, and its cause as the log said it.
    lead: String,
    sentence: String,
    /// The incident's other signals, in a few words.
    others: Vec<String>,
    /// The backends it is about: the headline and every signal's.
    backends: Vec<String>,
    /// The journal no longer has the incident's opening (rotated away).
    opening_lost: bool,
}

/// Alerts firing this close to the first one belong to the same start of an incident
/// (journals without incidents).
const INCIDENT_START_MS: u64 = 10_000;

/// The latest journaled state of each incident opened in the period (or the one asked
/// for): the first such incident, with its resolution if journaled. An incident whose
/// opening the journal rotated away is found by its later events, which carry it whole.
fn incident_subject(sorted: &[&Event], input: &PostmortemInput) -> Option<Subject> {
    let wanted = |incident: &Incident, at: u64| match &input.incident {
        Some(id) => *id == incident.id,
        None => at >= input.from_ms && at <= input.to_ms,
    };
    let opened = sorted.iter().find_map(|e| match &e.kind {
        EventKind::IncidentOpened { incident } => wanted(incident, e.ts_ms).then_some(incident),
        _ => None,
    });
    let opening_lost = opened.is_none();
    let opened = match opened {
        Some(i) => i,
        None => sorted
            .iter()
            .filter_map(|e| e.kind.incident())
            .find(|i| wanted(i, i.opened_ms))?,
    };
    let mut last: &Incident = opened;
    let mut resolved_ms = None;
    for e in sorted {
        match &e.kind {
            EventKind::IncidentUpdated { incident } if incident.id == opened.id => last = incident,
            EventKind::IncidentResolved { incident } if incident.id == opened.id => {
                last = incident;
                resolved_ms = incident.resolved_ms.or(Some(e.ts_ms));
            }
            _ => {}
        }
    }
    let head = last.signals.first().map(|s| &s.evidence);
    let mut backends = vec![last.headline.clone()];
    for s in &last.signals {
        if !backends.contains(&s.evidence.backend) {
            backends.push(s.evidence.backend.clone());
        }
    }
    Some(Subject {
        id: Some(last.id.clone()),
        pool: last.pool.clone(),
        headline: last.headline.clone(),
        kind: last.kind,
        onset_ms: last.onset_ms,
        resolved_ms,
        lead: head.map(lead).unwrap_or_default(),
        sentence: last.cause.sentence.clone(),
        others: last
            .signals
            .iter()
            .skip(1)
            .map(|s| signal_line(&s.evidence))
            .collect(),
        backends,
        opening_lost,
    })
}

/// Journals without incidents: the strongest share alert among those that fired
/// together first in the period, else the first alert of any kind.
fn alert_subject(sorted: &[&Event], events: &[Event], input: &PostmortemInput) -> Option<Subject> {
    let fired = |share_only: bool| {
        let all: Vec<&Evidence> = sorted
            .iter()
            .filter(|e| e.ts_ms >= input.from_ms && e.ts_ms <= input.to_ms)
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
    let alert = fired(true).or_else(|| fired(false))?;
    let same =
        |a: &Evidence| a.pool == alert.pool && a.backend == alert.backend && a.kind == alert.kind;
    let resolved_ms = sorted.iter().find_map(|e| match &e.kind {
        EventKind::AlertResolved { evidence } if same(evidence) && e.ts_ms >= alert.at_ms => {
            Some(e.ts_ms)
        }
        _ => None,
    });
    Some(Subject {
        id: None,
        pool: alert.pool.clone(),
        headline: alert.backend.clone(),
        kind: alert.kind,
        onset_ms: alert.onset_ms,
        resolved_ms,
        lead: lead(alert),
        // Only what was known when the alert fired can have caused it, and the cause
        // reads as it did then.
        sentence: cause_of(alert, events).sentence,
        others: vec![alert_figures(alert)],
        backends: vec![alert.backend.clone()],
        opening_lost: false,
    })
}

/// Whether the journal has an incident of this id, opened or only updated or resolved
/// (its opening rotated away): the draft is about it only then.
pub fn has_incident(events: &[Event], id: &str) -> bool {
    events
        .iter()
        .filter_map(|e| e.kind.incident())
        .any(|i| i.id == id)
}

/// A Markdown post-mortem draft; see the module documentation.
pub fn render_postmortem(events: &[Event], input: &PostmortemInput) -> String {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.ts_ms);
    let incidents = has_incidents(events);
    let in_range: Vec<&Event> = sorted
        .iter()
        .copied()
        .filter(|e| e.ts_ms >= input.from_ms && e.ts_ms <= input.to_ms && shown(e, incidents))
        .collect();
    let mut out = String::new();
    // An incident asked for by id is the subject or there is none: a draft about some
    // other alert of the period, under a misspelt id, would read as that incident's.
    let subject = match &input.incident {
        Some(_) => incident_subject(&sorted, input),
        None => incident_subject(&sorted, input).or_else(|| alert_subject(&sorted, events, input)),
    };
    if let (None, Some(id)) = (&subject, &input.incident) {
        let _ = writeln!(
            out,
            "# Post-mortem draft\n\nNo incident {} in the journal (`tango timeline` lists \
             the incidents with their ids).\n\n## Timeline\n",
            inline(id)
        );
        push_timeline(&mut out, &in_range, events);
        return out;
    }
    let Some(s) = subject else {
        let _ = writeln!(
            out,
            "# Post-mortem draft\n\nNo incident or alert between {} and {}.\n\n## Timeline\n",
            date_time(input.from_ms),
            date_time(input.to_ms)
        );
        push_timeline(&mut out, &in_range, events);
        push_corrective(&mut out, input);
        return out;
    };
    let end = s.resolved_ms.unwrap_or(input.to_ms.max(s.onset_ms));
    let summaries: Vec<&TrafficSummary> = sorted
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Traffic { summary } => Some(summary),
            _ => None,
        })
        .collect();
    let suspects: Vec<&str> = s.backends.iter().map(String::as_str).collect();
    let cost = impact(&summaries, &s.pool, s.onset_ms, end, &suspects);
    let _ = writeln!(
        out,
        "# Post-mortem draft: {} {} in pool {}\n",
        inline(&s.headline),
        s.kind.as_str().replace('_', "-"),
        inline(&s.pool)
    );
    push_summary(&mut out, &s, end);
    push_impact(&mut out, &cost, &s.pool);
    let _ = writeln!(out, "## Timeline\n");
    push_timeline(&mut out, &in_range, events);
    let _ = writeln!(out, "\n## Root Cause\n\n{}\n", inline(&s.sentence));
    let _ = writeln!(out, "## Resolution\n");
    push_resolution(&mut out, &s, &sorted);
    push_corrective(&mut out, input);
    out
}

/// The Issue Summary: the incident's window, its one line, its other signals, and
/// whether the journal still has its opening.
fn push_summary(out: &mut String, s: &Subject, end: u64) {
    let _ = writeln!(out, "## Issue Summary\n");
    let _ = writeln!(
        out,
        "From {} to {} ({}{}): {}.{}\n",
        date_time(s.onset_ms),
        date_time(end),
        human_duration(end.saturating_sub(s.onset_ms)),
        if s.resolved_ms.is_none() {
            ", still open at the end of the period"
        } else {
            ""
        },
        inline(&s.lead),
        match &s.id {
            Some(id) => format!(" Incident {}.", inline(id)),
            None => String::new(),
        }
    );
    if !s.others.is_empty() {
        let _ = writeln!(out, "Also in it: {}.\n", inline(&s.others.join(", ")));
    }
    if s.opening_lost {
        let _ = writeln!(
            out,
            "The journal no longer has this incident's opening (rotated away: \
             `admin.journal_max_bytes`); this draft is from its later events.\n"
        );
    }
}

/// The impact over the incident's window, as a list a reader (or a test) can take apart.
fn push_impact(out: &mut String, c: &Impact, pool: &str) {
    let _ = writeln!(
        out,
        "Impact over the incident's window only ({} to {}):\n",
        clock(c.from_ms),
        clock(c.to_ms)
    );
    if c.requests == 0 && c.backends.is_empty() {
        let _ = writeln!(
            out,
            "- No traffic summary in the journal covers the window: the impact is unknown.\n"
        );
        return;
    }
    let rate = |n: u64| match c.requests {
        0 => percent(0.0),
        r => percent(n as f64 / r as f64),
    };
    let _ = writeln!(
        out,
        "- Requests answered to pool {}'s clients: {}",
        inline(pool),
        c.requests
    );
    let _ = writeln!(out, "- Requests affected: {}", c.affected());
    let _ = writeln!(
        out,
        "  - failed as clients saw them: {} ({})",
        c.errors,
        rate(c.errors)
    );
    push_slow(out, c, &rate);
    let _ = writeln!(
        out,
        "- Failed tries retried on another backend, unseen by clients: {}",
        c.absorbed
    );
    for b in c.backends.iter().filter(|b| b.failed_tries > 0) {
        let _ = writeln!(
            out,
            "- {}: {} tries, {} failed, {} reached clients as failures",
            inline(&b.name),
            b.tries,
            b.failed_tries,
            b.client_errors
        );
    }
    if !c.covered {
        let _ = writeln!(
            out,
            "- The journal's traffic summaries cover only part of the window: the counts are a lower bound."
        );
    }
    out.push('\n');
}

/// The answers slower than normal, or why the normal is unknown.
fn push_slow(out: &mut String, c: &Impact, rate: &dyn Fn(u64) -> String) {
    let minutes = NORMAL_MS / 60_000;
    // Traffic in which the incident's backend was already degraded is not "normal";
    // the reader is told it was left out, or that nothing else was left.
    let degraded = inline(&c.degraded_before.join(", "));
    let left_out = human_duration(c.degraded_ms);
    match (c.normal_p99_ms, c.slow) {
        (Some(p99), Some(slow)) if c.degraded_before.is_empty() => {
            let _ = writeln!(
                out,
                "  - answered slower than the pool's normal p99 ({p99} ms over the {minutes} minutes before the onset): {slow} ({})",
                rate(slow)
            );
        }
        (Some(p99), Some(slow)) => {
            let _ = writeln!(
                out,
                "  - answered slower than the pool's normal p99 ({p99} ms over the {minutes} minutes before the onset, leaving out {left_out} in which {degraded} already answered slower than the other backends): {slow} ({})",
                rate(slow)
            );
        }
        _ if !c.degraded_before.is_empty() => {
            let _ = writeln!(
                out,
                "  - answered slower than normal: unknown ({degraded} already answered slower than the other backends in the traffic journaled before the onset, so it shows the incident, not the pool's normal p99)"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  - answered slower than normal: unknown (too little traffic journaled in the {minutes} minutes before the onset to know the pool's normal p99)"
            );
        }
    }
}

/// One list item per event; a config change's changes and an incident's signals as a
/// nested list, and anything else on further lines (a rejected file's rustc-style
/// report) as a code block inside the item.
fn push_timeline(out: &mut String, shown: &[&Event], events: &[Event]) {
    for e in shown {
        if let EventKind::ConfigRejected { errors, .. } = &e.kind {
            let head = describe_in(e, events);
            let head = head.split(", first:").next().unwrap_or_default();
            let _ = writeln!(out, "- `{}` {}", clock(e.ts_ms), inline(head));
            if !errors.is_empty() {
                out.push('\n');
                out.push_str(&code_block(&errors.join("\n"), "  "));
                out.push('\n');
            }
            continue;
        }
        let text = describe_in(e, events);
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(out, "- `{}` {}", clock(e.ts_ms), inline(first));
        let mut rest = Vec::new();
        for l in lines {
            match l.trim_start().strip_prefix("- ") {
                Some(item) if rest.is_empty() => {
                    let _ = writeln!(out, "  - {}", inline(item));
                }
                _ => rest.push(l),
            }
        }
        if !rest.is_empty() {
            out.push('\n');
            out.push_str(&code_block(&rest.join("\n"), "  "));
            out.push('\n');
        }
    }
}

fn push_resolution(out: &mut String, s: &Subject, sorted: &[&Event]) {
    let Some(t) = s.resolved_ms else {
        let _ = writeln!(out, "Not resolved within the period.\n");
        return;
    };
    let fix = sorted.iter().rev().find(|e| {
        e.ts_ms > s.onset_ms
            && e.ts_ms <= t
            && match &e.kind {
                EventKind::ConfigApplied { .. } | EventKind::ConfigRolledBack { .. } => true,
                EventKind::AlertFired { .. }
                | EventKind::AlertResolved { .. }
                | EventKind::IncidentOpened { .. }
                | EventKind::IncidentUpdated { .. }
                | EventKind::IncidentResolved { .. }
                | EventKind::Traffic { .. } => false,
                k => k.pool() == Some(s.pool.as_str()),
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
                    .find(|c| c.pool == s.pool)
                    .or(changes.first())
                    .map(|c| format!(", which {}", c.describe()))
                    .unwrap_or_default()
            ),
            _ => health_clause(e),
        },
        None => "no journaled change (it ended by itself)".into(),
    };
    let what_ended = if s.id.is_some() { "incident" } else { "alert" };
    let _ = writeln!(
        out,
        "Cleared by {}; the {what_ended} resolved at {}.\n",
        inline(&what),
        clock(t)
    );
}

fn push_corrective(out: &mut String, input: &PostmortemInput) {
    let _ = writeln!(out, "## Corrective measures\n");
    if input.corrective.is_empty() {
        let _ = writeln!(out, "- (none recorded)");
    }
    for c in &input.corrective {
        let mut lines = c.lines();
        let _ = writeln!(out, "- {}", inline(lines.next().unwrap_or_default()));
        let rest: Vec<&str> = lines.collect();
        if !rest.is_empty() {
            out.push('\n');
            out.push_str(&code_block(&rest.join("\n"), "  "));
            out.push('\n');
        }
    }
}
