//! A backend out of rotation (ejected, unhealthy, draining) and back. An ejection is
//! not a shift, and however long it lasts the baseline must not learn the backend's 0%
//! as its norm: it did after `adopt_after_ms` (fifteen minutes), and the backend's
//! return to its configured share then fired an over-share of about 270x a minute or
//! so later, which resolved only a quarter of an hour after that. Seeded traffic and a
//! synthetic clock.

use super::*;
use crate::detector::PoolDetector;
use crate::journal::{attribute, Event, EventKind};

const RATES: [(u64, u64); 3] = [(100, 1), (500, 2), (1000, 3)];

/// Runs `ticks` ticks; returns what fired and what resolved.
fn events(d: &mut ShiftDetector, p: &mut Pool, ticks: u32, rps: u64) -> [Vec<Evidence>; 2] {
    let (mut fired, mut resolved) = (Vec::new(), Vec::new());
    run(d, p, ticks, rps, &mut fired, &mut resolved);
    [fired, resolved]
}

/// `ticks` more ticks, their fired and resolved alerts added to `seen`.
fn more(d: &mut ShiftDetector, p: &mut Pool, ticks: u32, rps: u64, seen: &mut [Vec<Evidence>; 2]) {
    let [fired, resolved] = seen;
    run(d, p, ticks, rps, fired, resolved);
}

/// backend-2 out for two, twenty (past the adoption time) and 120 minutes, then back
/// for half an hour: nothing fires or resolves, and the baseline keeps its share.
#[test]
fn a_backend_back_from_a_long_ejection_is_no_shift() {
    for (rps, seed) in RATES {
        for out in [2, 20, 120] {
            let (mut p, mut d) = warmed(rps, seed);
            p.eligible[1] = false;
            let seen = events(&mut d, &mut p, out * MIN, rps);
            assert!(
                seen.iter().all(Vec::is_empty),
                "rps {rps}, out {out} min: {seen:?}"
            );
            let b2 = d.baseline()[1].1;
            assert!(
                (b2 - 0.25).abs() < 0.01,
                "rps {rps}, out {out} min: backend-2's baseline: {b2}"
            );
            p.eligible[1] = true;
            let seen = events(&mut d, &mut p, 30 * MIN, rps);
            assert!(
                seen.iter().all(Vec::is_empty),
                "rps {rps}, out {out} min: back: {seen:?}"
            );
            let b = d.baseline();
            assert!(
                b.iter().all(|(_, s)| (s - 0.25).abs() < 0.01),
                "rps {rps}: {b:?}"
            );
        }
    }
}

/// An outlier ejected and returned again and again (20 s out, 40 s in, for an hour):
/// each tick's expectation follows the rotation, so the flapping is no shift.
#[test]
fn a_backend_flapping_in_and_out_of_rotation_is_no_shift() {
    for (rps, seed) in RATES {
        let (mut p, mut d) = warmed(rps, seed);
        for _ in 0..60 {
            p.eligible[1] = false;
            let seen = events(&mut d, &mut p, 20, rps);
            assert!(seen.iter().all(Vec::is_empty), "rps {rps}: out: {seen:?}");
            p.eligible[1] = true;
            let seen = events(&mut d, &mut p, 40, rps);
            assert!(seen.iter().all(Vec::is_empty), "rps {rps}: in: {seen:?}");
        }
        let b2 = d.baseline()[1].1;
        assert!((b2 - 0.25).abs() < 0.01, "rps {rps}: {b2}");
    }
}

/// Back under slow start (its weight ramping from a tenth to all of it over a minute):
/// the expectation follows the ramp, and the baseline learns nothing from it.
#[test]
fn a_backend_ramping_back_in_slow_start_is_no_shift() {
    for (rps, seed) in RATES {
        let (mut p, mut d) = warmed(rps, seed);
        p.eligible[1] = false;
        let mut seen = events(&mut d, &mut p, 20 * MIN, rps);
        p.eligible[1] = true;
        for s in 0..60 {
            p.ramp[1] = 0.1 + 0.9 * f64::from(s) / 60.0;
            more(&mut d, &mut p, 1, rps, &mut seen);
        }
        p.ramp[1] = 1.0;
        more(&mut d, &mut p, 30 * MIN, rps, &mut seen);
        assert!(seen.iter().all(Vec::is_empty), "rps {rps}: {seen:?}");
    }
}

/// A detector that starts while backend-2 is out (tango restarted during an outage)
/// starts from the configured split, not the eligible set's, so backend-2's return is
/// no shift either.
#[test]
fn a_backend_out_of_rotation_when_the_detector_starts_is_expected_back() {
    for (rps, seed) in RATES {
        let mut p = Pool::new(&[10.0; 4]);
        p.rng = SplitMix64::new(seed);
        p.eligible[1] = false;
        let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
        let mut seen = events(&mut d, &mut p, 20 * MIN, rps);
        p.eligible[1] = true;
        more(&mut d, &mut p, 30 * MIN, rps, &mut seen);
        assert!(seen.iter().all(Vec::is_empty), "rps {rps}: {seen:?}");
    }
}

/// The reverse: backend-2 comes back from twenty minutes out and really does take three
/// times its share (9 of 12 parts), at once or two minutes later. Both detectors fire
/// within seconds on backend-2, dated at the jump; the shift detector blames no
/// configuration change (there was none), the share detector measures against the
/// eligible set.
#[test]
fn a_backend_back_from_a_long_ejection_that_takes_three_times_its_share_fires() {
    for (rps, seed) in RATES {
        for after in [0, 2 * MIN] {
            let (mut p, mut d) = warmed(rps, seed);
            let mut share = PoolDetector::new("web", DetectorConfig::default());
            let mut tick = |p: &mut Pool, d: &mut ShiftDetector| {
                let t = p.tick(rps);
                let mut fired = share.tick(&t).events;
                fired.extend(d.tick(&t).events);
                fired.into_iter().filter_map(|e| match e {
                    AlertEvent::Fired(e) => Some(e),
                    AlertEvent::Resolved { .. } => None,
                })
            };
            p.eligible[1] = false;
            for _ in 0..20 * MIN {
                tick(&mut p, &mut d).for_each(drop);
            }
            p.eligible[1] = true;
            for _ in 0..after {
                let fired: Vec<_> = tick(&mut p, &mut d).collect();
                assert!(fired.is_empty(), "rps {rps}: back: {fired:?}");
            }
            p.drawn[1] = 9.0;
            let at = p.now + 500;
            let mut fired = Vec::new();
            for _ in 0..5 {
                fired.extend(tick(&mut p, &mut d));
            }
            let by = |basis| {
                fired
                    .iter()
                    .find(|e| e.basis == basis && e.kind == AlertKind::OverShare)
                    .unwrap_or_else(|| panic!("rps {rps}, after {after} s: {basis:?}: {fired:?}"))
            };
            for e in [by(Basis::Baseline), by(Basis::Effective)] {
                let when = format!("rps {rps}, {after} s after the return: {e:?}");
                assert_eq!(e.backend, "backend-2", "{when}");
                assert!(e.at_ms <= at + 3000, "late: {when}");
                assert!(e.onset_ms + 2000 >= at && e.onset_ms <= at + 1000, "{when}");
                assert!(e.ratio > 2.4 && e.ratio < 3.6, "{when}");
            }
            assert_eq!(by(Basis::Baseline).cause, Cause::Unknown);
            assert_eq!(by(Basis::Effective).cause, Cause::Config);
        }
    }
}

/// A weight typo while backend-2 is out (backend-1 from 10 to 100: 100 of 120 in
/// rotation, against a third) fires within seconds and is blamed on the configuration.
#[test]
fn a_weight_typo_while_a_backend_is_out_fires() {
    for (rps, seed) in RATES {
        let (mut p, mut d) = warmed(rps, seed);
        p.eligible[1] = false;
        let [fired, _] = events(&mut d, &mut p, 20 * MIN, rps);
        assert!(fired.is_empty(), "rps {rps}: {fired:?}");
        p.weights[0] = 100.0;
        let at = p.now + 500;
        let [fired, _] = events(&mut d, &mut p, 5, rps);
        let e = over_share(&fired, "backend-1").expect("the typo fires");
        assert!(e.at_ms <= at + 3000, "rps {rps}: late: {e:?}");
        assert_eq!(e.cause, Cause::Config, "rps {rps}");
        assert!(e.ratio > 2.2 && e.ratio < 2.8, "rps {rps}: {e:?}");
    }
}

/// A shift that fires (backend-3 takes half the pool, 2x: a hot key, say) and lasts is
/// adopted fifteen minutes after it fired. backend-2, out for ten of those minutes,
/// is adopted at its share of the time it was in rotation (1/6), not at the third of
/// it that its requests since the alert make: that fired again on its return.
#[test]
fn a_shift_adopted_while_a_backend_was_out_keeps_that_backends_share() {
    for (rps, seed) in RATES {
        let (mut p, mut d) = warmed(rps, seed);
        p.drawn[2] = 3.0;
        let [fired, _] = events(&mut d, &mut p, 2 * MIN, rps);
        assert!(
            over_share(&fired, "backend-3").is_some(),
            "rps {rps}: {fired:?}"
        );
        p.eligible[1] = false;
        events(&mut d, &mut p, 10 * MIN, rps);
        p.eligible[1] = true;
        let [_, resolved] = events(&mut d, &mut p, 5 * MIN, rps);
        assert!(
            resolved.iter().any(|e| e.backend == "backend-3"),
            "rps {rps}: adopted: {resolved:?}"
        );
        let b2 = d.baseline()[1].1;
        assert!((b2 - 1.0 / 6.0).abs() < 0.015, "rps {rps}: {b2}");
        let [fired, _] = events(&mut d, &mut p, 30 * MIN, rps);
        assert!(fired.is_empty(), "rps {rps}: after adoption: {fired:?}");
    }
}

/// The tick a backend comes back in holds only part of a tick of it. Its effective
/// weight for that tick is its weight times that part (the watch scales it so), and the
/// tick is no shift: at 500 requests/s and more, a backend back within the first half
/// of a tick at its full weight would read as an under-share of 0.1-0.4x and fire.
#[test]
fn the_tick_a_backend_comes_back_in_is_no_shift() {
    for (rps, seed) in RATES {
        for part in [0.05, 0.3, 0.5, 0.9] {
            let (mut p, mut d) = warmed(rps, seed);
            p.eligible[1] = false;
            let mut seen = events(&mut d, &mut p, MIN, rps);
            p.eligible[1] = true;
            p.ramp[1] = part;
            more(&mut d, &mut p, 1, rps, &mut seen);
            p.ramp[1] = 1.0;
            more(&mut d, &mut p, 5 * MIN, rps, &mut seen);
            assert!(
                seen.iter().all(Vec::is_empty),
                "rps {rps}, part {part}: {seen:?}"
            );
        }
    }
}

/// backend-2 is ejected; a while later backend-3 takes twice its share among the three
/// in rotation (4 of 6 parts against a third: a hot key, say). The shift detector fires
/// on backend-3 within seconds, dated at the jump, with no configuration change to
/// blame; and the ejection, long before the onset and of another backend, is not named
/// as its cause. The shift detector used to drop every alert not brought by a weight
/// change while any backend was out (the shares in rotation then differ from the
/// configured ones), leaving the shift to the share detector alone.
#[test]
fn a_shift_while_a_backend_is_out_fires_and_is_not_blamed_on_the_ejection() {
    for (rps, seed) in RATES {
        for out in [MIN, 20 * MIN] {
            let (mut p, mut d) = warmed(rps, seed);
            p.eligible[1] = false;
            let ejected_at = p.now + 500;
            let [fired, _] = events(&mut d, &mut p, out, rps);
            assert!(fired.is_empty(), "rps {rps}: out: {fired:?}");
            p.drawn[2] = 4.0;
            let at = p.now + 500;
            let [fired, _] = events(&mut d, &mut p, 5, rps);
            let when = format!("rps {rps}, {out} s out: {fired:?}");
            let e = over_share(&fired, "backend-3").unwrap_or_else(|| panic!("{when}"));
            assert!(e.at_ms <= at + 3000, "late: {when}");
            assert!(e.onset_ms + 2000 >= at && e.onset_ms <= at + 1000, "{when}");
            assert!(e.ratio > 1.7 && e.ratio < 2.3, "{when}");
            assert_eq!(e.cause, Cause::Unknown, "{when}");
            assert!(
                fired.iter().all(|e| e.backend != "backend-2"),
                "the backend out is no part of it: {when}"
            );
            let journal = [Event {
                ts_ms: ejected_at,
                generation: 1,
                kind: EventKind::Ejected {
                    pool: "web".into(),
                    backend: "backend-2".into(),
                    reason: "5 consecutive failures".into(),
                },
            }];
            let c = attribute(e, &journal);
            assert_eq!(c.class, Cause::Unknown, "{when}: {}", c.sentence);
            assert_eq!(c.backend, None, "{when}: {}", c.sentence);
        }
    }
}

/// backend-2 comes back under slow start (its weight ramping from a tenth to all of it
/// over a minute) and at once takes its full share, ten times its ramped one at first.
/// The shift detector, whose expectation during the ramp is the ramped share, fires on
/// backend-2 during the ramp, dated at the return, as the share detector does (within
/// seconds at 500 requests/s and more; at 100 the few requests a ramped share expects
/// take a while to be enough). It used to leave it to the share detector until the ramp
/// ended.
#[test]
fn a_backend_back_in_slow_start_that_takes_its_full_share_at_once_fires() {
    for (rps, seed) in RATES {
        let (mut p, mut d) = warmed(rps, seed);
        let mut share = PoolDetector::new("web", DetectorConfig::default());
        p.eligible[1] = false;
        for _ in 0..20 * MIN {
            let t = p.tick(rps);
            share.tick(&t);
            d.tick(&t);
        }
        p.eligible[1] = true;
        let at = p.now + 500;
        let mut fired = Vec::new();
        for s in 0..60 {
            p.ramp[1] = 0.1 + 0.9 * f64::from(s) / 60.0;
            // Whatever the ramp says, backend-2 takes a quarter of the pool.
            p.drawn[1] = 1.0 / p.ramp[1];
            let t = p.tick(rps);
            fired.extend(share.tick(&t).events);
            fired.extend(d.tick(&t).events);
        }
        let fired: Vec<Evidence> = fired
            .into_iter()
            .filter_map(|e| match e {
                AlertEvent::Fired(e) => Some(e),
                AlertEvent::Resolved { .. } => None,
            })
            .collect();
        for basis in [Basis::Baseline, Basis::Effective] {
            let when = format!("rps {rps}, {basis:?}: {fired:?}");
            let e = fired
                .iter()
                .find(|e| e.basis == basis && e.kind == AlertKind::OverShare)
                .unwrap_or_else(|| panic!("{when}"));
            assert_eq!(e.backend, "backend-2", "{when}");
            assert!(rps < 500 || e.at_ms <= at + 3000, "late: {when}");
            assert!(e.onset_ms + 2000 >= at && e.onset_ms <= at + 1000, "{when}");
            assert!(e.ratio > 2.0, "{when}");
        }
    }
}

/// The same for a backend a reload adds under slow start: backend-5 joins four of
/// weight 10 at weight 10 and at once takes its full fifth of the pool, against the
/// tenth of its weight it ramps up from. Both detectors fire on backend-5 during the
/// ramp, dated at its arrival.
#[test]
fn a_backend_added_in_slow_start_that_takes_its_full_share_at_once_fires() {
    for (rps, seed) in RATES {
        let (mut p, mut d) = warmed(rps, seed);
        let mut share = PoolDetector::new("web", DetectorConfig::default());
        for _ in 0..MIN {
            let t = p.tick(rps);
            share.tick(&t);
            d.tick(&t);
        }
        p.names.push("backend-5".into());
        p.weights.push(10.0);
        p.eligible.push(true);
        p.ramp.push(0.1);
        p.drawn.push(10.0);
        p.counts.push(0);
        let at = p.now + 500;
        let mut fired = Vec::new();
        for s in 0..60 {
            p.ramp[4] = 0.1 + 0.9 * f64::from(s) / 60.0;
            p.drawn[4] = 1.0 / p.ramp[4];
            let t = p.tick(rps);
            for ev in share.tick(&t).events.into_iter().chain(d.tick(&t).events) {
                if let AlertEvent::Fired(e) = ev {
                    fired.push(e);
                }
            }
        }
        for basis in [Basis::Baseline, Basis::Effective] {
            let when = format!("rps {rps}, {basis:?}: {fired:?}");
            let e = fired
                .iter()
                .find(|e| e.basis == basis && e.kind == AlertKind::OverShare)
                .unwrap_or_else(|| panic!("{when}"));
            assert_eq!(e.backend, "backend-5", "{when}");
            assert!(rps < 500 || e.at_ms <= at + 4000, "late: {when}");
            assert!(e.onset_ms + 2000 >= at && e.onset_ms <= at + 2000, "{when}");
        }
    }
}
