use std::time::Duration;

use super::*;
use crate::config::{HealthCheck, HealthKind};
use crate::diag::Span;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn fail() -> Probe {
    Probe::fail("status 500")
}

/// Feeds `results` one second apart starting at `start`; returns the transitions.
fn feed(h: &mut HealthState, start: u64, results: &[bool]) -> Vec<Transition> {
    results
        .iter()
        .enumerate()
        .filter_map(|(i, &ok)| {
            let p = if ok { Probe::Pass } else { fail() };
            h.record(p, s(start + i as u64))
        })
        .collect()
}

#[test]
fn starts_healthy_and_never_changed() {
    let h = HealthState::with_thresholds(2, 3);
    assert!(h.is_healthy());
    assert_eq!(h.recovered_at(), None);
    assert_eq!(h.changed_at(), None);
    assert_eq!(h.last_failure(), None);
}

#[test]
fn new_backend_failing_first_fall_probes_goes_down_exactly_then() {
    let mut h = HealthState::with_thresholds(2, 3);
    assert_eq!(h.record(fail(), s(1)), None);
    assert_eq!(h.record(fail(), s(2)), None);
    assert!(h.is_healthy());
    let t = h.record(fail(), s(3)).expect("third failure flips");
    assert_eq!(
        t,
        Transition {
            healthy: false,
            at: s(3),
            reason: "3 consecutive failed probes: status 500".into()
        }
    );
    assert!(!h.is_healthy());
    assert_eq!(h.changed_at(), Some(s(3)));
    assert_eq!(h.recovered_at(), None, "going down is not a recovery");
}

#[test]
fn a_pass_resets_the_failure_streak() {
    let mut h = HealthState::with_thresholds(2, 3);
    let t = feed(
        &mut h,
        0,
        &[false, false, true, false, false, true, false, false],
    );
    assert!(t.is_empty(), "never three failures in a row: {t:?}");
    assert!(h.is_healthy());
    assert_eq!(h.streak(), 2);
}

#[test]
fn rise_needs_consecutive_passes_and_sets_recovered_at() {
    let mut h = HealthState::with_thresholds(2, 1);
    assert!(h.record(fail(), s(1)).is_some());
    // A single pass then a failure: not enough.
    assert_eq!(h.record(Probe::Pass, s(2)), None);
    assert_eq!(h.record(fail(), s(3)), None);
    assert!(!h.is_healthy());
    assert_eq!(h.record(Probe::Pass, s(4)), None);
    let t = h.record(Probe::Pass, s(5)).expect("second pass in a row");
    assert!(t.healthy);
    assert_eq!(t.at, s(5));
    assert_eq!(t.reason, "2 consecutive passed probes");
    assert_eq!(h.recovered_at(), Some(s(5)));
    assert_eq!(h.changed_at(), Some(s(5)));
}

#[test]
fn thresholds_of_one_flip_on_every_disagreeing_probe() {
    let mut h = HealthState::with_thresholds(1, 1);
    let t = feed(&mut h, 10, &[false, true, false, true]);
    let states: Vec<bool> = t.iter().map(|t| t.healthy).collect();
    assert_eq!(states, [false, true, false, true]);
    assert_eq!(t[0].reason, "1 consecutive failed probe: status 500");
    assert_eq!(h.recovered_at(), Some(s(13)));
}

#[test]
fn zero_thresholds_act_as_one() {
    let mut h = HealthState::with_thresholds(0, 0);
    assert!(h.record(fail(), s(1)).is_some());
    assert!(h.record(Probe::Pass, s(2)).is_some());
}

#[test]
fn agreeing_probes_do_not_transition() {
    let mut h = HealthState::with_thresholds(2, 2);
    assert!(feed(&mut h, 0, &[true; 10]).is_empty());
    feed(&mut h, 10, &[false, false]);
    assert!(feed(&mut h, 20, &[false; 10]).is_empty());
    assert!(!h.is_healthy());
}

#[test]
fn reason_uses_the_latest_failure() {
    let mut h = HealthState::with_thresholds(1, 2);
    h.record(Probe::fail("timed out after 1s"), s(1));
    let t = h.record(Probe::fail("connection refused"), s(2)).unwrap();
    assert_eq!(t.reason, "2 consecutive failed probes: connection refused");
    // The failure reason survives recovery, for status pages.
    h.record(Probe::Pass, s(3));
    assert_eq!(h.last_failure(), Some("connection refused"));
}

#[test]
fn reconfigure_keeps_state_and_applies_new_thresholds() {
    let mut h = HealthState::with_thresholds(2, 5);
    feed(&mut h, 0, &[false, false]);
    h.reconfigure(2, 3);
    assert!(h.is_healthy(), "a reload is not evidence");
    let t = h
        .record(fail(), s(5))
        .expect("third failure reaches the new fall");
    assert!(!t.healthy);
}

#[test]
fn new_reads_thresholds_from_config() {
    let cfg = HealthCheck {
        kind: HealthKind::Http,
        service: String::new(),
        path: "/healthz".into(),
        method: "GET".into(),
        host: None,
        expect: vec![(200, 399)],
        interval: s(5),
        timeout: s(1),
        jitter: 0.1,
        rise: 4,
        fall: 2,
        span: Span::default(),
    };
    let mut h = HealthState::new(&cfg);
    assert!(feed(&mut h, 0, &[false]).is_empty());
    assert_eq!(feed(&mut h, 1, &[false]).len(), 1);
    assert!(feed(&mut h, 2, &[true, true, true]).is_empty());
    assert_eq!(feed(&mut h, 5, &[true]).len(), 1);
}

#[test]
fn http_status_against_expect_ranges() {
    let expect = [(200, 299), (304, 304)];
    assert_eq!(evaluate_http(200, &expect), Probe::Pass);
    assert_eq!(evaluate_http(299, &expect), Probe::Pass);
    assert_eq!(evaluate_http(304, &expect), Probe::Pass);
    assert_eq!(
        evaluate_http(300, &expect),
        Probe::fail("status 300 (expected 200-299, 304)")
    );
    assert_eq!(
        evaluate_http(199, &expect),
        Probe::fail("status 199 (expected 200-299, 304)")
    );
    assert!(!evaluate_http(500, &[(200, 399)]).passed());
    assert_eq!(
        evaluate_http(200, &[]),
        Probe::fail("status 200 (expected nothing)")
    );
}

#[test]
fn probe_delay_without_jitter_is_the_interval() {
    for r in [0, 1, u64::MAX / 2, u64::MAX] {
        assert_eq!(next_probe_delay(s(5), 0.0, r), s(5));
        assert_eq!(next_probe_delay(s(5), f64::NAN, r), s(5));
    }
}

#[test]
fn probe_delay_extremes_of_random_hit_the_jitter_bounds() {
    let iv = Duration::from_millis(10_000);
    assert_eq!(next_probe_delay(iv, 0.2, 0), Duration::from_millis(8_000));
    let top = next_probe_delay(iv, 0.2, u64::MAX);
    assert!(top <= Duration::from_millis(12_000), "{top:?}");
    assert!(top > Duration::from_millis(11_999), "{top:?}");
    // The midpoint of the u64 range is the interval itself.
    assert_eq!(next_probe_delay(iv, 0.2, 1u64 << 63), iv);
}

#[test]
fn probe_delay_stays_within_bounds_and_spreads() {
    let iv = s(10);
    let (lo, hi) = (s(9), s(11));
    // A fixed-seed xorshift: deterministic and spread over the whole u64 range.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut below = 0;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let d = next_probe_delay(iv, 0.1, x);
        assert!(d >= lo && d <= hi, "{d:?} outside [9s, 11s]");
        if d < iv {
            below += 1;
        }
    }
    // Symmetric around the interval: about half below (binomial sd = 50).
    assert!((4_700..5_300).contains(&below), "{below} of 10000 below");
}

#[test]
fn probe_delay_clamps_jitter() {
    assert_eq!(next_probe_delay(s(4), 3.0, 0), Duration::ZERO);
    assert_eq!(next_probe_delay(s(4), -1.0, 0), s(4));
}
