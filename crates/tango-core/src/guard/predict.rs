//! A changed pool's predicted split under the configuration in force and the new one,
//! with the simulator fed what the running instance observed: its request rate and
//! latency set the closed-loop model's concurrency (Little's law), and a hash pool's
//! sampled requests are the keys, read with whichever hash key each version uses.

use super::PoolPrediction;
use crate::config::Pool;
use crate::diff::{pool_shift, DiffOptions, PoolStatus};
use crate::simulate::{KeySource, SampledRequest, SimError, SimOptions, DEFAULT_CONCURRENCY};
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
    LiveSample { requests: usize },
    /// No request was sampled: every request gets a fresh random key, so the split is
    /// the key space each backend owns.
    KeySpace,
}

impl KeyBasis {
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
    Ok(PoolPrediction {
        over: shift.status == PoolStatus::Kept && shift.largest_shift_points > max_shift_points,
        pool: shift.pool,
        basis,
        rate_rps: obs.rate_rps,
        backends: shift.backends,
        largest_shift_points: shift.largest_shift_points,
        allowed: None,
        forced: false,
    })
}
