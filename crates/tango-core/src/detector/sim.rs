//! Seeded traffic simulation for the detector: a small PRNG, a multinomial sampler and
//! the balanced / injected-skew scenarios behind the false-alarm and detection table.
//!
//! Public so the `detector_table` example and the binary's demo can drive the same code.

use super::{AlertEvent, AlertKind, BackendSample, DetectorConfig, PoolDetector, PoolTick};

mod latency;
pub use latency::{
    latency_detection_ticks, latency_false_alarm_rate, latency_row, latency_table, LatencyScenario,
    LatencySim, NOISE,
};

/// SplitMix64: tiny, fast, and good enough for Monte Carlo of this size.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Exact multinomial draw of `n` requests over `probs` (which sum to 1): one categorical
/// draw per request, as a balancer makes one choice per request. Adds into `out`.
pub fn multinomial(rng: &mut SplitMix64, n: u64, probs: &[f64], out: &mut [u64]) {
    let mut cdf = Vec::with_capacity(probs.len());
    let mut acc = 0.0;
    for p in probs {
        acc += p;
        cdf.push(acc);
    }
    for _ in 0..n {
        let u = rng.next_f64() * acc;
        let i = cdf.partition_point(|c| *c <= u).min(probs.len() - 1);
        out[i] += 1;
    }
}

/// A pool of `backends` equal-weight backends receiving `rps` requests per tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// Backends in the pool.
    pub backends: usize,
    /// Requests per tick.
    pub rps: u64,
    /// Seed of the draws.
    pub seed: u64,
}

/// Drives a [`PoolDetector`] with sampled traffic.
#[derive(Debug)]
pub struct Sim {
    /// The detector under test.
    pub detector: PoolDetector,
    rng: SplitMix64,
    scenario: Scenario,
    counts: Vec<u64>,
    now_ms: u64,
}

impl Sim {
    /// A simulation of `s`, its detector built with `cfg`.
    pub fn new(s: Scenario, cfg: DetectorConfig) -> Self {
        Self {
            detector: PoolDetector::new("sim", cfg),
            rng: SplitMix64::new(s.seed),
            scenario: s,
            counts: vec![0; s.backends],
            now_ms: 0,
        }
    }

    /// One tick; backend 0 receives `skew` times its fair share (the others share the
    /// rest evenly). Returns the tick's alert events.
    pub fn step(&mut self, skew: f64) -> Vec<AlertEvent> {
        let k = self.scenario.backends;
        let p0 = (skew / k as f64).min(1.0);
        let rest = if k > 1 {
            (1.0 - p0) / (k - 1) as f64
        } else {
            0.0
        };
        let mut probs = vec![rest; k];
        probs[0] = p0;
        multinomial(&mut self.rng, self.scenario.rps, &probs, &mut self.counts);
        self.now_ms += 1000;
        let tick = PoolTick {
            now_ms: self.now_ms,
            backends: (0..k)
                .map(|i| BackendSample {
                    name: format!("b{i}"),
                    configured_weight: 1.0,
                    effective_weight: 1.0,
                    requests: self.counts[i],
                    ..BackendSample::default()
                })
                .collect(),
            ..PoolTick::default()
        };
        self.detector.tick(&tick).events
    }
}

/// Fraction of `ticks` balanced ticks on which any alert is active.
pub fn false_alarm_rate(s: Scenario, cfg: &DetectorConfig, ticks: u64) -> f64 {
    let mut sim = Sim::new(s, cfg.clone());
    let mut alarmed = 0u64;
    for _ in 0..ticks {
        sim.step(1.0);
        if !sim.detector.active().is_empty() {
            alarmed += 1;
        }
    }
    alarmed as f64 / ticks as f64
}

/// Ticks from the start of a `skew`-fold over-share on backend 0 (after `warmup` balanced
/// ticks) until an over-share alert on it fires; `None` if not within `limit` ticks.
pub fn detection_ticks(
    s: Scenario,
    cfg: &DetectorConfig,
    warmup: u64,
    skew: f64,
    limit: u64,
) -> Option<u64> {
    let mut sim = Sim::new(s, cfg.clone());
    for _ in 0..warmup {
        sim.step(1.0);
    }
    for t in 1..=limit {
        let fired = sim.step(skew).iter().any(|e| {
            matches!(e, AlertEvent::Fired(ev) if ev.backend == "b0" && ev.kind == AlertKind::OverShare)
        });
        if fired {
            return Some(t);
        }
    }
    None
}

/// One row of the table: false-alarm rate, and detection time over `trials` seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Backends in the pool.
    pub backends: usize,
    /// Requests per second.
    pub rps: u64,
    /// Fraction of balanced ticks with an alert active.
    pub false_alarm_rate: f64,
    /// Sorted detection times in ticks; `None` for trials that did not detect in time.
    pub detections: Vec<Option<u64>>,
}

impl Row {
    /// The median detection time in ticks; `None` when the median trial missed.
    pub fn median(&self) -> Option<u64> {
        self.detections
            .get(self.detections.len() / 2)
            .copied()
            .flatten()
    }

    /// The slowest detection in ticks; `None` when some trial missed.
    pub fn worst(&self) -> Option<u64> {
        self.detections.last().copied().flatten()
    }
}

/// Measures one row: the false-alarm rate over `ticks` balanced ticks, and the
/// detection time of a 2x over-share in each of `trials` seeds, up to `limit` ticks.
pub fn row(
    backends: usize,
    rps: u64,
    cfg: &DetectorConfig,
    ticks: u64,
    trials: u64,
    limit: u64,
) -> Row {
    let s = Scenario {
        backends,
        rps,
        seed: 0x7A_460 ^ (backends as u64) << 32 ^ rps,
    };
    let false_alarm_rate = false_alarm_rate(s, cfg, ticks);
    let mut detections: Vec<Option<u64>> = (0..trials)
        .map(|t| {
            let s = Scenario {
                seed: s.seed.wrapping_add(1000 + t),
                ..s
            };
            detection_ticks(s, cfg, 150, 2.0, limit)
        })
        .collect();
    // `None` (not detected) sorts last.
    detections.sort_by_key(|d| d.unwrap_or(u64::MAX));
    Row {
        backends,
        rps,
        false_alarm_rate,
        detections,
    }
}

/// The Markdown table for a set of rows.
pub fn table(rows: &[Row], ticks: u64, limit: u64) -> String {
    let mut out = format!(
        "| backends | requests/s | expected/backend/s | false-alarm ticks (of {ticks}) | detection of 2x, median | worst (limit {limit} s) |\n|---|---|---|---|---|---|\n"
    );
    let fmt = |d: Option<u64>| d.map_or("not detected".to_string(), |t| format!("{t} s"));
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.3}% | {} | {} |\n",
            r.backends,
            r.rps,
            r.rps as f64 / r.backends as f64,
            r.false_alarm_rate * 100.0,
            fmt(r.median()),
            fmt(r.worst()),
        ));
    }
    out
}
