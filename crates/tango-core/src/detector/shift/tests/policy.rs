//! A pool whose policy changes: the shift detector takes the new policy's tuning and
//! keeps its baseline, and the alerts firing at the change carry over or resolve once.

use super::*;

/// The tuning of a policy that moves traffic away from slow backends on purpose (as
/// the watch sets it for `least_request` and `peak_ewma`): no under-share, and
/// over-share only past 2.5x.
fn latency_aware() -> DetectorConfig {
    DetectorConfig {
        over_ratio: 2.5,
        resolve_over_ratio: 1.8,
        under_ratio: 0.0,
        configured_skew_alerts: false,
        ..DetectorConfig::default()
    }
}

/// Ticks `d` with nothing unsaid: fired and resolved events, in order.
fn events(d: &mut ShiftDetector, p: &mut Pool, ticks: u32, rps: u64) -> Vec<AlertEvent> {
    (0..ticks)
        .flat_map(|_| d.tick(&p.tick(rps)).events)
        .collect()
}

fn count(evs: &[AlertEvent], fired: bool, backend: &str, kind: AlertKind) -> usize {
    evs.iter()
        .filter(|ev| match ev {
            AlertEvent::Fired(e) => fired && e.backend == backend && e.kind == kind,
            AlertEvent::Resolved { evidence: e, .. } => {
                !fired && e.backend == backend && e.kind == kind
            }
        })
        .count()
}

#[test]
fn a_change_to_a_latency_aware_policy_takes_its_tuning_and_keeps_the_baseline() {
    let (mut p, mut d) = warmed(500, 3);
    let baseline = d.baseline();
    assert!(d.retune(latency_aware(), p.now).is_empty());
    assert_eq!(d.baseline(), baseline);
    // The slow backend-4 gets a fifth of its share now, as the policy means it to.
    p.drawn[3] = 0.2;
    let fired = fires(&mut d, &mut p, 2 * MIN, 500);
    assert!(fired.is_empty(), "{fired:?}");

    // The same pool that kept round robin's tuning fires backend-4's under-share.
    let (mut p, mut d) = warmed(500, 3);
    p.drawn[3] = 0.2;
    let fired = fires(&mut d, &mut p, 2 * MIN, 500);
    assert!(under_share(&fired, "backend-4").is_some(), "{fired:?}");
}

/// A policy change that itself skews the split is a shift from the baseline before
/// it, dated at the change, so the journal names the reload.
#[test]
fn a_policy_change_that_skews_is_still_a_shift_from_the_baseline_before_it() {
    let (mut p, mut d) = warmed(500, 5);
    let change_at = p.now;
    d.retune(latency_aware(), change_at);
    p.drawn[0] = 12.0;
    let fired = fires(&mut d, &mut p, 10, 500);
    let e = over_share(&fired, "backend-1").unwrap_or_else(|| panic!("{fired:?}"));
    assert_eq!(e.basis, Basis::Baseline);
    assert!(e.ratio > 2.5, "{e:?}");
    assert!(e.at_ms <= change_at + 5000, "{e:?}");
    assert!(e.onset_ms + 2000 >= change_at, "{e:?}");
}

#[test]
fn a_change_back_to_round_robin_tightens_the_tuning_again() {
    let mut p = Pool::new(&[10.0; 4]);
    let mut d = ShiftDetector::new("web", latency_aware(), ShiftConfig::default());
    assert!(fires(&mut d, &mut p, 10 * MIN, 500).is_empty());
    let events = d.retune(DetectorConfig::default(), p.now);
    assert!(events.is_empty(), "{events:?}");
    p.drawn[3] = 0.2;
    let fired = fires(&mut d, &mut p, MIN, 500);
    assert!(under_share(&fired, "backend-4").is_some(), "{fired:?}");
}

/// Alerts firing at the change: those the new tuning raises no more resolve at the
/// change, once, and do not come back; one it would raise too carries on, told once,
/// and resolves when the split returns.
#[test]
fn alerts_firing_at_a_policy_change_carry_over_or_resolve_once() {
    let (mut p, mut d) = warmed(500, 9);
    // backend-1 at about 2.1x its share, backend-2 at about 0.17x.
    p.drawn[0] = 2.5;
    p.drawn[1] = 0.2;
    let before = events(&mut d, &mut p, 20, 500);
    assert_eq!(count(&before, true, "backend-1", AlertKind::OverShare), 1);
    assert_eq!(count(&before, true, "backend-2", AlertKind::UnderShare), 1);
    let ended = d.retune(latency_aware(), p.now);
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert_eq!(count(&ended, false, "backend-1", AlertKind::OverShare), 1);
    assert_eq!(count(&ended, false, "backend-2", AlertKind::UnderShare), 1);
    assert!(ended.iter().all(|ev| matches!(
        ev,
        AlertEvent::Resolved { evidence, .. } if evidence.basis == Basis::Baseline
    )));
    assert!(d.active().is_empty());
    let after = events(&mut d, &mut p, 2 * MIN, 500);
    assert!(after.is_empty(), "{after:?}");

    // backend-1 at about 3.1x: over 2.5x, it stays firing across the change.
    let (mut p, mut d) = warmed(500, 9);
    p.drawn[0] = 10.0;
    let before = events(&mut d, &mut p, 20, 500);
    assert_eq!(count(&before, true, "backend-1", AlertKind::OverShare), 1);
    // The others' under-shares (about 0.3x) resolve at the change.
    let unders = before
        .iter()
        .filter(|ev| matches!(ev, AlertEvent::Fired(e) if e.kind == AlertKind::UnderShare))
        .count();
    let ended = d.retune(latency_aware(), p.now);
    assert_eq!(ended.len(), unders, "{before:?}\n{ended:?}");
    assert!(
        ended.iter().all(|ev| matches!(
            ev,
            AlertEvent::Resolved { evidence, .. } if evidence.kind == AlertKind::UnderShare
        )),
        "{ended:?}"
    );
    let after = events(&mut d, &mut p, MIN, 500);
    assert_eq!(count(&after, true, "backend-1", AlertKind::OverShare), 0);
    assert_eq!(count(&after, false, "backend-1", AlertKind::OverShare), 0);
    assert!(d.active().iter().any(|e| e.backend == "backend-1"));
    p.drawn[0] = 1.0;
    let after = events(&mut d, &mut p, MIN, 500);
    assert_eq!(count(&after, false, "backend-1", AlertKind::OverShare), 1);
    assert!(d.active().is_empty(), "{:?}", d.active());
}

/// A policy change that keeps the tuning (round robin to random, or to a hash policy:
/// the watch tunes them alike) changes nothing for the alerts firing: one held in its
/// hysteresis band (under the firing ratio, over the resolving one) goes on firing.
#[test]
fn a_policy_change_with_the_same_tuning_resolves_nothing() {
    let (mut p, mut d) = warmed(500, 9);
    // backend-1 at about 2.1x fires, then holds at about 1.35x: between 1.25x and 1.5x.
    p.drawn[0] = 2.5;
    let before = events(&mut d, &mut p, 20, 500);
    assert_eq!(count(&before, true, "backend-1", AlertKind::OverShare), 1);
    p.drawn[0] = 1.53;
    let held = events(&mut d, &mut p, 100, 500);
    assert_eq!(
        count(&held, false, "backend-1", AlertKind::OverShare),
        0,
        "{held:?}"
    );
    assert!(d.active().iter().any(|e| e.backend == "backend-1"));
    let ended = d.retune(DetectorConfig::default(), p.now);
    assert!(ended.is_empty(), "{ended:?}");
    assert!(d.active().iter().any(|e| e.backend == "backend-1"));
}
