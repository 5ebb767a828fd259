//! The post-mortem draft: its subject, its impact over the incident's window only, and
//! Markdown that stays Markdown whatever the journal's text holds.

use super::tests::{applied, evidence, incident, rolled_back, weight_change, T0};
use super::*;
use crate::detector::{
    AlertEvent, AlertKind, Basis, Cause, IncidentConfig, IncidentEvent, IncidentTracker,
};
use pulldown_cmark::{Event as Md, HeadingLevel, Options, Parser, Tag, TagEnd};

#[test]
fn the_postmortem_has_every_section_and_names_cause_and_fix() {
    let input = PostmortemInput {
        from_ms: T0 - 60_000,
        to_ms: T0 + 3_600_000,
        corrective: vec!["W001 weight outlier: backend-2 has 10x the median weight".into()],
        ..Default::default()
    };
    let md = render_postmortem(&incident(), &input);
    for section in [
        "## Issue Summary",
        "## Timeline",
        "## Root Cause",
        "## Resolution",
        "## Corrective measures",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    assert!(md.contains("(10m 04s)"), "{md}");
    // That journal holds no traffic summaries: the impact is not made up.
    assert!(
        md.contains(
            "- No traffic summary in the journal covers the window: the impact is unknown."
        ),
        "{md}"
    );
    assert!(md.contains("likely cause: config generation 17"), "{md}");
    assert!(md.contains("Cleared by config generation 18 at 14:39:32, which changed backend-2's weight from 10 to 1"), "{md}");
    assert!(md.contains("- W001 weight outlier"), "{md}");
}

#[test]
fn the_postmortem_names_a_rollback_as_the_fix() {
    let mut events = vec![applied(T0, 2, vec![weight_change(1, 10)])];
    let mut fired = evidence(T0 + 1000);
    fired.at_ms = T0 + 2000;
    events.push(Event {
        ts_ms: T0 + 2000,
        generation: 2,
        kind: EventKind::AlertFired {
            evidence: fired.clone(),
        },
    });
    events.push(rolled_back(T0 + 2100));
    events.push(Event {
        ts_ms: T0 + 6000,
        generation: 3,
        kind: EventKind::AlertResolved { evidence: fired },
    });
    let input = PostmortemInput {
        from_ms: T0 - 1000,
        to_ms: T0 + 10_000,
        ..Default::default()
    };
    let pm = render_postmortem(&events, &input);
    assert!(
        pm.contains(
            "Cleared by the automatic rollback to generation 1 at 14:29:34 (now generation 3)"
        ),
        "{pm}"
    );
}

/// A pool "web" summary of `[from, from + 10 s]`: 100 requests a tick, `errors(at)`
/// failed, and `slow` of each summary's answers at <= 100 ms (the rest at <= 5 ms, 1%
/// at <= 25 ms).
fn summary(from: u64, errors: impl Fn(u64) -> u64, slow: u64) -> Event {
    let ticks: Vec<[u64; 3]> = (1..=10)
        .map(|k| from + 1000 * k)
        .map(|at| [at, 100, errors(at)])
        .collect();
    let mut latency = vec![0u64; 15];
    latency[3] = 990 - slow;
    latency[5] = 10;
    latency[7] = slow;
    Event {
        ts_ms: from + 10_000,
        generation: 17,
        kind: EventKind::Traffic {
            summary: TrafficSummary {
                pool: "web".into(),
                from_ms: from,
                to_ms: from + 10_000,
                ticks,
                latency,
                backends: vec![BackendTraffic {
                    name: "backend-2".into(),
                    tries: 500,
                    failed_tries: 0,
                    client_errors: 0,
                    ..Default::default()
                }],
                ..Default::default()
            },
        },
    }
}

/// The journal of an incident on web/backend-2 from T0 + 1 s to T0 + 61 s, as the
/// binary writes it: the reload, the alert as evidence, the incident, and traffic
/// summaries from ten minutes before to two minutes after.
fn journaled_incident() -> Vec<Event> {
    let mut events = vec![applied(T0, 17, vec![weight_change(1, 10)])];
    let ev = evidence(T0 + 1000);
    let mut tracker = IncidentTracker::new("web", IncidentConfig::default());
    let mut push = |at: u64, alerts: &[AlertEvent], events: &mut Vec<Event>| {
        for ie in tracker.tick(at, alerts, events, &[]) {
            events.push(Event {
                ts_ms: at,
                generation: 17,
                kind: EventKind::from(&ie),
            });
            if let IncidentEvent::Opened(i) = &ie {
                assert_eq!(i.headline, "backend-2");
            }
        }
    };
    push(T0 + 3000, &[AlertEvent::Fired(ev.clone())], &mut events);
    let resolved = AlertEvent::Resolved {
        evidence: ev,
        resolved_ms: T0 + 61_000,
    };
    push(T0 + 61_000, &[resolved], &mut events);
    let during = |at: u64| {
        if at > T0 + 1000 && at <= T0 + 61_000 {
            20
        } else {
            0
        }
    };
    for j in -60i64..12 {
        let from = (T0 as i64 + j * 10_000) as u64;
        let slow = if (0..=6).contains(&j) { 300 } else { 0 };
        events.push(summary(from, during, slow));
    }
    events
}

#[test]
fn an_incident_id_the_journal_lacks_gets_no_draft_about_another() {
    let events = journaled_incident();
    let input = PostmortemInput {
        from_ms: T0 - 60_000,
        to_ms: T0 + 120_000,
        incident: Some("nope".into()),
        ..Default::default()
    };
    let md = render_postmortem(&events, &input);
    assert!(md.contains("No incident nope in the journal"), "{md}");
    assert!(!md.contains("## Root Cause"), "{md}");
    assert!(!has_incident(&events, "nope"));
}

/// Rotation took everything up to and including the incident's opening; its
/// resolution, which carries it whole, is left.
#[test]
fn an_incident_whose_opening_rotated_away_is_still_drafted() {
    let all = journaled_incident();
    let opened_at = all
        .iter()
        .find(|e| matches!(e.kind, EventKind::IncidentOpened { .. }))
        .unwrap()
        .ts_ms;
    let events: Vec<Event> = all.into_iter().filter(|e| e.ts_ms > opened_at).collect();
    let id = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::IncidentResolved { incident } => Some(incident.id.clone()),
            _ => None,
        })
        .unwrap();
    assert!(has_incident(&events, &id));
    for asked in [Some(id.clone()), None] {
        let input = PostmortemInput {
            from_ms: T0 - 60_000,
            to_ms: T0 + 120_000,
            incident: asked,
            ..Default::default()
        };
        let md = render_postmortem(&events, &input);
        assert!(
            md.starts_with("# Post-mortem draft: backend-2 over-share in pool web\n"),
            "{md}"
        );
        assert!(md.contains(&format!("Incident {id}.")), "{md}");
        assert!(
            md.contains("The journal no longer has this incident's opening (rotated away"),
            "{md}"
        );
        assert!(
            md.contains("- Requests answered to pool web's clients: 6000"),
            "{md}"
        );
    }
}

#[test]
fn the_impact_covers_the_incident_window_only() {
    let input = PostmortemInput {
        from_ms: T0 - 60_000,
        to_ms: T0 + 3_600_000,
        ..Default::default()
    };
    let md = render_postmortem(&journaled_incident(), &input);
    // 60 ticks of 100 have their middle inside [T0 + 1 s, T0 + 61 s], each with 20
    // failures; the pool's normal p99 is 5 ms; the summaries' answers above it (300 at
    // <= 100 ms, 10 at <= 25 ms) count by overlap: 0.9 + 5 + 0.1 summaries' worth.
    let want = [
        "Impact over the incident's window only (14:29:33 to 14:30:33):",
        "- Requests answered to pool web's clients: 6000",
        "- Requests affected: 3060",
        "  - failed as clients saw them: 1200 (20.0%)",
        "  - answered slower than the pool's normal p99 (5 ms over the 10 minutes before the onset): 1860 (31.0%)",
        "- Failed tries retried on another backend, unseen by clients: 0",
    ];
    for line in want {
        assert!(md.lines().any(|l| l == line), "`{line}` missing:\n{md}");
    }
    assert!(
        md.starts_with("# Post-mortem draft: backend-2 over-share in pool web\n"),
        "{md}"
    );
    assert!(
        md.contains("(1m 00s): backend-2 is taking 3.1x its share since 14:29:33. Incident web-"),
        "{md}"
    );
    assert!(md.contains("Cleared by no journaled change"), "{md}");
    // One incident, one timeline entry each for its opening and its end; the alert
    // behind it and the traffic summaries are not events of the timeline.
    let timeline = section(&md, "## Timeline");
    assert_eq!(
        timeline.lines().filter(|l| l.starts_with("- ")).count(),
        3,
        "{timeline}"
    );
    assert!(
        !timeline.contains("ALERT") && !timeline.contains("traffic"),
        "{timeline}"
    );
}

fn section<'a>(md: &'a str, title: &str) -> &'a str {
    let start = md.find(title).unwrap();
    let rest = &md[start + title.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

const RUSTC_STYLE: &str = "error: weight must be at most 10000
  --> tango.toml:12:10
   |
12 | weight = 99999
   |          ^^^^^ here
   = help: # not a heading | not a table";

/// Every block and inline element of a Markdown text, by kind.
fn structure(md: &str) -> (Vec<String>, Vec<String>) {
    let mut headings = Vec::new();
    let mut kinds = Vec::new();
    let mut in_heading = None::<String>;
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for ev in Parser::new_ext(md, opts) {
        match ev {
            Md::Start(Tag::Heading { level, .. }) => {
                let n = match level {
                    HeadingLevel::H1 => 1,
                    _ => 2,
                };
                in_heading = Some(format!("h{n} "));
            }
            Md::End(TagEnd::Heading(_)) => headings.extend(in_heading.take()),
            Md::Text(t) | Md::Code(t) => {
                if let Some(h) = in_heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Md::Start(t) => kinds.push(
                format!("{t:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_string(),
            ),
            Md::Html(_) | Md::InlineHtml(_) => kinds.push("Html".into()),
            _ => {}
        }
    }
    (headings, kinds)
}

#[test]
fn the_draft_is_markdown_whatever_the_journal_says() {
    let mut events = journaled_incident();
    events.push(Event {
        ts_ms: T0 + 30_000,
        generation: 17,
        kind: EventKind::ConfigRejected {
            source: ConfigSource::Api,
            errors: vec![RUSTC_STYLE.into()],
            findings: Vec::new(),
            predicted: Vec::new(),
        },
    });
    let mut odd = weight_change(10, 1);
    odd.backend = Some("web_1 | *canary* <b>".into());
    events.push(applied(T0 + 40_000, 18, vec![odd]));
    let input = PostmortemInput {
        from_ms: T0 - 60_000,
        to_ms: T0 + 3_600_000,
        corrective: vec![
            "TNG001 warning: pool `web` gives backend-2 10x the median weight (allow it with [[allow]])".into(),
            format!("the file does not validate:\n{RUSTC_STYLE}"),
        ],
        ..Default::default()
    };
    let md = render_postmortem(&events, &input);
    let (headings, kinds) = structure(&md);
    assert_eq!(
        headings,
        [
            "h1 Post-mortem draft: backend-2 over-share in pool web",
            "h2 Issue Summary",
            "h2 Timeline",
            "h2 Root Cause",
            "h2 Resolution",
            "h2 Corrective measures",
        ],
        "{md}"
    );
    for k in [
        "Table",
        "Html",
        "Emphasis",
        "Strong",
        "Strikethrough",
        "Link",
    ] {
        assert!(!kinds.iter().any(|x| x == k), "{k} in:\n{md}");
    }
    // The two rustc-style reports are code blocks, each inside its list item.
    assert_eq!(
        kinds.iter().filter(|k| *k == "CodeBlock").count(),
        2,
        "{md}"
    );
    let timeline = section(&md, "## Timeline");
    assert!(
        timeline.contains("\n  ```text\n  error: weight must be at most 10000\n"),
        "{timeline}"
    );
    assert!(
        timeline.contains("changed web_1 \\| \\*canary\\* \\<b\\>'s weight from 10 to 1"),
        "{timeline}"
    );
}

/// A pool "web" summary of `[from, from + 10 s]` over three backends, 30 answers a
/// tick: all near 1 ms, or (`slow`) with backend-2 answering its third at <= 500 ms.
fn three_backends(from: u64, slow: bool) -> Event {
    let ticks: Vec<[u64; 3]> = (1..=10).map(|k| [from + 1000 * k, 30, 0]).collect();
    let mut latency = vec![0u64; 15];
    let b2_p99 = if slow {
        latency[1] = 200;
        latency[9] = 100;
        500.0
    } else {
        latency[1] = 290;
        latency[2] = 10;
        2.5
    };
    let backend = |name: &str, p99: f64| BackendTraffic {
        name: name.into(),
        tries: 100,
        p99_ms: Some(p99),
        ..Default::default()
    };
    let others = if slow { 1.0 } else { 2.5 };
    Event {
        ts_ms: from + 10_000,
        generation: 17,
        kind: EventKind::Traffic {
            summary: TrafficSummary {
                pool: "web".into(),
                from_ms: from,
                to_ms: from + 10_000,
                ticks,
                latency,
                backends: vec![
                    backend("backend-1", others),
                    backend("backend-2", b2_p99),
                    backend("backend-3", others),
                ],
                ..Default::default()
            },
        },
    }
}

/// A latency incident on web/backend-2 from `T0 + 6 s` to `T0 + 26 s`, slow in the
/// summaries from `T0 - 4 s` on and normal in the `clean` summaries before that.
fn slow_from_before_its_onset(clean: u64) -> String {
    let mut ev = evidence(T0 + 6000);
    ev.kind = AlertKind::Latency;
    ev.basis = Basis::Effective;
    ev.cause = Cause::Unknown;
    let mut events = Vec::new();
    let mut tracker = IncidentTracker::new("web", IncidentConfig::default());
    let resolved = AlertEvent::Resolved {
        evidence: ev.clone(),
        resolved_ms: T0 + 26_000,
    };
    for (at, alert) in [(T0 + 8000, AlertEvent::Fired(ev)), (T0 + 26_000, resolved)] {
        for ie in tracker.tick(at, &[alert], &events, &[]) {
            events.push(Event {
                ts_ms: at,
                generation: 17,
                kind: EventKind::from(&ie),
            });
        }
    }
    for j in 0..clean {
        events.push(three_backends(T0 - 4000 - 10_000 * (clean - j), false));
    }
    for j in 0..3 {
        events.push(three_backends(T0 - 4000 + 10_000 * j, true));
    }
    let input = PostmortemInput {
        from_ms: T0 - 60_000,
        to_ms: T0 + 60_000,
        ..Default::default()
    };
    render_postmortem(&events, &input)
}

#[test]
fn traffic_already_slow_before_the_onset_is_not_called_normal() {
    // backend-2 was slow from its first request; the onset came after a summary of that
    // traffic, whose p99 is backend-2's 500 ms: nothing would be "slower than normal".
    let md = slow_from_before_its_onset(0);
    assert!(
        md.starts_with("# Post-mortem draft: backend-2 latency in pool web\n"),
        "{md}"
    );
    let want = "  - answered slower than normal: unknown (backend-2 already answered slower than the other backends in the traffic journaled before the onset, so it shows the incident, not the pool's normal p99)";
    assert!(md.lines().any(|l| l == want), "`{want}` missing:\n{md}");
    assert!(!md.contains("normal p99 ("), "{md}");
}

#[test]
fn the_normal_before_the_onset_leaves_out_what_was_already_slow() {
    let md = slow_from_before_its_onset(6);
    // The clean minute's p99 is 2.5 ms; in the window, backend-2's 100 answers a
    // summary at <= 500 ms are slower than that.
    let want = [
        "- Requests answered to pool web's clients: 600",
        "  - answered slower than the pool's normal p99 (2.5 ms over the 10 minutes before the onset, leaving out 10s in which backend-2 already answered slower than the other backends): 200 (33.3%)",
    ];
    for line in want {
        assert!(md.lines().any(|l| l == line), "`{line}` missing:\n{md}");
    }
}
