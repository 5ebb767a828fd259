//! The canary's traffic rule: how many requests a changed pool needs before it can be
//! judged, and where a canary stands once its window has passed.

use super::*;
use crate::guard::canary::{judged_share, requests_to_judge, Standing};
use crate::journal::CanaryTraffic;

#[test]
fn a_changed_backend_is_judged_at_its_share_before_the_reload() {
    let live = file("", [1, 1, 1, 1], "");
    let typo = file("", [1, 10, 1, 1], "");
    let scope = &changed_pools(&live.config, &typo.config)[0];
    // b2 had a quarter before the typo: 30 expected on it is 120 of the pool's requests.
    assert_eq!(judged_share(&live.config, &typo.config, scope), 0.25);
    assert_eq!(requests_to_judge(0.25, 30.0), 120);
    // The floor grows with the pool's over-dispersion.
    assert_eq!(requests_to_judge(0.25, 30.0 * 1.5), 180);
    // A change to the whole pool waits for its smallest backend.
    let uneven = file("", [1, 3, 4, 2], "");
    let policy = file("policy = \"random\"", [1, 3, 4, 2], "");
    let scope = &changed_pools(&uneven.config, &policy.config)[0];
    assert_eq!(scope.backends, None);
    assert_eq!(judged_share(&uneven.config, &policy.config, scope), 0.1);
}

fn traffic(requests: u64, needed: u64) -> CanaryTraffic {
    CanaryTraffic {
        pool: "web".into(),
        requests,
        needed,
    }
}

#[test]
fn a_window_too_quiet_to_judge_is_extended_then_ends_unjudged() {
    let c = Canary {
        generation: 2,
        until_ms: 30_000,
        longest_until_ms: 300_000,
        pools: vec![ScopePool {
            pool: "web".into(),
            backends: Some(vec!["b2".into()]),
        }],
        shares: vec![0.5],
    };
    assert_eq!(c.standing(29_000, &[traffic(10, 60)]), Standing::Open);
    assert_eq!(
        c.standing(31_000, &[traffic(59, 60)]),
        Standing::Extended(vec![traffic(59, 60)])
    );
    assert_eq!(c.standing(31_000, &[traffic(60, 60)]), Standing::Passed);
    assert_eq!(c.standing(200_000, &[traffic(60, 60)]), Standing::Passed);
    assert_eq!(
        c.standing(300_001, &[traffic(41, 60)]),
        Standing::NotJudged(vec![traffic(41, 60)])
    );
    // While extended, an alert blamed on the reload still counts.
    let over = alert(AlertKind::OverShare, "b2");
    assert!(c.caused(&over, &cause(Some(2)), 200_000));
    assert!(!c.caused(&over, &cause(Some(2)), 300_001));
}

/// The timeline tells a canary that could not judge its reload, and a rollback that
/// failed, each on a line of its own.
#[test]
fn an_unjudged_canary_and_a_failed_rollback_read_as_lines_of_their_own() {
    use crate::journal::{describe, Event, EventKind};
    let at = |generation, kind| Event {
        ts_ms: 0,
        generation,
        kind,
    };
    let ended = at(
        2,
        EventKind::CanaryEnded {
            pools: vec!["web".into()],
            window_ms: 300_000,
            traffic: vec![traffic(41, 60)],
            reason: "not enough traffic to judge: web: 41 of 60 requests in 300 s".into(),
        },
    );
    assert_eq!(
        describe(&ended),
        "config generation 2's canary ended without judging it: not enough traffic to judge: web: 41 of 60 requests in 300 s"
    );
    let failed = at(
        2,
        EventKind::ConfigRollbackFailed {
            from_generation: 2,
            to_generation: 1,
            reason: "address in use".into(),
            attempts: 1,
            retrying: true,
            evidence: vec![alert(AlertKind::OverShare, "b2")],
        },
    );
    assert_eq!(
        describe(&failed),
        "ROLLBACK FAILED: config generation 2 could not be rolled back to generation 1 (attempt 1): address in use; retrying"
    );
    let line = serde_json::to_value(&failed).unwrap();
    assert_eq!(line["type"], "config_rollback_failed");
    assert_eq!(line["evidence"][0]["backend"], "b2");
}
