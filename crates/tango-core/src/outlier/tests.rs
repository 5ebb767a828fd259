use std::time::Duration;

use super::*;
use crate::diag::Span;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// 3 failures, 10s base, 35s max, `percent` max ejected.
fn detector(backends: usize, percent: f64) -> OutlierDetector {
    let cfg = Outlier {
        consecutive_failures: 3,
        base_ejection: s(10),
        max_ejection: s(35),
        max_ejected_percent: percent,
        span: Span::default(),
    };
    OutlierDetector::new(&cfg, backends)
}

/// Records `n` failures of `backend` at `now`; returns the events.
fn fail(d: &mut OutlierDetector, backend: usize, n: u32, now: Duration) -> Vec<Event> {
    (0..n)
        .filter_map(|_| d.record(backend, Outcome::Failure, now))
        .collect()
}

fn ejected_at(backend: usize, until: Duration, times: u32) -> Event {
    Event::Ejected {
        backend,
        until,
        consecutive: 3,
        times_ejected: times,
    }
}

#[test]
fn ejects_exactly_at_the_threshold() {
    let mut d = detector(4, 50.0);
    assert!(fail(&mut d, 1, 2, s(1)).is_empty());
    assert!(!d.is_ejected(1));
    assert_eq!(d.consecutive_failures(1), 2);
    assert_eq!(fail(&mut d, 1, 1, s(2)), [ejected_at(1, s(12), 1)]);
    assert!(d.is_ejected(1));
    assert_eq!(d.ejected(), [false, true, false, false]);
    assert_eq!(d.ejected_count(), 1);
    assert_eq!(d.ejected_until(1), Some(s(12)));
    assert_eq!(d.next_return(), Some(s(12)));
}

#[test]
fn a_success_resets_the_streak() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 0, 2, s(1));
    assert_eq!(d.record(0, Outcome::Success, s(1)), None);
    assert_eq!(d.consecutive_failures(0), 0);
    assert!(fail(&mut d, 0, 2, s(2)).is_empty());
    assert!(!d.is_ejected(0));
}

#[test]
fn backends_count_separately() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 0, 2, s(1));
    fail(&mut d, 1, 2, s(1));
    assert!(d.ejected().iter().all(|&e| !e));
}

#[test]
fn failures_while_ejected_do_not_extend_it() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 2, 3, s(0));
    assert!(fail(&mut d, 2, 10, s(5)).is_empty());
    assert_eq!(d.ejected_until(2), Some(s(10)));
    assert_eq!(d.times_ejected(2, s(5)), 1);
}

#[test]
fn returns_when_the_ejection_ends_not_before() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 3, 3, s(0));
    assert!(d.tick(s(9)).is_empty());
    assert!(d.tick(Duration::from_millis(9_999)).is_empty());
    assert_eq!(d.tick(s(10)), [Event::Returned { backend: 3 }]);
    assert!(!d.is_ejected(3));
    assert_eq!(d.ejected_count(), 0);
    assert_eq!(d.next_return(), None);
    assert!(d.tick(s(11)).is_empty(), "returned once only");
    // Back with a clean slate: it needs a full streak again.
    assert!(fail(&mut d, 3, 2, s(12)).is_empty());
}

#[test]
fn returns_in_backend_order_when_due_together() {
    let mut d = detector(4, 100.0);
    fail(&mut d, 2, 3, s(0));
    fail(&mut d, 0, 3, s(1));
    assert_eq!(d.next_return(), Some(s(10)));
    assert_eq!(
        d.tick(s(20)),
        [
            Event::Returned { backend: 0 },
            Event::Returned { backend: 2 }
        ]
    );
}

#[test]
fn backoff_grows_with_each_ejection_up_to_the_cap() {
    let mut d = detector(4, 50.0);
    // Each time: fail right after returning, so no decay happens.
    let mut now = s(0);
    let mut lengths = Vec::new();
    for _ in 0..5 {
        let ev = fail(&mut d, 0, 3, now);
        let Some(Event::Ejected { until, .. }) = ev.first() else {
            panic!("not ejected: {ev:?}");
        };
        lengths.push((*until - now).as_secs());
        now = *until;
        assert_eq!(d.tick(now).len(), 1);
    }
    assert_eq!(lengths, [10, 20, 30, 35, 35]);
    assert_eq!(d.times_ejected(0, now), 5);
}

#[test]
fn max_below_base_caps_the_first_ejection() {
    let cfg = Outlier {
        consecutive_failures: 1,
        base_ejection: s(30),
        max_ejection: s(5),
        max_ejected_percent: 50.0,
        span: Span::default(),
    };
    let mut d = OutlierDetector::new(&cfg, 2);
    let ev = d.record(0, Outcome::Failure, s(1));
    assert!(matches!(ev, Some(Event::Ejected { until, .. }) if until == s(6)));
}

#[test]
fn ejection_count_decays_one_per_base_period_in_the_pool() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 0, 3, s(0)); // out 0..10, count 1
    d.tick(s(10));
    fail(&mut d, 0, 3, s(10)); // out 10..30, count 2
    d.tick(s(30));
    assert_eq!(d.times_ejected(0, s(30)), 2);
    assert_eq!(d.times_ejected(0, s(39)), 2, "partial period");
    assert_eq!(d.times_ejected(0, s(40)), 1);
    assert_eq!(d.times_ejected(0, s(49)), 1);
    assert_eq!(d.times_ejected(0, s(50)), 0);
    assert_eq!(d.times_ejected(0, s(500)), 0);
    // Ejected again at 45s: one decrement happened, so this is the second ejection.
    let ev = fail(&mut d, 0, 3, s(45));
    assert_eq!(ev, [ejected_at(0, s(65), 2)]);
}

#[test]
fn decay_counts_from_scheduled_return_not_from_a_late_tick() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 1, 3, s(0)); // due back at 10s
    d.tick(s(18)); // the tick comes late
    assert_eq!(d.times_ejected(1, s(20)), 0);
}

#[test]
fn decay_applied_by_tick_persists() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 1, 3, s(0));
    d.tick(s(10));
    d.tick(s(25)); // one full period since 10s
    let ev = fail(&mut d, 1, 3, s(26));
    assert_eq!(ev, [ejected_at(1, s(36), 1)]);
}

#[test]
fn max_ejected_rounding() {
    let cases: &[(usize, f64, usize)] = &[
        (0, 50.0, 0),
        (1, 50.0, 0),
        (1, 99.0, 0),
        (1, 100.0, 1),
        (2, 10.0, 1),
        (2, 50.0, 1),
        (2, 99.0, 1),
        (2, 100.0, 2),
        (3, 10.0, 1),
        (3, 50.0, 1),
        (3, 66.0, 1),
        (3, 67.0, 2),
        (3, 100.0, 3),
        (10, 10.0, 1),
        (10, 29.0, 2),
        (10, 30.0, 3),
        (10, 50.0, 5),
        (10, 250.0, 10),
        (50, 58.0, 29),
        (2, 0.0, 0),
        (10, 0.0, 0),
        (10, f64::NAN, 0),
        (10, -5.0, 0),
    ];
    for &(n, p, want) in cases {
        assert_eq!(max_ejected(n, p), want, "{n} backends at {p}%");
    }
}

#[test]
fn pool_of_two_at_half_ejects_one_then_caps() {
    let mut d = detector(2, 50.0);
    assert_eq!(fail(&mut d, 0, 3, s(0)), [ejected_at(0, s(10), 1)]);
    let ev = fail(&mut d, 1, 3, s(1));
    assert_eq!(
        ev,
        [Event::EjectionCapped {
            backend: 1,
            consecutive: 3,
            ejected: 1,
            max_ejected: 1
        }]
    );
    assert!(!d.is_ejected(1));
    // Reported once per streak.
    assert!(fail(&mut d, 1, 5, s(2)).is_empty());
    assert_eq!(d.consecutive_failures(1), 8);
    // Once backend 0 returns, backend 1's next failure ejects it.
    assert_eq!(d.tick(s(10)), [Event::Returned { backend: 0 }]);
    let ev = d.record(1, Outcome::Failure, s(11));
    assert_eq!(
        ev,
        Some(Event::Ejected {
            backend: 1,
            until: s(21),
            consecutive: 9,
            times_ejected: 1
        })
    );
    // And now backend 0 is the one capped.
    let ev = fail(&mut d, 0, 3, s(12));
    assert!(matches!(ev[..], [Event::EjectionCapped { backend: 0, .. }]));
}

#[test]
fn pool_of_two_at_low_percent_still_ejects_one() {
    let mut d = detector(2, 10.0);
    assert_eq!(fail(&mut d, 1, 3, s(0)).len(), 1);
    assert!(d.is_ejected(1));
}

#[test]
fn pool_of_three_at_half_ejects_one_at_two_thirds_ejects_two() {
    let mut d = detector(3, 50.0);
    fail(&mut d, 0, 3, s(0));
    fail(&mut d, 1, 3, s(0));
    fail(&mut d, 2, 3, s(0));
    assert_eq!(d.ejected(), [true, false, false]);

    let mut d = detector(3, 67.0);
    fail(&mut d, 0, 3, s(0));
    fail(&mut d, 1, 3, s(0));
    let ev = fail(&mut d, 2, 3, s(0));
    assert_eq!(d.ejected(), [true, true, false]);
    assert!(matches!(
        ev[..],
        [Event::EjectionCapped {
            ejected: 2,
            max_ejected: 2,
            ..
        }]
    ));
}

#[test]
fn single_backend_pool_is_not_ejected_below_100_percent() {
    let mut d = detector(1, 50.0);
    let ev = fail(&mut d, 0, 3, s(0));
    assert!(matches!(
        ev[..],
        [Event::EjectionCapped { max_ejected: 0, .. }]
    ));
    assert!(!d.is_ejected(0));
    let mut d = detector(1, 100.0);
    assert_eq!(fail(&mut d, 0, 3, s(0)).len(), 1);
}

#[test]
fn zero_percent_disables_ejection() {
    let mut d = detector(5, 0.0);
    fail(&mut d, 0, 10, s(0));
    assert_eq!(d.ejected_count(), 0);
}

#[test]
fn late_success_while_ejected_resets_the_count_but_keeps_the_ejection() {
    let mut d = detector(4, 50.0);
    fail(&mut d, 0, 3, s(0));
    assert_eq!(d.record(0, Outcome::Success, s(1)), None);
    assert!(d.is_ejected(0));
}

#[test]
fn unknown_backend_index_is_ignored() {
    let mut d = detector(2, 50.0);
    assert!(fail(&mut d, 7, 10, s(0)).is_empty());
    assert!(!d.is_ejected(7));
    assert_eq!(d.consecutive_failures(7), 0);
    assert_eq!(d.times_ejected(7, s(0)), 0);
}

#[test]
fn rebuild_carries_state_by_mapping() {
    let mut d = detector(3, 100.0);
    fail(&mut d, 0, 3, s(0));
    fail(&mut d, 2, 2, s(0));
    // New pool: old 2, a new backend, old 0 (old 1 removed).
    let cfg = Outlier {
        consecutive_failures: 3,
        base_ejection: s(10),
        max_ejection: s(35),
        max_ejected_percent: 10.0,
        span: Span::default(),
    };
    let mut n = d.rebuild(&cfg, &[Some(2), None, Some(0)]);
    assert_eq!(n.len(), 3);
    assert_eq!(n.ejected(), [false, false, true]);
    assert_eq!(n.ejected_count(), 1);
    assert_eq!(n.consecutive_failures(0), 2);
    assert_eq!(n.max_ejected(), 1);
    // The cap of the new config applies: backend 0 (old 2) is now capped.
    assert!(matches!(
        n.record(0, Outcome::Failure, s(1)),
        Some(Event::EjectionCapped { .. })
    ));
    assert_eq!(n.tick(s(10)), [Event::Returned { backend: 2 }]);
}

#[test]
fn empty_pool() {
    let mut d = detector(0, 50.0);
    assert!(d.is_empty());
    assert!(d.tick(s(1)).is_empty());
    assert_eq!(d.record(0, Outcome::Failure, s(1)), None);
}

#[test]
fn random_traffic_never_breaks_the_cap_or_the_count() {
    // Fixed-seed xorshift so the sequence is the same on every run.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (n, percent) in [(2, 50.0), (3, 50.0), (5, 20.0), (7, 60.0), (10, 100.0)] {
        let mut d = detector(n, percent);
        let max = max_ejected(n, percent);
        let mut now = Duration::ZERO;
        let mut ejections = 0;
        for _ in 0..5_000 {
            now += Duration::from_millis(next() % 400);
            let backend = (next() % n as u64) as usize;
            // Backend 0 fails most of the time, the others now and then.
            let fails = next() % 100 < if backend == 0 { 90 } else { 30 };
            let outcome = if fails {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            if let Some(Event::Ejected { until, .. }) = d.record(backend, outcome, now) {
                assert!(until > now && until - now <= s(35));
                ejections += 1;
            }
            for ev in d.tick(now) {
                let Event::Returned { backend } = ev else {
                    panic!("tick only returns: {ev:?}");
                };
                assert!(!d.is_ejected(backend));
            }
            let mask = d.ejected();
            let count = mask.iter().filter(|&&e| e).count();
            assert_eq!(count, d.ejected_count());
            assert!(count <= max, "{count} ejected > {max} of {n}");
            if let Some(t) = d.next_return() {
                assert!(t > now, "a due return was left behind by tick");
            }
        }
        assert!(ejections > 10, "{ejections} ejections with {n} backends");
    }
}
