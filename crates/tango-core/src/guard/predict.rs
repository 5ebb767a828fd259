//! A changed pool's predicted split under the configuration in force and the new one,
//! with the simulator fed what the running instance observed: its request rate and
//! latency set the closed-loop model's concurrency (Little's law), and a hash pool's
//! sampled requests are the keys, read with whichever hash key each version uses. The
//! shift is measured among the backends both versions have (see `kept_split`).
//!
//! A sample is noisy in proportion to its size: a sampled move counts only beyond its
//! noise (`[guard] noise_sigmas` standard errors), and a sample too small to pin the
//! shares (under `[guard] min_sample` requests) that shows no such move gives way to the
//! key space each backend owns. The moves are judged by the judgement `tango diff`
//! gives ([`judge_moves`]).

use super::PoolPrediction;
use crate::config::{Guard, Pool};
use crate::diff::{judge_moves, pool_shift, DiffOptions, PoolShift, SampleNoise};
use crate::simulate::{KeySource, SampledRequest, SimError, SimOptions, DEFAULT_CONCURRENCY};
use std::sync::Arc;
use std::time::Duration;

/// Simulated requests per version of a pool that does not hash (or hashes with no
/// observed keys): enough for a share to within a fraction of a point. A constant, not a
/// setting: it is the simulator's precision, whose noise is far under any `max_shift`,
/// not a choice of how much noise to accept.
const REQUESTS: u64 = 50_000;
/// The most closed-loop clients the model runs with, whatever the observed load. A
/// constant, not a setting: it bounds the cost of judging a reload, and past a few
/// thousand clients a load-aware policy's split no longer changes with more.
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

/// How many standard errors a sampled move must clear (`[guard] noise_sigmas`) and how
/// many sampled requests the sample must have to be the prediction (`[guard]
/// min_sample`) are settings: how much of a sample's noise to accept is the operator's
/// trade between refusing a good reload and passing a bad one.
pub(super) fn predict(
    old: Option<&Pool>,
    new: Option<&Pool>,
    obs: &PoolObservation,
    settings: &Guard,
) -> Result<PoolPrediction, SimError> {
    let max_shift_points = settings.max_shift_points;
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
    let judged = |basis: KeyBasis, s: PoolShift| judge_shift(basis, s, obs.rate_rps, settings);
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
            if p.moves.over || requests >= settings.min_sample {
                return Ok(p);
            }
            requests
        }
    };
    let s = shift(KeySource::Random, REQUESTS)?;
    Ok(judged(KeyBasis::KeySpace { sampled }, s))
}

/// The prediction from one simulated pair of runs, judged by the judgement `tango diff`
/// gives too ([`judge_moves`]). A sampled prediction's moves carry the sampling noise
/// of its shares: a backend is over only when its move exceeds the limit by
/// `noise_sigmas` standard errors.
fn judge_shift(
    basis: KeyBasis,
    shift: PoolShift,
    rate_rps: f64,
    settings: &Guard,
) -> PoolPrediction {
    let noise = match basis {
        KeyBasis::LiveSample { requests } => Some(SampleNoise {
            requests,
            sigmas: settings.noise_sigmas,
        }),
        _ => None,
    };
    let moves = judge_moves(
        shift.status,
        &shift.backends,
        noise,
        settings.max_shift_points,
    );
    PoolPrediction {
        pool: shift.pool,
        basis,
        rate_rps,
        backends: shift.backends,
        moves,
        allowed: None,
        forced: false,
    }
}
