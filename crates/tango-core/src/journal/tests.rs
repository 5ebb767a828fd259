use super::*;
use crate::config::{self, Config};
use crate::detector::{AlertKind, Basis, Cause, Evidence};
use std::path::Path;

fn cfg(web_policy: &str, w2: u32, extra: &str) -> Config {
    let text = format!(
        r#"
[admin]
listen = "127.0.0.1:9901"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"
[[route]]
pool = "web"
[[pool]]
name = "web"
policy = "{web_policy}"
[[pool.backend]]
name = "backend-1"
address = "10.0.0.1:80"
[[pool.backend]]
name = "backend-2"
address = "10.0.0.2:80"
weight = {w2}
{extra}
"#
    );
    match config::parse("t.toml", &text, Path::new(".")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

/// 2024-03-05 14:29:32Z
pub(super) const T0: u64 = 1_709_648_972_000;

pub(super) fn evidence(onset_ms: u64) -> Evidence {
    Evidence {
        pool: "web".into(),
        backend: "backend-2".into(),
        kind: AlertKind::OverShare,
        basis: Basis::Effective,
        observed: 0.62,
        expected: 0.2,
        ratio: 3.1,
        z: 25.0,
        window_ms: 5000,
        requests: 3100,
        pool_requests: 5000,
        phi: 1.0,
        onset_ms,
        at_ms: onset_ms + 2000,
        cause: Cause::Config,
        detail: None,
        client_errors: None,
    }
}

pub(super) fn weight_change(from: u32, to: u32) -> Change {
    Change {
        pool: "web".into(),
        backend: Some("backend-2".into()),
        rank: 1,
        kind: ChangeKind::Weight { from, to },
    }
}

pub(super) fn applied(ts_ms: u64, generation: u64, changes: Vec<Change>) -> Event {
    Event {
        ts_ms,
        generation,
        kind: EventKind::ConfigApplied {
            content_hash: "9f2c1e0b7a5d33aa".into(),
            source: ConfigSource::Sighup,
            changes,
            findings: Vec::new(),
            predicted: Vec::new(),
            overrides: Vec::new(),
        },
    }
}

#[test]
fn summarize_ranks_weights_first_then_health_then_membership() {
    let old = cfg("round_robin", 1, "");
    let new = cfg(
        "random",
        10,
        "[[pool.backend]]\nname = \"backend-3\"\naddress = \"10.0.0.3:80\"\n[pool.health]\npath = \"/healthz\"\n",
    );
    let ch = summarize_changes(&old, &new);
    let kinds: Vec<_> = ch.iter().map(|c| c.rank).collect();
    assert!(kinds.windows(2).all(|w| w[0] <= w[1]), "{ch:?}");
    assert!(ch.contains(&weight_change(1, 10)), "{ch:?}");
    assert!(ch.iter().any(|c| matches!(&c.kind, ChangeKind::Policy { from, to } if from == "round_robin" && to == "random")));
    assert!(ch.iter().any(|c| c.rank == 2 && matches!(&c.kind, ChangeKind::Health { setting, from, .. } if setting == "health check" && from == "off")));
    let added = ch
        .iter()
        .find(|c| matches!(c.kind, ChangeKind::BackendAdded { .. }))
        .unwrap();
    assert_eq!(added.backend.as_deref(), Some("backend-3"));
    assert_eq!(added.rank, 3);
    assert!(summarize_changes(&old, &old).is_empty());
}

#[test]
fn events_are_json_lines_and_round_trip() {
    let e = applied(T0, 17, vec![weight_change(1, 10)]);
    let line = e.to_line();
    assert!(line.contains("\"type\":\"config_applied\""), "{line}");
    assert!(line.contains("\"change\":\"weight\""), "{line}");
    assert!(!line.contains('\n'));
    let back: Event = serde_json::from_str(&line).unwrap();
    assert_eq!(back, e);
}

#[test]
fn a_torn_last_line_is_skipped_with_a_warning() {
    let a = applied(T0, 17, vec![]).to_line();
    let b = Event {
        ts_ms: T0 + 1,
        generation: 17,
        kind: EventKind::PanicMode {
            pool: "web".into(),
            entered: true,
        },
    }
    .to_line();
    let text = format!("{a}\n{b}\n{}", &a[..a.len() / 2]);
    let p = parse_lines(&text);
    assert_eq!(p.events.len(), 2);
    assert_eq!(p.warnings.len(), 1);
    assert!(
        p.warnings[0].contains("line 3") && p.warnings[0].contains("torn"),
        "{:?}",
        p.warnings
    );
    let p = parse_lines(&format!("{a}\nnot json\n{b}\n"));
    assert_eq!(p.events.len(), 2);
    assert!(
        p.warnings[0].starts_with("line 2: skipped"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn attribution_names_the_generation_and_the_change() {
    let events = vec![
        applied(T0 - 600_000, 16, vec![weight_change(2, 1)]),
        applied(T0, 17, vec![weight_change(1, 10)]),
    ];
    let c = attribute(&evidence(T0 + 8000), &events);
    assert_eq!(c.class, Cause::Config);
    assert_eq!(c.generation, Some(17));
    assert_eq!(
        c.sentence,
        "backend-2 is taking 3.1x its share since 14:29:40; likely cause: config generation 17 (reload at 14:29:32), which changed backend-2's weight from 1 to 10"
    );
}

#[test]
fn a_change_to_the_alerting_backend_outranks_a_later_one_elsewhere() {
    let other = Change {
        pool: "api".into(),
        backend: None,
        rank: 1,
        kind: ChangeKind::Policy {
            from: "random".into(),
            to: "maglev".into(),
        },
    };
    let events = vec![
        applied(T0, 17, vec![weight_change(1, 10)]),
        applied(T0 + 3000, 18, vec![other]),
    ];
    assert_eq!(
        attribute(&evidence(T0 + 4000), &events).generation,
        Some(17)
    );
}

#[test]
fn health_events_in_the_pool_explain_a_health_alert_and_nothing_is_unknown() {
    let mut ev = evidence(T0 + 8000);
    ev.cause = Cause::Health;
    let events = vec![Event {
        ts_ms: T0 + 5000,
        generation: 17,
        kind: EventKind::Ejected {
            pool: "web".into(),
            backend: "backend-1".into(),
            reason: "5 consecutive failures".into(),
        },
    }];
    let c = attribute(&ev, &events);
    assert_eq!(c.class, Cause::Health);
    assert!(
        c.sentence.ends_with(
            "likely cause: health, backend-1 was ejected at 14:29:37 (5 consecutive failures)"
        ),
        "{}",
        c.sentence
    );
    let c = attribute(&evidence(T0), &[]);
    assert_eq!(c.class, Cause::Unknown);
    assert!(c.sentence.contains("cause unknown"));
}

pub(super) fn incident() -> Vec<Event> {
    let ev = evidence(T0 + 1000);
    vec![
        Event {
            ts_ms: T0 + 3000,
            generation: 17,
            kind: EventKind::AlertFired {
                evidence: ev.clone(),
            },
        },
        applied(T0, 17, vec![weight_change(1, 10)]),
        applied(T0 + 600_000, 18, vec![weight_change(10, 1)]),
        Event {
            ts_ms: T0 + 605_000,
            generation: 18,
            kind: EventKind::AlertResolved { evidence: ev },
        },
    ]
}

#[test]
fn the_timeline_is_time_ordered() {
    let t = render_timeline(&incident());
    let lines: Vec<&str> = t.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert!(lines[0].starts_with("2024-03-05 14:29:32Z  gen 17"), "{t}");
    assert!(
        lines[1].contains("ALERT over_share web/backend-2: share 62.0% vs expected 20.0%"),
        "{t}"
    );
    assert!(
        lines[3].contains("resolved over_share web/backend-2"),
        "{t}"
    );
    assert!(
        t.contains("    - changed backend-2's weight from 1 to 10"),
        "{t}"
    );
}

#[test]
fn dates_are_civil_utc() {
    assert_eq!(date_time(0), "1970-01-01 00:00:00Z");
    assert_eq!(date_time(T0), "2024-03-05 14:29:32Z");
    assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00:00Z");
    // A mangled timestamp past what RFC 3339 can say shows as the last second, not a panic.
    assert_eq!(date_time(u64::MAX), "9999-12-31 23:59:59Z");
}

pub(super) fn rolled_back(ts_ms: u64) -> Event {
    Event {
        ts_ms,
        generation: 3,
        kind: EventKind::ConfigRolledBack {
            from_generation: 2,
            to_generation: 1,
            content_hash: "0123456789abcdef".into(),
            changes: vec![weight_change(10, 1)],
            evidence: vec![evidence(ts_ms - 3000)],
        },
    }
}

#[test]
fn a_rollback_reads_back_and_says_which_generation_it_restored() {
    let e = rolled_back(T0 + 5000);
    let p = parse_lines(&(e.to_line() + "\n"));
    assert_eq!(p.events, vec![e.clone()]);
    assert_eq!(
        describe(&e),
        "config generation 2 rolled back to generation 1 (now generation 3) after over_share on web/backend-2"
    );
    // Lines written before the guard existed have no findings and still parse.
    let old = r#"{"ts_ms":1,"generation":1,"type":"config_applied","content_hash":"x","source":"startup","changes":[]}"#;
    assert_eq!(parse_lines(old).events.len(), 1);
}

#[test]
fn an_alert_after_a_rollback_is_attributed_to_it() {
    let events = vec![
        applied(T0, 2, vec![weight_change(1, 10)]),
        rolled_back(T0 + 5000),
    ];
    let c = attribute(&evidence(T0 + 7000), &events);
    assert_eq!(c.generation, Some(3));
    assert!(
        c.sentence
            .contains("config generation 3 (rollback at 14:29:37), which changed"),
        "{}",
        c.sentence
    );
}

#[test]
fn an_alert_whose_onset_precedes_a_rollback_stays_with_the_rolled_back_change() {
    let events = vec![
        applied(T0, 2, vec![weight_change(1, 10)]),
        rolled_back(T0 + 1000),
    ];
    let c = attribute(&evidence(T0 + 500), &events);
    assert_eq!(c.generation, Some(2), "{}", c.sentence);
}

fn outlier(ts_ms: u64, backend: &str, out: bool) -> Event {
    let (pool, backend) = ("web".into(), backend.into());
    let kind = match out {
        true => EventKind::Ejected {
            pool,
            backend,
            reason: "5 consecutive failures".into(),
        },
        false => EventKind::Returned { pool, backend },
    };
    Event {
        ts_ms,
        generation: 17,
        kind,
    }
}

/// backend-2 is ejected, a reload renames it on the same address (the same backend,
/// still ejected: it keeps its state), and it returns under its new name. Its ejection
/// then no longer explains a health alert a quarter of an hour later; before its
/// return it does, under the name it has now. The rename was journaled as no change at
/// all, so the old name's ejection stayed "still out" for good and was named as the
/// cause of every later health alert in the pool.
#[test]
fn a_backend_renamed_while_ejected_is_out_under_its_new_name_until_it_returns() {
    let old = cfg("round_robin", 1, "");
    let mut new = old.clone();
    new.pools[0].backends[1].name = "backend-2b".into();
    let changes = summarize_changes(&old, &new);
    assert_eq!(
        changes.iter().map(Change::describe).collect::<Vec<_>>(),
        ["renamed backend backend-2 (10.0.0.2:80) in pool web to backend-2b"]
    );
    let events = vec![
        outlier(T0, "backend-2", true),
        applied(T0 + 60_000, 18, changes),
        outlier(T0 + 120_000, "backend-2b", false),
    ];
    let mut ev = evidence(T0 + 16 * 60_000);
    ev.backend = "backend-1".into();
    ev.cause = Cause::Health;
    ev.basis = Basis::Configured;
    let c = attribute(&ev, &events);
    assert_eq!(c.backend, None, "{}", c.sentence);
    assert!(
        c.clause
            .contains("no health transition or ejection was journaled"),
        "{}",
        c.clause
    );
    let c = attribute(&ev, &events[..2]);
    assert_eq!(c.backend.as_deref(), Some("backend-2b"), "{}", c.sentence);
    assert_eq!(
        c.clause,
        "likely cause: health, backend-2 was ejected at 14:29:32 (5 consecutive failures), since renamed backend-2b"
    );
}

fn routed(routes: &str) -> Config {
    let mut text = String::from("[[listener]]\nlisten = \"127.0.0.1:8080\"\n");
    text.push_str(routes);
    for (name, n) in [("big", 4), ("small", 1)] {
        text.push_str(&format!("[[pool]]\nname = \"{name}\"\n"));
        for i in 0..n {
            text.push_str(&format!(
                "[[pool.backend]]\naddress = \"10.0.{}.{i}:80\"\n",
                name.len()
            ));
        }
    }
    match config::parse("t.toml", &text, Path::new(".")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

#[test]
fn a_route_sent_to_another_pool_is_a_change_of_the_pool_it_joins() {
    let old =
        routed("[[route]]\npath_prefix = \"/api\"\npool = \"big\"\n[[route]]\npool = \"big\"\n");
    let new = routed(
        "[[route]]\npath_prefix = \"/api\"\npool = \"small\"\n[[route]]\npool = \"big\"\n\
         [[route]]\npath_prefix = \"/new\"\npool = \"small\"\n",
    );
    let ch = summarize_changes(&old, &new);
    let json = serde_json::to_string(&ch).unwrap();
    assert_eq!(
        json,
        r#"[{"pool":"small","rank":3,"change":"route","route":"host * path /api","from":"big","to":"small"},{"pool":"small","rank":3,"change":"route","route":"host * path /new","to":"small"}]"#
    );
    assert_eq!(
        ch.iter().map(Change::describe).collect::<Vec<_>>(),
        [
            "route host * path /api: moved from pool big to pool small",
            "route host * path /new: now sends to pool small",
        ]
    );
    let back = summarize_changes(&new, &old);
    assert_eq!(
        back.iter().map(Change::describe).collect::<Vec<_>>(),
        [
            "route host * path /api: moved from pool small to pool big",
            "route host * path /new: no longer sends to pool small",
        ]
    );
    assert_eq!(back[1].pool, "small");
}

/// The canary watches the pool a route now sends to, as a whole: a skew there soon after
/// the reload can be blamed on it and rolled back.
#[test]
fn a_route_moved_to_a_pool_puts_that_pool_in_the_canary_s_scope() {
    use crate::guard::canary::{changed_pools, ScopePool};
    let old =
        routed("[[route]]\npath_prefix = \"/api\"\npool = \"big\"\n[[route]]\npool = \"big\"\n");
    let new =
        routed("[[route]]\npath_prefix = \"/api\"\npool = \"small\"\n[[route]]\npool = \"big\"\n");
    assert_eq!(
        changed_pools(&old, &new),
        [ScopePool {
            pool: "small".into(),
            backends: None,
        }]
    );
}
