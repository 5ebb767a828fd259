//! A changed pool's predicted split under the configuration in force and the new one,
//! with the simulator fed what the running instance observed: its request rate and
//! latency set the closed-loop model's concurrency (Little's law), and a hash pool's
//! sampled requests are the keys, read with whichever hash key each version uses. The
//! shift is measured among the backends both versions have (see `kept_split`).
//!
//! A sample is noisy in proportion to its size: a sampled move counts only beyond its
//! noise (`add_noise`), and a sample too small to pin the shares that shows no such
//! move gives way to the key space each backend owns (`MIN_SAMPLE_TO_PREDICT`).

use super::PoolPrediction;
use crate::config::Pool;
use crate::diff::{pool_shift, BackendShift, DiffOptions, PoolShift, PoolStatus};
use crate::simulate::{KeySource, SampledRequest, SimError, SimOptions, DEFAULT_CONCURRENCY};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Simulated requests per version of a pool that does not hash (or hashes with no
/// observed keys): enough for a share to within a fraction of a point.
const REQUESTS: u64 = 50_000;
/// The most closed-loop clients the model runs with, whatever the observed load.
const MAX_CONCURRENCY: u32 = 4096;

/// What the running instance observed of one pool.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolObservation {
    /// Requests per second, recently.
    pub rate_rps: f64,
    /// Mean response time, recently.
    pub latency: Option<Duration>,
    /// Hash pools: recently sampled requests, oldest first.
    pub sample: Option<Arc<[SampledRequest]>>,
}

/// Where a prediction's keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBasis {
    /// The pool does not hash in either version: weights and the policy decide.
    Weights,
    /// The requests the instance sampled from live traffic.
    LiveSample {
        /// How many.
        requests: usize,
    },
    /// Every request gets a fresh random key, so the split is the key space each backend
    /// owns: no request was sampled, or too few to predict the split from and they show
    /// no shift over the limit beyond their noise.
    KeySpace {
        /// Requests sampled (and set aside).
        sampled: usize,
    },
}

impl KeyBasis {
    /// The basis in words, for messages.
    pub fn describe(&self) -> String {
        match self {
            KeyBasis::Weights => "weights and policy".into(),
            KeyBasis::LiveSample { requests } => {
                format!("{requests} requests sampled from live traffic")
            }
            KeyBasis::KeySpace { sampled: 0 } => {
                "key-space ownership (no live requests sampled)".into()
            }
            KeyBasis::KeySpace { sampled } => format!(
                "key-space ownership (only {sampled} live requests sampled, too few to predict from)"
            ),
        }
    }
}

/// Standard errors a sampled backend's move must clear beyond `max_shift` before the
/// sample is taken to show it: a backend whose true move is exactly the limit is refused
/// at most about once in 40 reloads, one that does not move practically never.
const NOISE_Z: f64 = 2.0;
/// Fewer sampled requests pin no backend's share to within 5 points (two standard errors
/// of a 50% share): below it the split shown, judged and expected by the watch is the
/// key space's, unless the sample shows a shift over the limit beyond its noise.
pub(super) const MIN_SAMPLE_TO_PREDICT: usize = 400;

pub(super) fn predict(
    old: Option<&Pool>,
    new: Option<&Pool>,
    obs: &PoolObservation,
    max_shift_points: f64,
) -> Result<PoolPrediction, SimError> {
    let hashes = [old, new].iter().flatten().any(|p| p.policy.is_hash());
    let concurrency = match obs.latency {
        Some(l) if obs.rate_rps > 0.0 => {
            ((obs.rate_rps * l.as_secs_f64()).ceil() as u32).clamp(1, MAX_CONCURRENCY)
        }
        _ => DEFAULT_CONCURRENCY,
    };
    let shift = |keys: KeySource, requests: u64| {
        let mut sim = SimOptions {
            requests,
            keys,
            concurrency,
            ..SimOptions::default()
        };
        if let Some(l) = obs.latency.filter(|l| !l.is_zero()) {
            sim.base_latency = l;
        }
        let opts = DiffOptions {
            sim,
            max_shift_points,
            allow_shift: Vec::new(),
        };
        pool_shift(old, new, &opts)
    };
    let judged =
        |basis: KeyBasis, s: PoolShift| judge_shift(basis, s, obs.rate_rps, max_shift_points);
    let sample = obs.sample.clone().filter(|s| !s.is_empty());
    let sampled = match (hashes, sample) {
        (false, _) => {
            let s = shift(KeySource::Random, REQUESTS)?;
            return Ok(judged(KeyBasis::Weights, s));
        }
        (true, None) => 0,
        (true, Some(s)) => {
            let requests = s.len();
            let p = judged(
                KeyBasis::LiveSample { requests },
                shift(KeySource::Requests(s), requests as u64)?,
            );
            // A shift the sample shows beyond its noise stands however small the sample:
            // a hash-key change that sends every live key to one backend shows in a few
            // dozen requests.
            if p.over || requests >= MIN_SAMPLE_TO_PREDICT {
                return Ok(p);
            }
            requests
        }
    };
    let s = shift(KeySource::Random, REQUESTS)?;
    Ok(judged(KeyBasis::KeySpace { sampled }, s))
}

/// The prediction from one simulated pair of runs. A sampled prediction's moves carry
/// the sampling noise of its shares: a backend is over only when its move exceeds the
/// limit by `NOISE_Z` standard errors.
fn judge_shift(
    basis: KeyBasis,
    shift: PoolShift,
    rate_rps: f64,
    max_shift_points: f64,
) -> PoolPrediction {
    let (mut kept, mut joined) = match shift.status {
        PoolStatus::Kept => (kept_split(&shift.backends), joined_split(&shift.backends)),
        _ => (Vec::new(), Vec::new()),
    };
    if let KeyBasis::LiveSample { requests } = basis {
        add_noise(&mut kept, &shift.backends, requests);
        for j in &mut joined {
            j.noise_points = NOISE_Z * (var(j.from_pct, requests) + var(j.to_pct, requests)).sqrt();
        }
    }
    let largest = kept
        .iter()
        .chain(&joined)
        .map(|k| (k.to_pct - k.from_pct).abs())
        .fold(0.0, f64::max);
    let over = kept
        .iter()
        .chain(&joined)
        .any(|k| k.excess_points() > max_shift_points);
    PoolPrediction {
        over,
        membership_changed: kept.len() != shift.backends.len(),
        pool: shift.pool,
        basis,
        rate_rps,
        backends: shift.backends,
        kept,
        joined,
        largest_shift_points: largest,
        allowed: None,
        forced: false,
    }
}

/// Each kept backend's sampling noise, `NOISE_Z` binomial standard errors of its move
/// between the two shares measured on `requests` sampled requests. The two shares are
/// read from the same requests, which only makes their difference steadier when few keys
/// move; treating them as independent keeps the margin on the side of letting a reload
/// through. Shares are pulled towards the middle (one request each way) so that a share
/// of 0% or 100% in a tiny sample is not taken as certain.
fn add_noise(kept: &mut [KeptShare], backends: &[BackendShift], requests: usize) {
    let (old_sum, new_sum) = backends
        .iter()
        .filter(|b| b.old_pct.is_some() && b.new_pct.is_some())
        .fold((0.0, 0.0), |(o, n), b| {
            (o + b.old_pct.unwrap_or(0.0), n + b.new_pct.unwrap_or(0.0))
        });
    let n = requests as f64;
    // The sampled requests the kept backends served in each version.
    let (n_old, n_new) = (
        (n * old_sum / 100.0).max(1.0),
        (n * new_sum / 100.0).max(1.0),
    );
    let var = |pct: f64, m: f64| {
        let p = (pct / 100.0 * m + 1.0) / (m + 2.0);
        p * (1.0 - p) / m
    };
    for k in kept {
        let se = (var(k.from_pct, n_old) + var(k.to_pct, n_new)).sqrt() * 100.0;
        k.noise_points = NOISE_Z * se;
    }
}

/// Each backend the new version adds, against what the backends it joins take: its
/// share of the whole pool (`to_pct`) beside the median share of the kept backends in
/// the new version (`from_pct`). Adding a backend is meant to give it a share like its
/// peers'; one that would take far more (a weight typed 4 instead of 1) skews the pool
/// as a typo on a kept backend does, and the gate judges it the same way. With no kept
/// backend (the whole pool replaced) there is nothing to compare with.
fn joined_split(backends: &[BackendShift]) -> Vec<KeptShare> {
    let mut peers: Vec<f64> = backends
        .iter()
        .filter(|b| b.old_pct.is_some())
        .filter_map(|b| b.new_pct)
        .collect();
    if peers.is_empty() {
        return Vec::new();
    }
    peers.sort_by(f64::total_cmp);
    let m = peers.len();
    let median = (peers[(m - 1) / 2] + peers[m / 2]) / 2.0;
    backends
        .iter()
        .filter(|b| b.old_pct.is_none())
        .filter_map(|b| {
            Some(KeptShare {
                name: b.name.clone(),
                from_pct: median,
                to_pct: b.new_pct?,
                noise_points: 0.0,
            })
        })
        .collect()
}

/// The binomial variance, in squared percentage points over 100², of a share of `pct`
/// percent measured on `n` requests, pulled one request towards the middle.
fn var(pct: f64, n: usize) -> f64 {
    let m = (n as f64).max(1.0);
    let p = (pct / 100.0 * m + 1.0) / (m + 2.0);
    p * (1.0 - p) / m * 10_000.0
}

/// The split among the backends in both versions, each side renormalised over them: a
/// backend added or removed takes or leaves its own share, which is the point of adding
/// or removing it, and moves nothing between the others.
fn kept_split(backends: &[BackendShift]) -> Vec<KeptShare> {
    let both: Vec<(&BackendShift, f64, f64)> = backends
        .iter()
        .filter_map(|b| Some((b, b.old_pct?, b.new_pct?)))
        .collect();
    let (old_sum, new_sum) = both
        .iter()
        .fold((0.0, 0.0), |(o, n), (_, a, b)| (o + a, n + b));
    let rel = |x: f64, sum: f64| if sum > 0.0 { x / sum * 100.0 } else { 0.0 };
    both.iter()
        .map(|(b, o, n)| KeptShare {
            name: b.name.clone(),
            from_pct: rel(*o, old_sum),
            to_pct: rel(*n, new_sum),
            noise_points: 0.0,
        })
        .collect()
}

/// A backend in both versions of a pool: its share among those backends before and
/// after, in percent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptShare {
    /// The backend's name.
    pub name: String,
    /// Its share among the kept backends before, in percent.
    pub from_pct: f64,
    /// And after.
    pub to_pct: f64,
    /// How far the move may be sampling noise, in points (0 when the prediction did
    /// not come from sampled requests).
    pub noise_points: f64,
}

impl KeptShare {
    /// The move in points.
    pub fn move_points(&self) -> f64 {
        self.to_pct - self.from_pct
    }

    /// How far the move exceeds its noise, in points: what the gate compares with
    /// `max_shift`.
    pub fn excess_points(&self) -> f64 {
        self.move_points().abs() - self.noise_points
    }
}
