use super::*;
use crate::detector::sim::{multinomial, SplitMix64};
use crate::detector::{BackendSample, Evidence};

mod ejection;
mod policy;
mod ramp;
mod sub_threshold;

struct Pool {
    names: Vec<String>,
    weights: Vec<f64>,
    eligible: Vec<bool>,
    /// Each backend's slow-start factor: its effective weight is its weight times this.
    ramp: Vec<f64>,
    /// What traffic does that the weights do not say (a hot key, a policy's drift):
    /// each backend's draws are weighted by this too, its reported weight is not.
    drawn: Vec<f64>,
    counts: Vec<u64>,
    rng: SplitMix64,
    now: u64,
}

impl Pool {
    fn new(weights: &[f64]) -> Self {
        Pool {
            names: (1..=weights.len())
                .map(|i| format!("backend-{i}"))
                .collect(),
            weights: weights.to_vec(),
            eligible: vec![true; weights.len()],
            ramp: vec![1.0; weights.len()],
            drawn: vec![1.0; weights.len()],
            counts: vec![0; weights.len()],
            rng: SplitMix64::new(7),
            now: 1_000_000,
        }
    }

    /// One second of `rps` requests split by the effective weights.
    fn tick(&mut self, rps: u64) -> PoolTick {
        let eff: Vec<f64> = self
            .weights
            .iter()
            .zip(&self.eligible)
            .zip(&self.ramp)
            .map(|((w, e), r)| if *e { w * r } else { 0.0 })
            .collect();
        let drawn: Vec<f64> = eff.iter().zip(&self.drawn).map(|(w, d)| w * d).collect();
        let sum: f64 = drawn.iter().sum();
        let p: Vec<f64> = drawn.iter().map(|w| w / sum).collect();
        let mut out = vec![0; p.len()];
        multinomial(&mut self.rng, rps, &p, &mut out);
        for (c, o) in self.counts.iter_mut().zip(&out) {
            *c += o;
        }
        self.now += 1000;
        PoolTick {
            now_ms: self.now,
            backends: self
                .names
                .iter()
                .enumerate()
                .map(|(i, n)| BackendSample {
                    name: n.clone(),
                    configured_weight: self.weights[i],
                    effective_weight: eff[i],
                    requests: self.counts[i],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

const MIN: u32 = 60;

/// Four backends of weight 10 at `rps`, after ten balanced minutes.
fn warmed(rps: u64, seed: u64) -> (Pool, ShiftDetector) {
    let mut p = Pool::new(&[10.0; 4]);
    p.rng = SplitMix64::new(seed);
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let fired = fires(&mut d, &mut p, 10 * MIN, rps);
    assert!(fired.is_empty(), "{fired:?}");
    (p, d)
}

/// Runs `ticks` ticks; returns what fired.
fn fires(d: &mut ShiftDetector, p: &mut Pool, ticks: u32, rps: u64) -> Vec<Evidence> {
    let mut fired = Vec::new();
    run(d, p, ticks, rps, &mut fired, &mut Vec::new());
    fired
}

fn over_share<'a>(fired: &'a [Evidence], backend: &str) -> Option<&'a Evidence> {
    fired
        .iter()
        .find(|e| e.backend == backend && e.kind == AlertKind::OverShare)
}

fn under_share<'a>(fired: &'a [Evidence], backend: &str) -> Option<&'a Evidence> {
    fired
        .iter()
        .find(|e| e.backend == backend && e.kind == AlertKind::UnderShare)
}

fn run(
    d: &mut ShiftDetector,
    p: &mut Pool,
    ticks: u32,
    rps: u64,
    fired: &mut Vec<Evidence>,
    resolved: &mut Vec<Evidence>,
) {
    for _ in 0..ticks {
        for ev in d.tick(&p.tick(rps)).events {
            match ev {
                AlertEvent::Fired(e) => fired.push(e),
                AlertEvent::Resolved { evidence, .. } => resolved.push(evidence),
            }
        }
    }
}

#[test]
fn a_weight_typo_fires_within_seconds_and_reverting_resolves() {
    let mut p = Pool::new(&[1.0, 1.0, 1.0, 1.0]);
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let (mut fired, mut resolved) = (Vec::new(), Vec::new());
    run(&mut d, &mut p, 120, 500, &mut fired, &mut resolved);
    assert!(fired.is_empty(), "balanced traffic is silent: {fired:?}");

    p.weights[1] = 10.0;
    let change_at = p.now;
    run(&mut d, &mut p, 5, 500, &mut fired, &mut resolved);
    let over: Vec<&Evidence> = fired
        .iter()
        .filter(|e| e.kind == AlertKind::OverShare)
        .collect();
    assert_eq!(over.len(), 1, "{fired:?}");
    let e = over[0];
    assert_eq!(e.backend, "backend-2");
    assert_eq!(e.basis, Basis::Baseline);
    assert_eq!(e.cause, Cause::Config);
    assert!(
        e.ratio > 2.5 && e.ratio < 3.6,
        "about 3.1x its share: {}",
        e.ratio
    );
    assert!(
        e.at_ms <= change_at + 3000,
        "fired {} ms after the change",
        e.at_ms - change_at
    );
    assert!(
        e.onset_ms + 2000 >= change_at && e.onset_ms <= change_at + 1000,
        "onset {} vs change {change_at}",
        e.onset_ms
    );

    p.weights[1] = 1.0;
    run(&mut d, &mut p, 30, 500, &mut fired, &mut resolved);
    assert!(
        resolved
            .iter()
            .any(|e| e.backend == "backend-2" && e.kind == AlertKind::OverShare),
        "reverting clears it"
    );
    assert!(d.inner.active().is_empty());
}

#[test]
fn an_expected_weight_change_raises_nothing_but_a_later_shift_still_fires() {
    let mut p = Pool::new(&[1.0, 1.0, 1.0, 1.0]);
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let (mut fired, mut resolved) = (Vec::new(), Vec::new());
    run(&mut d, &mut p, 60, 500, &mut fired, &mut resolved);
    p.weights[1] = 10.0;
    let names = ["backend-1", "backend-2", "backend-3", "backend-4"];
    let shares = [1.0, 10.0, 1.0, 1.0].map(|w| w / 13.0);
    d.expect(names.iter().map(|n| n.to_string()).zip(shares).collect());
    run(&mut d, &mut p, 60, 500, &mut fired, &mut resolved);
    assert!(
        fired.is_empty(),
        "the predicted split is no shift: {fired:?}"
    );
    let b2 = d.baseline()[1].1;
    assert!((b2 - 10.0 / 13.0).abs() < 0.02, "{b2}");
    // Back to even without telling the detector: that is a shift.
    p.weights[1] = 1.0;
    run(&mut d, &mut p, 5, 500, &mut fired, &mut resolved);
    assert!(under_share(&fired, "backend-2").is_some(), "{fired:?}");
    // Expecting the split that is now served resolves the shift alerts.
    d.expect(names.iter().map(|n| (n.to_string(), 0.25)).collect());
    run(&mut d, &mut p, 1, 500, &mut fired, &mut resolved);
    assert!(
        resolved.iter().any(|e| e.backend == "backend-2"),
        "{resolved:?}"
    );
    assert!(d.active().is_empty());
}

#[test]
fn an_ejection_is_left_to_the_share_detector() {
    let mut p = Pool::new(&[1.0, 1.0, 1.0, 1.0]);
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let (mut fired, mut resolved) = (Vec::new(), Vec::new());
    run(&mut d, &mut p, 60, 500, &mut fired, &mut resolved);
    p.eligible[0] = false;
    run(&mut d, &mut p, 30, 500, &mut fired, &mut resolved);
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn a_lasting_shift_becomes_the_baseline() {
    let mut p = Pool::new(&[1.0, 1.0, 1.0]);
    let cfg = ShiftConfig {
        adopt_after_ms: 60_000,
        ..ShiftConfig::default()
    };
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), cfg);
    let (mut fired, mut resolved) = (Vec::new(), Vec::new());
    run(&mut d, &mut p, 60, 300, &mut fired, &mut resolved);
    p.weights[2] = 4.0;
    run(&mut d, &mut p, 200, 300, &mut fired, &mut resolved);
    assert!(!fired.is_empty());
    assert!(
        d.inner.active().is_empty(),
        "still alerting after adoption: {:?}",
        d.inner.active()
    );
    let b = d.baseline();
    assert!((b[2].1 - 4.0 / 6.0).abs() < 0.05, "{b:?}");
}

#[test]
fn balanced_low_traffic_stays_silent_for_an_hour() {
    for (n, rps) in [(3usize, 5u64), (10, 20), (10, 200)] {
        let mut p = Pool::new(&vec![1.0; n]);
        let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
        let (mut fired, mut resolved) = (Vec::new(), Vec::new());
        run(&mut d, &mut p, 3600, rps, &mut fired, &mut resolved);
        assert!(fired.is_empty(), "n={n} rps={rps}: {fired:?}");
    }
}

/// Fraction of balanced ticks in which the shift detector fires (any alert).
fn shift_false_alarms(n: usize, rps: u64, ticks: u32, seed: u64) -> f64 {
    let mut p = Pool::new(&vec![1.0; n]);
    p.rng = SplitMix64::new(seed);
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let mut alarmed = 0u32;
    for _ in 0..ticks {
        let r = d.tick(&p.tick(rps));
        if r.events.iter().any(|e| matches!(e, AlertEvent::Fired(_))) || !d.active().is_empty() {
            alarmed += 1;
        }
    }
    f64::from(alarmed) / f64::from(ticks)
}

#[test]
fn balanced_traffic_rarely_looks_shifted() {
    for (n, rps) in [(3, 10), (10, 100), (50, 1000)] {
        let rate = shift_false_alarms(n, rps, 1500, 11);
        assert!(rate <= 0.001, "n={n} rps={rps}: {rate}");
    }
}

/// The shift detector's false-alarm table, as BENCHMARKS.md shows it:
/// `cargo test --release -p tango-core -- --ignored shift_table --nocapture`
#[test]
#[ignore]
fn shift_table() {
    println!("| backends | requests/s | false-alarm ticks (of 10000) |");
    println!("|---|---|---|");
    for n in [3usize, 10, 50] {
        for rps in [1u64, 10, 100, 1000] {
            let rate = shift_false_alarms(n, rps, 10_000, 42);
            println!("| {n} | {rps} | {:.3}% |", rate * 100.0);
            assert!(rate <= 0.001, "n={n} rps={rps}: {rate}");
        }
    }
}

/// Stepwise drift: `backend-2`'s weight rises by one every `step_ticks` from 10 over
/// four backends of 10. Returns (share ratio at detection against the starting share,
/// ticks since the first step, the inner detector's phi then, max phi seen).
fn drift(rps: u64, step_ticks: u32, seed: u64) -> Option<(f64, u32, f64, f64)> {
    let mut p = Pool::new(&[10.0; 4]);
    p.rng = SplitMix64::new(seed);
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let (mut fired, mut resolved) = (Vec::new(), Vec::new());
    run(&mut d, &mut p, 600, rps, &mut fired, &mut resolved);
    assert!(fired.is_empty(), "{fired:?}");
    let mut max_phi: f64 = 1.0;
    for t in 1..=step_ticks * 60 {
        if t % step_ticks == 1 {
            p.weights[1] += 1.0;
        }
        let r = d.tick(&p.tick(rps));
        max_phi = max_phi.max(d.inner.phi());
        let hit = r.events.iter().any(|e| {
            matches!(e, AlertEvent::Fired(ev) if ev.backend == "backend-2" && ev.kind == AlertKind::OverShare)
        });
        if hit {
            let share = p.weights[1] / p.weights.iter().sum::<f64>();
            return Some((share / 0.25, t, d.inner.phi(), max_phi));
        }
    }
    None
}

/// A weight raised by one every 30 s (10 -> 11 -> ... over four backends of 10, 100
/// requests/s). Before the dispersion was measured against the intent as well, the
/// drift itself raised phi to its cap (4.0) and the over-share fired at 1.50-1.60x the
/// starting share (seeds 1-5: 1.55, 1.60, 1.55, 1.55, 1.50; 232-271 s after the first
/// step). Now phi stays near 1 and it fires at 1.45-1.50x (201-231 s).
#[test]
fn a_stepwise_drift_does_not_raise_its_own_yardstick() {
    for seed in 1..=5 {
        let (ratio, ticks, _, max_phi) = drift(100, 30, seed).expect("detected");
        assert!(max_phi < 2.5, "seed {seed}: phi rose to {max_phi}");
        assert!(
            ratio <= 1.5,
            "seed {seed}: fired at {ratio:.2}x after {ticks} s"
        );
        assert!(ticks <= 240, "seed {seed}: {ticks} s");
    }
}

/// Four backends fed exact per-tick counts, so a test says tick by tick what traffic did.
struct Hand {
    counts: [u64; 4],
    now: u64,
}

impl Hand {
    fn new() -> Self {
        Hand {
            counts: [0; 4],
            now: 1_000_000,
        }
    }

    /// One tick under `weights` in which each backend served `split[i]` requests.
    fn tick(&mut self, d: &mut ShiftDetector, weights: [f64; 4], split: [u64; 4]) -> TickReport {
        for (c, s) in self.counts.iter_mut().zip(split) {
            *c += s;
        }
        self.now += 1000;
        let backends = (0..4)
            .map(|i| BackendSample {
                name: format!("backend-{}", i + 1),
                configured_weight: weights[i],
                effective_weight: weights[i],
                requests: self.counts[i],
                ..Default::default()
            })
            .collect();
        d.tick(&PoolTick {
            now_ms: self.now,
            backends,
            ..Default::default()
        })
    }
}

fn fired(r: &TickReport) -> Vec<&Evidence> {
    r.events
        .iter()
        .filter_map(|e| match e {
            AlertEvent::Fired(e) => Some(e),
            AlertEvent::Resolved { .. } => None,
        })
        .collect()
}

const EVEN: [f64; 4] = [1.0; 4];
/// 80 requests/s, a low rate at which a shift takes a few ticks to be sure of.
const EVEN_SPLIT: [u64; 4] = [20; 4];
/// backend-1 at weight 4: 4/7 of 80.
const B1_HEAVY: [u64; 4] = [46, 11, 12, 11];

/// At a low rate the first tick after a reload is not yet enough to fire, so the
/// baseline learns from it; the alert a tick later is still the reload's doing, and its
/// evidence must say so, as the incident built from the journal does.
#[test]
fn a_shift_firing_after_a_quiet_tick_is_still_blamed_on_the_weight_change() {
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let mut h = Hand::new();
    for _ in 0..120 {
        assert!(fired(&h.tick(&mut d, EVEN, EVEN_SPLIT)).is_empty());
    }
    let weights = [4.0, 1.0, 1.0, 1.0];
    let quiet = h.tick(&mut d, weights, B1_HEAVY);
    assert!(fired(&quiet).is_empty(), "{quiet:?}");
    assert!(quiet.skew_score < 3.0, "a quiet tick: {}", quiet.skew_score);
    let r = h.tick(&mut d, weights, B1_HEAVY);
    let over: Vec<_> = fired(&r)
        .into_iter()
        .filter(|e| e.kind == AlertKind::OverShare)
        .collect();
    assert_eq!(over.len(), 1, "{r:?}");
    assert_eq!(over[0].backend, "backend-1");
    assert_eq!(over[0].cause, Cause::Config, "{:?}", over[0]);
}

/// The change is remembered only until the baseline has learned the split it brought:
/// a shift long after that, with the weights unchanged since, has no known cause.
#[test]
fn a_change_the_baseline_has_caught_up_with_explains_no_later_shift() {
    let mut d = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let mut h = Hand::new();
    for _ in 0..120 {
        h.tick(&mut d, EVEN, EVEN_SPLIT);
    }
    // A change of backend-1's share too small to fire or to stop the baseline learning,
    // then a quarter of an hour of the split it brings (after 100 ticks, not 1000, the
    // shift below is still blamed on it).
    let weights = [1.05, 1.0, 1.0, 0.95];
    for _ in 0..1000 {
        let r = h.tick(&mut d, weights, [21, 20, 20, 19]);
        assert!(fired(&r).is_empty() && r.skew_score < 3.0, "{r:?}");
    }
    let mut seen = Vec::new();
    for _ in 0..10 {
        let r = h.tick(&mut d, weights, B1_HEAVY);
        seen.extend(fired(&r).into_iter().cloned());
    }
    let b1 = seen
        .iter()
        .find(|e| e.backend == "backend-1" && e.kind == AlertKind::OverShare)
        .expect("the shift fires");
    assert_eq!(b1.cause, Cause::Unknown, "{b1:?}");
}
