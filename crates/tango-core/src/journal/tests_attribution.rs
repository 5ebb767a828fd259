//! Attribution by signal, series, and the one cause text the timeline shares with the log.

use super::*;
use crate::detector::{AlertKind, Basis, Cause, Evidence};

/// 2024-03-05 17:04:00Z
const T: u64 = 1_709_658_240_000;

fn alert(backend: &str, kind: AlertKind, onset_ms: u64) -> Evidence {
    Evidence {
        pool: "web".into(),
        backend: backend.into(),
        kind,
        basis: Basis::Effective,
        observed: 172.0,
        expected: 40.0,
        ratio: 4.3,
        z: 30.0,
        window_ms: 5000,
        requests: 500,
        pool_requests: 0,
        phi: 1.0,
        onset_ms,
        at_ms: onset_ms + 3000,
        cause: Cause::Unknown,
        detail: None,
        client_errors: None,
    }
}

fn change(backend: Option<&str>, kind: ChangeKind) -> Change {
    let rank = match &kind {
        ChangeKind::Weight { .. } | ChangeKind::Policy { .. } => 1,
        ChangeKind::Health { .. } => 2,
        ChangeKind::Timeouts { .. } => 4,
        _ => 3,
    };
    Change {
        pool: "web".into(),
        backend: backend.map(str::to_string),
        rank,
        kind,
    }
}

fn applied(ts_ms: u64, generation: u64, changes: Vec<Change>) -> Event {
    Event {
        ts_ms,
        generation,
        kind: EventKind::ConfigApplied {
            content_hash: "9f2c1e0b7a5d".into(),
            source: ConfigSource::Sighup,
            findings: Vec::new(),
            predicted: Vec::new(),
            overrides: Vec::new(),
            changes,
        },
    }
}

fn weight(backend: &str, from: u32, to: u32) -> Change {
    change(Some(backend), ChangeKind::Weight { from, to })
}

fn ejected(ts_ms: u64, backend: &str) -> Event {
    Event {
        ts_ms,
        generation: 3,
        kind: EventKind::Ejected {
            pool: "web".into(),
            backend: backend.into(),
            reason: "5 consecutive failures".into(),
        },
    }
}

#[test]
fn latency_beside_an_unrelated_weight_change_blames_the_backend_itself() {
    let events = vec![applied(T, 2, vec![weight("b2", 10, 11)])];
    let c = attribute(&alert("b4", AlertKind::Latency, T + 20_000), &events);
    assert_eq!(c.class, Cause::Backend);
    assert_eq!(c.generation, None);
    assert_eq!(
        c.sentence,
        "b4's p99 latency has been 4.3x the other backends' (172 ms vs 40 ms) since 17:04:20; no configuration change touched b4 or pool web's policy, hashing, health or timeout settings in the 5 minutes before; b4 itself is slower"
    );
}

/// A backend that turned slow minutes after its weight was lowered: less traffic does
/// not slow it, so the lowered weight is named but not blamed; a raised one is.
#[test]
fn latency_after_a_lowered_weight_blames_the_backend_itself() {
    let events = vec![applied(T, 3, vec![weight("b2", 3, 1)])];
    let c = attribute(&alert("b2", AlertKind::Latency, T + 150_000), &events);
    assert_eq!(c.class, Cause::Backend);
    assert_eq!(c.generation, None);
    assert_eq!(
        c.clause,
        "config generation 3 at 17:04:00 changed b2's weight from 3 to 1, which sends it less traffic, not more, and no other configuration change touched b2 or pool web's policy, hashing, health or timeout settings in the 5 minutes before; b2 itself is slower"
    );
    let events = vec![applied(T, 3, vec![weight("b2", 1, 3)])];
    let c = attribute(&alert("b2", AlertKind::Latency, T + 150_000), &events);
    assert_eq!((c.class, c.generation), (Cause::Config, Some(3)));
}

#[test]
fn latency_is_blamed_on_a_pool_wide_change_that_can_cause_it() {
    let t = change(
        None,
        ChangeKind::Timeouts {
            setting: "try_timeout".into(),
            from: "10s".into(),
            to: "100ms".into(),
        },
    );
    let events = vec![
        applied(T, 2, vec![weight("b2", 10, 11)]),
        applied(T + 5000, 3, vec![t]),
    ];
    let c = attribute(&alert("b4", AlertKind::Latency, T + 7_000), &events);
    assert_eq!(c.class, Cause::Config);
    assert_eq!(c.generation, Some(3));
    assert_eq!(
        c.clause,
        "likely cause: config generation 3 (reload at 17:04:05), which changed pool web's try_timeout from 10s to 100ms"
    );
}

/// b3 starts failing 8 s after a reload changed the pool's try_timeout, having served
/// normally under it until then: the setting would have shown with its first requests,
/// so b3 is failing for reasons of its own (and the canary must not roll the reload
/// back). The change is named, with why it is not the cause.
#[test]
fn errors_long_after_a_pool_wide_change_blame_the_backend_itself() {
    let t = change(
        None,
        ChangeKind::Timeouts {
            setting: "try_timeout".into(),
            from: "5s".into(),
            to: "4s".into(),
        },
    );
    let events = vec![applied(T, 2, vec![t])];
    let mut a = alert("b3", AlertKind::Errors, T + 8_000);
    a.observed = 0.35;
    a.expected = 0.0;
    let c = attribute(&a, &events);
    assert_eq!((c.class, c.generation), (Cause::Backend, None));
    assert_eq!(
        c.clause,
        "config generation 2 at 17:04:00 changed pool web's try_timeout from 5s to 4s, 8 s before this began (b3's requests under it were fine until then, and a pool's setting shows with its first requests), and no configuration change touched b3 in the 5 minutes before; b3 itself is failing"
    );
    // Within a few seconds of the change, it is the suspect.
    let c = attribute(&alert("b3", AlertKind::Errors, T + 3_000), &events);
    assert_eq!((c.class, c.generation), (Cause::Config, Some(2)));
}

#[test]
fn errors_name_what_is_known_about_the_backend() {
    let events = vec![
        applied(T, 2, vec![weight("b2", 10, 11)]),
        ejected(T + 10_000, "b4"),
    ];
    let mut a = alert("b4", AlertKind::Errors, T + 12_000);
    a.observed = 0.38;
    a.expected = 0.001;
    let c = attribute(&a, &events);
    assert_eq!(c.class, Cause::Backend);
    assert_eq!(
        c.sentence,
        "b4 failed 38.0% of its tries (the others 0.1%) since 17:04:12; no configuration change touched b4 or pool web's policy, hashing, health or timeout settings in the 5 minutes before; b4 itself is failing; b4 was ejected at 17:04:10 (5 consecutive failures)"
    );
}

/// The scenario: the fix (b2's weight 10 -> 1) came first, then b2 died and was
/// ejected. The ejection, nearer the onset, is the cause; the fix is not blamed.
#[test]
fn an_ejection_after_a_fix_is_the_cause_not_the_fix() {
    let events = vec![
        applied(T, 3, vec![weight("b2", 10, 1)]),
        ejected(T + 60_000, "b2"),
    ];
    let mut a = alert("b2", AlertKind::UnderShare, T + 62_000);
    a.cause = Cause::Config;
    a.ratio = 0.0;
    let c = attribute(&a, &events);
    assert_eq!(c.class, Cause::Health);
    assert_eq!(
        c.clause,
        "likely cause: health, b2 was ejected at 17:05:00 (5 consecutive failures)"
    );
}

/// b4 takes 1.5x its configured share a quarter of an hour into b2's ejection (its third
/// of the pool while b2 is out, over the line by chance): b2, still out, is the cause,
/// though its ejection is older than the lookback. Once b2 is back, it is not.
#[test]
fn a_health_alert_long_into_an_ejection_names_the_backend_still_out() {
    let returned = |ts_ms| Event {
        ts_ms,
        generation: 3,
        kind: EventKind::Returned {
            pool: "web".into(),
            backend: "b2".into(),
        },
    };
    let mut a = alert("b4", AlertKind::OverShare, T + 16 * 60_000);
    a.cause = Cause::Health;
    a.basis = Basis::Configured;
    let c = attribute(&a, &[ejected(T, "b2")]);
    assert_eq!(c.class, Cause::Health);
    assert_eq!(
        c.clause,
        "likely cause: health, b2 was ejected at 17:04:00 (5 consecutive failures)"
    );
    assert_eq!(c.backend.as_deref(), Some("b2"));
    let c = attribute(&a, &[ejected(T, "b2"), returned(T + 10 * 60_000)]);
    assert!(
        c.clause
            .contains("no health transition or ejection was journaled"),
        "{}",
        c.clause
    );
}

#[test]
fn a_weight_change_just_before_the_onset_outranks_the_key_distribution() {
    let mut a = alert("b1", AlertKind::OverShare, T + 10_000);
    a.cause = Cause::KeyDistribution;
    a.detail = Some("the hash key took only ~9 distinct values for 4 backends".into());
    let events = vec![applied(T, 2, vec![weight("b1", 1, 4)])];
    let c = attribute(&a, &events);
    assert_eq!(c.class, Cause::Config);
    assert_eq!(
        c.clause,
        "likely cause: config generation 2 (reload at 17:04:00), which changed b1's weight from 1 to 4; the hash keys also show: the hash key took only ~9 distinct values for 4 backends"
    );
    // Four minutes before, the keys remain the likelier story; the change is mentioned.
    a.onset_ms = T + 240_000;
    let c = attribute(&a, &events);
    assert_eq!(c.class, Cause::KeyDistribution);
    assert_eq!(
        c.clause,
        "likely cause: the key distribution (the hash key took only ~9 distinct values for 4 backends); config generation 2 at 17:04:00 changed b1's weight from 1 to 4"
    );
}

#[test]
fn a_series_of_weight_changes_is_named_as_a_series() {
    // b2's weight raised by one every 30 s, from 10 to 19, generations 2 to 10; an
    // unrelated change to b3 in between does not break the run.
    let mut events: Vec<Event> = (0..9u64)
        .map(|i| {
            applied(
                T + i * 30_000,
                i + 2,
                vec![weight("b2", 10 + i as u32, 11 + i as u32)],
            )
        })
        .collect();
    events.push(applied(T + 45_000, 99, vec![weight("b3", 10, 9)]));
    let mut a = alert("b2", AlertKind::OverShare, T + 245_000);
    a.cause = Cause::Config;
    a.ratio = 1.5;
    let c = attribute(&a, &events);
    assert_eq!(
        c.sentence,
        "b2 is taking 1.5x its share since 17:08:05; likely cause: b2's weight went from 10 to 19 over 9 reloads since 17:04:00 (config generations 2 to 10, the last at 17:08:00)"
    );
    let s = c.series.expect("series");
    assert_eq!((s.from, s.to, s.reloads, s.since_ms), (10, 19, 9, T));
    // A change and its reversal are not a series.
    let back = vec![
        applied(T, 2, vec![weight("b2", 10, 1)]),
        applied(T + 60_000, 3, vec![weight("b2", 1, 10)]),
    ];
    let c = attribute(&alert("b2", AlertKind::OverShare, T + 61_000), &back);
    assert_eq!(c.series, None);
    assert_eq!(c.generation, Some(3));
}

/// The timeline shows the cause the alert was reported with, not "cause unknown".
#[test]
fn the_timeline_states_the_cause_the_alert_was_reported_with() {
    let mut a = alert("b2", AlertKind::OverShare, T + 2_000);
    a.ratio = 3.1;
    a.observed = 0.62;
    a.expected = 0.2;
    a.cause = Cause::Config;
    let change = applied(T, 2, vec![weight("b2", 1, 10)]);
    let reported = attribute(&a, std::slice::from_ref(&change));
    // As the binary journals it: the sentence appended to the evidence's detail.
    let mut journaled = a.clone();
    journaled.detail = Some(reported.sentence.clone());
    let fired = Event {
        ts_ms: a.at_ms,
        generation: 2,
        kind: EventKind::AlertFired {
            evidence: journaled.clone(),
        },
    };
    let events = vec![change, fired];
    assert_eq!(cause_of(&journaled, &events), reported);
    let t = render_timeline(&events);
    let line = t.lines().find(|l| l.contains("ALERT")).unwrap();
    assert_eq!(
        line,
        "2024-03-05 17:04:05Z  gen 2    ALERT over_share web/b2: share 62.0% vs expected 20.0% (3.1x, z 30.0, over 5 s, 500 requests); likely cause: config generation 2 (reload at 17:04:00), which changed b2's weight from 1 to 10"
    );
    // Journaled without the sentence (an older journal), the same function computes it.
    let mut bare = events.clone();
    if let EventKind::AlertFired { evidence } = &mut bare[1].kind {
        evidence.detail = None;
    }
    assert_eq!(render_timeline(&bare), t);
}

/// Incidents are journaled as they were announced, read back, and shown in the timeline
/// with the cause sentence the log had.
#[test]
fn incidents_round_trip_and_read_as_one_line_each() {
    use crate::detector::{AlertEvent, IncidentConfig, IncidentEvent, IncidentTracker};
    let change = applied(T, 2, vec![weight("b3", 1, 10)]);
    let mut over = alert("b3", AlertKind::OverShare, T + 1000);
    over.ratio = 3.1;
    over.basis = Basis::Baseline;
    let mut under = alert("b1", AlertKind::UnderShare, T + 1000);
    under.ratio = 0.4;
    under.basis = Basis::Baseline;
    let mut t = IncidentTracker::new("web", IncidentConfig::default());
    let journal = vec![change.clone()];
    let fired = [
        AlertEvent::Fired(over.clone()),
        AlertEvent::Fired(under.clone()),
    ];
    let opened = t.tick(T + 3000, &fired, &journal, &[]);
    let resolved: Vec<AlertEvent> = [over, under]
        .into_iter()
        .map(|e| AlertEvent::Resolved {
            evidence: e,
            resolved_ms: T + 60_000,
        })
        .collect();
    let closed = t.tick(T + 60_000, &resolved, &journal, &[]);
    let mut events = vec![change];
    for (ts, ie) in [(T + 3000, &opened[0]), (T + 60_000, closed.last().unwrap())] {
        events.push(Event {
            ts_ms: ts,
            generation: 2,
            kind: EventKind::from(ie),
        });
    }
    let text: String = events.iter().map(|e| e.to_line() + "\n").collect();
    let back = parse_lines(&text);
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert_eq!(back.events, events);
    let IncidentEvent::Opened(i) = &opened[0] else {
        panic!("{opened:?}")
    };
    assert_eq!(i.id, "web-1709658243");
    let timeline = render_timeline(&events);
    let lines: Vec<&str> = timeline.lines().collect();
    assert_eq!(
        lines[2],
        "2024-03-05 17:04:03Z  gen 2    INCIDENT web-1709658243 opened: b3 is taking 3.1x its share since 17:04:01; likely cause: config generation 2 (reload at 17:04:00), which changed b3's weight from 1 to 10"
    );
    assert_eq!(lines[3], "    - also: b1 under_share 0.4x");
    assert_eq!(
        lines[4],
        "2024-03-05 17:05:00Z  gen 2    INCIDENT web-1709658243 resolved after 59s (headline b3)"
    );
}

#[test]
fn an_error_alert_says_whether_clients_saw_the_failed_tries() {
    let mut a = alert("b4", AlertKind::Errors, T);
    a.observed = 1.0;
    a.expected = 0.0;
    a.client_errors = Some(0);
    let c = attribute(&a, &[]);
    assert!(
        c.sentence.starts_with(&format!(
            "b4 failed 100.0% of its tries (the others 0.0%) since {}, each retried on another backend: clients saw no error from it; ",
            clock(T)
        )),
        "{}",
        c.sentence
    );
    a.client_errors = Some(12);
    let c = attribute(&a, &[]);
    assert!(
        c.sentence
            .contains("since 17:04:00, and 12 of them reached clients as errors; no configuration"),
        "{}",
        c.sentence
    );
    // Without retries, every failed try is a client's error.
    a.client_errors = Some(500);
    let c = attribute(&a, &[]);
    assert!(
        c.sentence
            .contains("since 17:04:00, every one reaching clients as an error; no configuration"),
        "{}",
        c.sentence
    );
}

/// b2 was ejected, and a reload then removed it (and a later one added a b2 back, a new
/// backend in rotation): no backend of the pool is still out, and a health alert a
/// quarter of an hour later does not name b2.
#[test]
fn a_backend_removed_while_ejected_is_not_still_out() {
    let mut a = alert("b4", AlertKind::OverShare, T + 16 * 60_000);
    a.cause = Cause::Health;
    a.basis = Basis::Configured;
    let removed = applied(
        T + 60_000,
        4,
        vec![change(
            Some("b2"),
            ChangeKind::BackendRemoved {
                address: "10.0.0.2:80".into(),
            },
        )],
    );
    let added = applied(
        T + 120_000,
        5,
        vec![change(
            Some("b2"),
            ChangeKind::BackendAdded {
                address: "10.0.0.2:80".into(),
            },
        )],
    );
    for events in [
        vec![ejected(T, "b2"), removed.clone()],
        vec![ejected(T, "b2"), removed, added],
    ] {
        let c = attribute(&a, &events);
        assert_eq!(c.backend, None, "{}", c.clause);
        assert!(
            c.clause
                .contains("no health transition or ejection was journaled"),
            "{}",
            c.clause
        );
    }
}

/// b3 takes twice its share against the eligible set two minutes into b2's ejection:
/// the expectation already left b2 out, so the ejection is not the cause. A skew that
/// began with the ejection still names it.
#[test]
fn a_skew_long_into_another_backends_ejection_is_not_blamed_on_it() {
    let events = vec![ejected(T, "b2")];
    for cause in [Cause::Config, Cause::Unknown] {
        let mut a = alert("b3", AlertKind::OverShare, T + 120_000);
        a.cause = cause;
        let c = attribute(&a, &events);
        assert_eq!(
            (c.class, c.backend.as_deref()),
            (Cause::Unknown, None),
            "{}",
            c.clause
        );
        let mut a = alert("b3", AlertKind::OverShare, T + 2_000);
        a.cause = cause;
        let c = attribute(&a, &events);
        assert_eq!(
            (c.class, c.backend.as_deref()),
            (Cause::Health, Some("b2")),
            "{}",
            c.clause
        );
    }
}
