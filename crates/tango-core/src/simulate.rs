//! The simulator: the traffic split a configuration will produce, predicted offline by
//! running the real policy code (`policy::Selector`) over simulated requests.
//!
//! [`simulate`] takes one pool, a key source ([`KeySource`]), a scenario (backends down,
//! backends added, per-backend latencies) and a seed, and returns per backend the share
//! the weights intend and the share the selector actually gave, with a verdict. It is
//! pure and deterministic: the same inputs and seed give the same report. `tango
//! simulate` prints it and `tango diff` compares two of them.

mod engine;
mod keys;
mod rng;
mod sampled;
#[cfg(test)]
mod tests;

pub use keys::{parse_access_log, parse_key_list, KeyError, KeySource, LogRecord};
pub use sampled::{SampledRequest, SAMPLE_HEADER_BUDGET};

use crate::config::{Backend, Pool};
use crate::diag::Span;
use crate::health::eligibility;
use crate::policy::Selector;
use engine::Model;
use keys::KeyStream;
use serde::Serialize;
use std::time::Duration;

/// Default largest gap, in percentage points, between a backend's simulated and intended
/// share before the verdict says the split deviates.
pub const DEFAULT_THRESHOLD_POINTS: f64 = 5.0;
/// Default number of closed-loop clients in the queueing model.
pub const DEFAULT_CONCURRENCY: u32 = 32;
/// Default service latency of a backend the scenario does not name.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(10);

/// What-if changes applied to the pool before simulating.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scenario {
    /// Backends (by name) taken out as if failing health checks.
    pub down: Vec<String>,
    /// Extra backends `new-1`, `new-2`, ... with the pool's median weight.
    pub add: usize,
    /// Service latency per backend name; the others get `SimOptions::base_latency`.
    pub latency: Vec<(String, Duration)>,
}

/// How a pool is simulated.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Requests to simulate.
    pub requests: u64,
    /// Where the requests' keys come from.
    pub keys: KeySource,
    /// What-if changes to the pool.
    pub scenario: Scenario,
    /// Seed of every random draw: the same seed gives the same report.
    pub seed: u64,
    /// Closed-loop clients: the pool's in-flight total (matters for least_request,
    /// peak_ewma and bounded load).
    pub concurrency: u32,
    /// Service latency of a backend the scenario does not name.
    pub base_latency: Duration,
    /// The largest gap between simulated and intended share that passes, in points.
    pub threshold_points: f64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            requests: 100_000,
            keys: KeySource::Random,
            scenario: Scenario::default(),
            seed: 1,
            concurrency: DEFAULT_CONCURRENCY,
            base_latency: DEFAULT_LATENCY,
            threshold_points: DEFAULT_THRESHOLD_POINTS,
        }
    }
}

/// Why a pool could not be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The scenario names a backend the pool does not have.
    #[error("pool `{pool}` has no backend named `{name}`")]
    UnknownBackend {
        /// The pool.
        pool: String,
        /// The name the scenario gave.
        name: String,
    },
    /// The key source could not be read.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// Whether the simulated split is close enough to the intended one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every backend within the threshold.
    Ok,
    /// Some backend off by more than the threshold.
    Deviates,
    /// Synthetic keys cannot stand for the pool's hash key (see `SimReport::caveat`): the
    /// split shown is not the one real traffic will get.
    CannotJudge,
}

/// One backend's line in the report. Shares are percentages (0-100).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendShare {
    /// The backend's name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// Its configured weight.
    pub weight: u32,
    /// Taken out by the scenario.
    pub down: bool,
    /// Added by the scenario.
    pub added: bool,
    /// Weight share among the eligible backends.
    pub intended_pct: f64,
    /// Hash pools: the share of the key space the ring or table gives it among the
    /// eligible backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ownership_pct: Option<f64>,
    /// Share of the requests the selector sent to it.
    pub simulated_pct: f64,
    /// Requests the selector sent to it.
    pub requests: u64,
}

/// One pool's simulated split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    /// The pool.
    pub pool: String,
    /// Its policy's name.
    pub policy: &'static str,
    /// What it hashes, for hash pools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_key: Option<String>,
    /// Requests simulated.
    pub requests: u64,
    /// The seed used.
    pub seed: u64,
    /// Requests refused for lack of a key (`on_missing_key = "reject"`).
    pub rejected: u64,
    /// Requests no backend was eligible for.
    pub unserved: u64,
    /// Too few backends were eligible: the pool balances over all of them.
    pub panic: bool,
    /// Each backend's line, in pool order (added ones last).
    pub backends: Vec<BackendShare>,
    /// Largest simulated share over the mean share of the eligible backends.
    pub max_over_mean: f64,
    /// Largest |simulated - intended| in percentage points, and whose.
    pub max_deviation_points: f64,
    /// The backend off by `max_deviation_points`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<String>,
    /// The threshold applied.
    pub threshold_points: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the verdict is `CannotJudge`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

/// Simulate `opts.requests` requests to `pool`. `progress(done, total)` is called every
/// few tens of thousands of requests and once at the end.
pub fn simulate(
    pool: &Pool,
    opts: &SimOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimReport, SimError> {
    let pool = with_added(pool, opts.scenario.add);
    let find = |name: &str| {
        pool.backends
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| SimError::UnknownBackend {
                pool: pool.name.clone(),
                name: name.to_string(),
            })
    };
    let mut healthy = vec![true; pool.backends.len()];
    for name in &opts.scenario.down {
        healthy[find(name)?] = false;
    }
    let mut service = vec![opts.base_latency.as_secs_f64(); pool.backends.len()];
    for (name, latency) in &opts.scenario.latency {
        service[find(name)?] = latency.as_secs_f64();
    }
    let hash_key = pool.hashing.as_ref().map(|h| &h.key);
    let mut keys = KeyStream::new(&opts.keys, hash_key, &pool.name)?;
    let weights: Vec<u32> = pool.backends.iter().map(|b| b.weight).collect();
    let elig = eligibility(&healthy, &[], &weights, pool.panic_threshold);
    let selector = Selector::from_pool(&pool);
    let model = Model {
        selector: &selector,
        up: elig.eligible.clone(),
        caps: pool
            .backends
            .iter()
            .map(|b| b.max_in_flight.map_or(u64::MAX, u64::from))
            .collect(),
        service,
        concurrency: opts.concurrency,
        decay: pool.ewma_decay,
    };
    let counts = engine::run(&model, &mut keys, opts.requests, opts.seed, progress);
    Ok(report(
        &pool,
        opts,
        &elig.eligible,
        elig.panic,
        &healthy,
        counts,
    ))
}

fn report(
    pool: &Pool,
    opts: &SimOptions,
    eligible: &[bool],
    panic: bool,
    healthy: &[bool],
    counts: engine::Counts,
) -> SimReport {
    let served: u64 = counts.per_backend.iter().sum();
    let eligible_weight: f64 = pool
        .backends
        .iter()
        .zip(eligible)
        .filter(|(_, &e)| e)
        .map(|(b, _)| f64::from(b.weight))
        .sum();
    let ownership = pool.policy.is_hash().then(|| ownership(pool, eligible));
    let original = pool.backends.len() - opts.scenario.add;
    let backends: Vec<BackendShare> = pool
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| BackendShare {
            name: b.name.clone(),
            address: b.address.clone(),
            weight: b.weight,
            down: !healthy[i],
            added: i >= original,
            intended_pct: pct(
                if eligible[i] {
                    f64::from(b.weight)
                } else {
                    0.0
                },
                eligible_weight,
            ),
            ownership_pct: ownership.as_ref().map(|o| o[i] * 100.0),
            simulated_pct: pct(counts.per_backend[i] as f64, served as f64),
            requests: counts.per_backend[i],
        })
        .collect();
    let n_eligible = eligible.iter().filter(|&&e| e).count();
    let max_share = backends.iter().map(|b| b.simulated_pct).fold(0.0, f64::max);
    let max_over_mean = match n_eligible {
        0 => 0.0,
        n => max_share / (100.0 / n as f64),
    };
    let worst = backends
        .iter()
        .map(|b| (b, (b.simulated_pct - b.intended_pct).abs()))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let max_deviation_points = worst.map_or(0.0, |w| w.1);
    // Requests no backend could take are a failure of the split too.
    let deviates = max_deviation_points > opts.threshold_points || counts.unserved > 0;
    let caveat = synthetic_caveat(pool, &opts.keys);
    let verdict = match (&caveat, deviates) {
        // Requests no backend could take fail whatever the keys.
        _ if counts.unserved > 0 => Verdict::Deviates,
        (Some(_), _) => Verdict::CannotJudge,
        (None, true) => Verdict::Deviates,
        (None, false) => Verdict::Ok,
    };
    SimReport {
        pool: pool.name.clone(),
        policy: pool.policy.name(),
        hash_key: pool.hashing.as_ref().map(|h| h.key.describe()),
        requests: opts.requests,
        seed: opts.seed,
        rejected: counts.rejected,
        unserved: counts.unserved,
        panic,
        max_over_mean,
        max_deviation_points,
        worst: worst.filter(|w| w.1 > 0.0).map(|w| w.0.name.clone()),
        threshold_points: opts.threshold_points,
        verdict,
        caveat,
        backends,
    }
}

/// Why keys made up by the simulator (random, uniform, Zipf) cannot judge this pool's
/// split: its hash key has few distinct values in real traffic, which made-up keys do not
/// have. `None` for real keys (a list, an access log, sampled requests) or a good key.
fn synthetic_caveat(pool: &Pool, keys: &KeySource) -> Option<String> {
    let synthetic = matches!(
        keys,
        KeySource::Random | KeySource::Uniform { .. } | KeySource::Zipf { .. }
    );
    let why = crate::lint::hashing::low_cardinality(&pool.hashing.as_ref()?.key)?;
    synthetic.then(|| {
        format!(
            "synthetic keys cannot judge this hash key: {why}, so real traffic maps to a \
             few backends whatever the split below; simulate real keys with --keys FILE or \
             --access-log FILE"
        )
    })
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole * 100.0
    } else {
        0.0
    }
}

/// Key-space ownership among the eligible backends. With every backend eligible this is
/// the selector's own; otherwise the ring (or table) is rebuilt from the eligible ones.
/// For a ring that is exactly where the walk sends a down backend's keys (a backend's
/// points depend on its own address and weight only); for maglev it approximates the
/// walk over the full table.
fn ownership(pool: &Pool, eligible: &[bool]) -> Vec<f64> {
    if eligible.iter().all(|&e| e) {
        return Selector::from_pool(pool).ownership();
    }
    let mut sub = pool.clone();
    sub.backends = pool
        .backends
        .iter()
        .zip(eligible)
        .filter(|(_, &e)| e)
        .map(|(b, _)| b.clone())
        .collect();
    let mut own = Selector::from_pool(&sub).ownership().into_iter();
    eligible
        .iter()
        .map(|&e| if e { own.next().unwrap_or(0.0) } else { 0.0 })
        .collect()
}

/// The pool with `add` backends appended: `new-1`, ... at `198.51.100.X:80`
/// (TEST-NET-2, never a real host), weighted like the pool's median backend.
fn with_added(pool: &Pool, add: usize) -> Pool {
    let mut pool = pool.clone();
    if add == 0 {
        return pool;
    }
    let mut weights: Vec<u32> = pool.backends.iter().map(|b| b.weight).collect();
    weights.sort_unstable();
    let median = weights.get(weights.len() / 2).copied().unwrap_or(1);
    for k in 1..=add {
        pool.backends.push(Backend {
            name: format!("new-{k}"),
            address: format!("198.51.100.{}:{}", (k - 1) % 254 + 1, 80 + (k - 1) / 254),
            weight: median,
            max_connections: None,
            max_in_flight: None,
            span: Span::default(),
            weight_span: None,
        });
    }
    pool
}
