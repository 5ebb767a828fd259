//! Seeded latency scenarios for the latency-outlier rule: per-request latencies drawn
//! from a log-normal, with short stalls of the whole proxy (a CPU hog beside it) that slow
//! whichever requests are in flight on every backend alike, and optionally one backend
//! that is really slower.

use super::{multinomial, SplitMix64};
use crate::detector::{
    AlertEvent, AlertKind, BackendSample, DetectorConfig, PoolDetector, PoolTick, LATENCY_BOUNDS_MS,
};

/// The simulated proxy keeps the binary's histogram, plus an overflow bucket.
const BOUNDS_MS: [f64; 14] = LATENCY_BOUNDS_MS;

/// A pool of equal backends under latency noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyScenario {
    /// Backends in the pool.
    pub backends: usize,
    /// Requests per tick.
    pub rps: u64,
    /// Seed of the draws.
    pub seed: u64,
    /// Median latency of a healthy backend, ms.
    pub median_ms: f64,
    /// Probability that a tick contains a stall of the whole proxy.
    pub stall_probability: f64,
    /// Longest stall, ms (each stall lasts uniformly up to this).
    pub max_stall_ms: f64,
}

impl LatencyScenario {
    /// The noisy machine: a stall in one tick of ten, up to 300 ms.
    pub fn noisy(backends: usize, rps: u64, seed: u64) -> Self {
        Self {
            backends,
            rps,
            seed,
            median_ms: 5.0,
            stall_probability: 0.1,
            max_stall_ms: 300.0,
        }
    }
}

/// Drives a [`PoolDetector`] with simulated latencies.
#[derive(Debug)]
pub struct LatencySim {
    /// The detector under test.
    pub detector: PoolDetector,
    rng: SplitMix64,
    s: LatencyScenario,
    requests: Vec<u64>,
    now_ms: u64,
}

impl LatencySim {
    /// A simulation of `s`, its detector built with `cfg`.
    pub fn new(s: LatencyScenario, cfg: DetectorConfig) -> Self {
        Self {
            detector: PoolDetector::new("sim", cfg),
            rng: SplitMix64::new(s.seed),
            s,
            requests: vec![0; s.backends],
            now_ms: 0,
        }
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.rng.next_f64().max(1e-12);
        let u2 = self.rng.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// One tick; backend 0's latencies are multiplied by `slow`. Returns the events.
    pub fn step(&mut self, slow: f64) -> Vec<AlertEvent> {
        let k = self.s.backends;
        let mut counts = vec![0u64; k];
        multinomial(
            &mut self.rng,
            self.s.rps,
            &vec![1.0 / k as f64; k],
            &mut counts,
        );
        let stall = if self.rng.next_f64() < self.s.stall_probability {
            self.rng.next_f64() * self.s.max_stall_ms
        } else {
            0.0
        };
        self.now_ms += 1000;
        let mut backends = Vec::with_capacity(k);
        for (i, &n) in counts.iter().enumerate() {
            let mut hist = [0u64; BOUNDS_MS.len() + 1];
            let mut sum = 0.0;
            for _ in 0..n {
                let mut l = self.s.median_ms * (0.5 * self.normal()).exp();
                if i == 0 {
                    l *= slow;
                }
                // A request in flight during the stall waits for part of it.
                if stall > 0.0 && self.rng.next_f64() < stall / 1000.0 {
                    l += self.rng.next_f64() * stall;
                }
                sum += l;
                hist[BOUNDS_MS.partition_point(|b| *b < l)] += 1;
            }
            self.requests[i] += n;
            backends.push(BackendSample {
                name: format!("b{i}"),
                configured_weight: 1.0,
                effective_weight: 1.0,
                requests: self.requests[i],
                latency_sum_ms: sum,
                latency_count: n,
                latency_buckets: hist.to_vec(),
                ..BackendSample::default()
            });
        }
        let tick = PoolTick {
            now_ms: self.now_ms,
            backends,
            ..PoolTick::default()
        };
        self.detector.tick(&tick).events
    }
}

fn latency_active(d: &PoolDetector) -> bool {
    d.active().iter().any(|e| e.kind == AlertKind::Latency)
}

/// Fraction of `ticks` ticks (all backends alike) with a latency alert active.
pub fn latency_false_alarm_rate(s: LatencyScenario, cfg: &DetectorConfig, ticks: u64) -> f64 {
    let mut sim = LatencySim::new(s, cfg.clone());
    let mut alarmed = 0u64;
    for _ in 0..ticks {
        sim.step(1.0);
        if latency_active(&sim.detector) {
            alarmed += 1;
        }
    }
    alarmed as f64 / ticks as f64
}

/// Ticks from backend 0 becoming `slow` times slower (after `warmup` ticks) until its
/// latency alert fires; `None` if not within `limit`.
pub fn latency_detection_ticks(
    s: LatencyScenario,
    cfg: &DetectorConfig,
    warmup: u64,
    slow: f64,
    limit: u64,
) -> Option<u64> {
    let mut sim = LatencySim::new(s, cfg.clone());
    for _ in 0..warmup {
        sim.step(1.0);
    }
    (1..=limit).find(|_| {
        sim.step(slow).iter().any(|e| {
            matches!(e, AlertEvent::Fired(ev) if ev.backend == "b0" && ev.kind == AlertKind::Latency)
        })
    })
}

/// One row: false alarms over `ticks` and detection of a `slow`-fold slowdown over
/// `trials` seeds (sorted, `None` last).
pub fn latency_row(
    s: LatencyScenario,
    cfg: &DetectorConfig,
    ticks: u64,
    trials: u64,
    slow: f64,
) -> (f64, Vec<Option<u64>>) {
    let rate = latency_false_alarm_rate(s, cfg, ticks);
    let mut d: Vec<Option<u64>> = (0..trials)
        .map(|t| {
            let s = LatencyScenario {
                seed: s.seed.wrapping_add(1000 + t),
                ..s
            };
            latency_detection_ticks(s, cfg, 60, slow, 120)
        })
        .collect();
    d.sort_by_key(|x| x.unwrap_or(u64::MAX));
    (rate, d)
}

/// The noise levels of the latency table: (name, stall probability per tick, longest
/// stall in ms).
pub const NOISE: [(&str, f64, f64); 3] = [
    ("stall in 1 tick of 10, up to 300 ms", 0.1, 300.0),
    ("stall in 3 ticks of 10, up to 60 ms", 0.3, 60.0),
    ("CPU hog: stall in 1 tick of 2, up to 150 ms", 0.5, 150.0),
];

/// The latency table as Markdown: false-alarm ticks (of `ticks`) and detection of a 4x
/// slower backend (20 seeds, limit 120 s) per pool size, rate and noise level.
pub fn latency_table(cfg: &DetectorConfig, ticks: u64) -> String {
    let mut out = format!(
        "| backends | requests/s | noise | false-alarm ticks (of {ticks}) | detection of 4x slower, median | worst |\n|---|---|---|---|---|---|\n"
    );
    let fmt = |d: Option<&Option<u64>>| match d.copied().flatten() {
        Some(t) => format!("{t} s"),
        None => "not detected".into(),
    };
    for (k, rps) in [(3usize, 30u64), (4, 200), (4, 400), (10, 500), (10, 1000)] {
        for (label, p, max) in NOISE {
            let s = LatencyScenario {
                stall_probability: p,
                max_stall_ms: max,
                ..LatencyScenario::noisy(k, rps, 0x1a7 ^ rps)
            };
            let (rate, d) = latency_row(s, cfg, ticks, 20, 4.0);
            out.push_str(&format!(
                "| {k} | {rps} | {label} | {:.3}% | {} | {} |\n",
                rate * 100.0,
                fmt(d.get(d.len() / 2)),
                fmt(d.last())
            ));
        }
    }
    out
}
