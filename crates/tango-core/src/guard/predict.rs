//! A changed pool's predicted split under the configuration in force and the new one,
//! with the simulator fed what the running instance observed: its request rate and
//! latency set the closed-loop model's concurrency (Little's law), and a hash pool's
//! sampled requests are the keys, read with whichever hash key each version uses. The
//! shift is measured among the backends both versions have (see `kept_split`).

use super::PoolPrediction;
use crate::config::Pool;
use crate::diff::{pool_shift, BackendShift, DiffOptions, PoolStatus};
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
    /// No request was sampled: every request gets a fresh random key, so the split is
    /// the key space each backend owns.
    KeySpace,
}

impl KeyBasis {
    /// The basis in words, for messages.
    pub fn describe(&self) -> String {
        match self {
            KeyBasis::Weights => "weights and policy".into(),
            KeyBasis::LiveSample { requests } => {
                format!("{requests} requests sampled from live traffic")
            }
            KeyBasis::KeySpace => "key-space ownership (no live requests sampled)".into(),
        }
    }
}

pub(super) fn predict(
    old: Option<&Pool>,
    new: Option<&Pool>,
    obs: &PoolObservation,
    max_shift_points: f64,
) -> Result<PoolPrediction, SimError> {
    let hashes = [old, new].iter().flatten().any(|p| p.policy.is_hash());
    let sample = obs.sample.clone().filter(|s| !s.is_empty());
    let (basis, keys, requests) = match (hashes, sample) {
        (false, _) => (KeyBasis::Weights, KeySource::Random, REQUESTS),
        (true, Some(s)) => (
            KeyBasis::LiveSample { requests: s.len() },
            KeySource::Requests(s.clone()),
            s.len() as u64,
        ),
        (true, None) => (KeyBasis::KeySpace, KeySource::Random, REQUESTS),
    };
    let concurrency = match obs.latency {
        Some(l) if obs.rate_rps > 0.0 => {
            ((obs.rate_rps * l.as_secs_f64()).ceil() as u32).clamp(1, MAX_CONCURRENCY)
        }
        _ => DEFAULT_CONCURRENCY,
    };
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
    let shift = pool_shift(old, new, &opts)?;
    let kept = match shift.status {
        PoolStatus::Kept => kept_split(&shift.backends),
        _ => Vec::new(),
    };
    let largest = kept
        .iter()
        .map(|k| (k.to_pct - k.from_pct).abs())
        .fold(0.0, f64::max);
    Ok(PoolPrediction {
        over: largest > max_shift_points,
        membership_changed: kept.len() != shift.backends.len(),
        pool: shift.pool,
        basis,
        rate_rps: obs.rate_rps,
        backends: shift.backends,
        kept,
        largest_shift_points: largest,
        allowed: None,
        forced: false,
    })
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
}
