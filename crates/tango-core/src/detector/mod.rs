//! The skew detector: observed traffic split against the configured intent.
//!
//! One [`PoolDetector`] per pool is fed once per tick (1 s) with each backend's
//! cumulative request and error counters, its configured and effective weight and the
//! tick's latency figures, plus the injected `now`. It returns alert events (fired,
//! resolved) with their evidence, and per-backend gauges for `/metrics`.
//!
//! # The statistics
//! For backend `i` over a window: `n_i` requests out of `n` in the pool, expected count
//! `E_i = sum_t n_t p_i,t` (the share `p` of each tick, so a reload inside the window is
//! accounted for), ratio `r_i = n_i / E_i`, and
//! `z_i = (n_i - E_i) / sqrt(phi * sum_t n_t p_i,t (1 - p_i,t))`, the binomial z with the
//! pool's over-dispersion `phi` (Pearson `X^2 / (k - 1)` against whichever of the two
//! expectations fits better, an EWMA over ticks without any alert pending or active,
//! clamped to `[1, max_phi]`, so a skew never inflates its own yardstick).
//!
//! Over-share fires when `r >= 1.5`, `z >= 4` and `E >= 30 phi` hold for `hold_ticks`
//! consecutive ticks on any window; under-share is the mirror (`r <= 0.5`, `z <= -4`).
//!
//! # Windows
//! Several sliding windows (default 1, 5, 30 and 120 ticks) are evaluated, because no
//! single length suits every traffic level: at 1,000 requests/s a 1 s window already holds
//! hundreds of expected requests per backend and reacts in one or two ticks, while at
//! 10 requests/s only the 30 s and 120 s windows reach `E >= 30`. The `E >= 30 phi` floor
//! keeps short windows silent when they hold too little to judge. Windows overlap, so
//! testing several costs little in false alarms (see the seeded simulation table).
//!
//! # The fast path: CUSUM
//! Per backend and direction, a Bernoulli CUSUM of each request's log-likelihood ratio
//! (`p1 = 1.5 p0`, or `0.5 p0` for under-share) accumulates evidence tick by tick. When it
//! crosses `cusum_threshold * phi`, the requests since its last reset form an adaptive
//! window, tested with the same ratio/z/E conditions and fired without a further hold
//! (the CUSUM is itself the hold). Its last reset is the onset estimate, when the
//! requests since then meet the alert's ratio; otherwise (it has been climbing on a
//! weaker deviation) the window that fired dates the alert.
//!
//! # Latency outliers
//! A backend is a latency outlier when, on a window of at least 5 ticks, a quarter or more
//! of its requests are slower than both 10 ms and the p90 of the pool's other backends,
//! three times the others' rate above that threshold and significant at `z >= 4`, and
//! all that still holds with its two worst ticks set aside; then for `hold_ticks` ticks.
//! Setting the worst ticks aside is what a short stall of the whole machine cannot pass.
//! The seeded table (`examples/detector_table.rs`, stalls in up to half the ticks) has no
//! false alarm in 10,000 ticks per row and finds a 4x slower backend in 4-6 s at 200
//! requests/s and more. Details in `latency.rs`.
//!
//! An outlier's onset (latency or errors) is the start of the earliest tick of the run,
//! ending when it fires, in which the backend alone stood out as the window did; ticks
//! without its requests are passed over, so a backend slow from its first request is
//! dated from when its traffic began, not from when the test had enough ticks to tell
//! (`onset.rs`).
//!
//! # Cause classes
//! Each share test runs against the *effective* weights (the eligible set, slow start
//! applied; or the key-space ownership the caller passes for hash pools) and against the
//! *configured* weights. Skew against the effective set means the policy, weights or hash
//! key moved traffic ([`Cause::Config`], or [`Cause::KeyDistribution`] when the caller's
//! key statistics explain it); skew only against the configured set means health,
//! ejection or draining moved it ([`Cause::Health`]).
//!
//! Max/mean or coefficient-of-variation thresholds are deliberately not used: at low
//! traffic they fire on perfectly balanced pools.

mod cusum;
mod engine;
mod incident;
mod keys;
mod keyspace;
mod latency;
mod onset;
mod outliers;
mod share;
mod shift;
pub mod sim;
mod window;

#[cfg(test)]
mod tests;

pub use crate::alert::{
    AlertEvent, AlertKind, Basis, Cause, Evidence, Incident, IncidentEvent, Signal,
    LATENCY_BOUNDS_MS,
};
pub use engine::PoolDetector;
pub use incident::{IncidentConfig, IncidentTracker};
pub use keyspace::key_space_split;
pub use shift::{ShiftConfig, ShiftDetector};

use serde::{Deserialize, Serialize};

/// Tunables; the defaults are the ones the simulation table was produced with.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Length of a tick, used to report window lengths in milliseconds.
    pub tick_ms: u64,
    /// Sliding window lengths in ticks, shortest first.
    pub windows: Vec<u32>,
    /// Over-share needs `observed / expected` at least this.
    pub over_ratio: f64,
    /// Under-share needs `observed / expected` at most this.
    pub under_ratio: f64,
    /// The |z| every alert needs.
    pub min_z: f64,
    /// Minimum expected requests in a window, multiplied by `phi`.
    pub min_expected: f64,
    /// Consecutive ticks a window condition must hold before firing...
    pub hold_ticks: u32,
    /// ...or this fraction of the window's length, if longer.
    pub hold_fraction: f64,
    /// Consecutive ticks the resolve condition must hold before resolving.
    pub resolve_ticks: u32,
    /// Over-share resolves below this ratio (hysteresis against `over_ratio`).
    pub resolve_over_ratio: f64,
    /// Under-share resolves above this ratio.
    pub resolve_under_ratio: f64,
    /// Either share alert also resolves when `|z|` falls below this.
    pub resolve_z: f64,
    /// CUSUM decision threshold (natural-log likelihood ratio), multiplied by `phi`.
    pub cusum_threshold: f64,
    /// The shift the over-share CUSUM is tuned for (`p1 = shift * p0`); the under-share
    /// CUSUM mirrors it (`p1 = (2 - shift) * p0`).
    pub cusum_shift: f64,
    /// Upper clamp of the over-dispersion estimate `phi` (its floor is 1).
    pub max_phi: f64,
    /// Window (ticks) over which the dispersion and the gauges are computed.
    pub phi_window: u32,
    /// EWMA weight of one tick's dispersion estimate.
    pub phi_alpha: f64,
    /// Also alert on skew against the configured weights (cause: health).
    pub configured_skew_alerts: bool,
    /// Error outlier: rate >= `error_ratio` x the others' and >= `error_min_rate`.
    pub error_ratio: f64,
    /// The least error rate an error outlier may have.
    pub error_min_rate: f64,
    /// Requests the backend and the others each need in the window.
    pub error_min_requests: u64,
    /// Failed tries the backend needs in the window.
    pub error_min_errors: u64,
    /// Latency outliers (the rule is stated in the module documentation): a
    /// backend's requests slower than the others' `latency_quantile` (and than
    /// `latency_floor_ms`) must be at least `latency_min_fraction` of its requests and
    /// `latency_ratio` x the others' fraction, `min_z` significant, after its
    /// `latency_drop_ticks` worst ticks are set aside, on a window of at least
    /// `latency_min_ticks` ticks, for `hold_ticks` ticks.
    pub latency_ratio: f64,
    /// A slow request is slower than this too, in milliseconds.
    pub latency_floor_ms: f64,
    /// Requests each side (this backend, the others) needs in the window.
    pub latency_min_samples: u64,
    /// Upper bounds (ms) of the histogram buckets in [`BackendSample::latency_buckets`];
    /// one more bucket, unbounded, follows them. At most 15 bounds are used.
    pub latency_bounds_ms: Vec<f64>,
    /// The others' quantile a request must exceed to count as slow.
    pub latency_quantile: f64,
    /// Slow requests' least fraction of the backend's requests.
    pub latency_min_fraction: f64,
    /// Slow requests needed, after the worst ticks are set aside.
    pub latency_min_slow: u64,
    /// The shortest window, in ticks, a latency test runs on.
    pub latency_min_ticks: u32,
    /// The worst ticks set aside: a stall shorter than this many ticks cannot fire.
    pub latency_drop_ticks: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            tick_ms: 1000,
            windows: vec![1, 5, 30, 120],
            over_ratio: 1.5,
            under_ratio: 0.5,
            min_z: 4.0,
            min_expected: 30.0,
            hold_ticks: 2,
            hold_fraction: 0.5,
            resolve_ticks: 3,
            resolve_over_ratio: 1.25,
            resolve_under_ratio: 0.75,
            resolve_z: 2.0,
            cusum_threshold: 16.0,
            cusum_shift: 1.5,
            max_phi: 4.0,
            phi_window: 30,
            phi_alpha: 1.0 / 60.0,
            configured_skew_alerts: true,
            error_ratio: 3.0,
            error_min_rate: 0.05,
            error_min_requests: 50,
            error_min_errors: 10,
            latency_ratio: 3.0,
            latency_floor_ms: 10.0,
            latency_min_samples: 50,
            latency_bounds_ms: LATENCY_BOUNDS_MS.to_vec(),
            latency_quantile: 0.9,
            latency_min_fraction: 0.25,
            latency_min_slow: 10,
            latency_min_ticks: 5,
            latency_drop_ticks: 2,
        }
    }
}

/// One backend's reading for a tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackendSample {
    /// The backend's name, as alerts give it.
    pub name: String,
    /// Its configured weight.
    pub configured_weight: f64,
    /// 0 when ineligible (unhealthy, ejected, draining); slow start already applied; on
    /// the tick it came back in or left in, its weight times the part of the tick it was
    /// in rotation (a backend that left mid-tick had its share until it went).
    pub effective_weight: f64,
    /// Cumulative requests (any status); a decrease is read as a counter reset.
    pub requests: u64,
    /// Cumulative failed tries: 5xx responses and tries that got no response.
    pub errors: u64,
    /// Sum and count of this tick's request latencies, in milliseconds.
    pub latency_sum_ms: f64,
    /// How many requests `latency_sum_ms` sums.
    pub latency_count: u64,
    /// Cumulative client-visible failures (5xx or no answer) of requests whose last try
    /// was this backend: a failed try that a retry elsewhere absorbed is in `errors` but
    /// not here. `None`: not known (the error alert then speaks of tries only).
    pub client_errors: Option<u64>,
    /// This tick's latency histogram: counts per bucket of
    /// [`DetectorConfig::latency_bounds_ms`], then the unbounded bucket. Empty: no
    /// latency test for this backend.
    pub latency_buckets: Vec<u64>,
}

/// Key statistics of a hash pool for the tick, used to tell a hot or missing key from
/// a misconfiguration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KeyStats {
    /// Share of the pool's requests carried by its most frequent key.
    pub top_key_share: f64,
    /// The backend that key maps to, when known.
    pub top_key_backend: Option<String>,
    /// Estimated number of distinct keys seen recently.
    pub distinct_keys: u64,
    /// Share of requests without the key.
    pub missing_key_fraction: f64,
    /// Where keyless requests go, when they all go to one backend.
    pub missing_key_backend: Option<String>,
    /// Sampled requests with the key behind `distinct_keys` and `top_keys` (0: unknown).
    /// Keys must repeat in the sample (`sampled_keys >= 4 x distinct_keys`) before a low
    /// distinct count says anything about the pool rather than about the sample's size.
    #[serde(default)]
    pub sampled_keys: u64,
    /// The time the statistics cover.
    #[serde(default)]
    pub window_ms: u64,
    /// The heaviest key values, largest first (see [`crate::sketch::KeySummary`]).
    #[serde(default)]
    pub top_keys: Vec<TopKey>,
}

/// One heavy key value of a hash pool.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TopKey {
    /// Share of the pool's sampled requests carrying it.
    pub share: f64,
    /// Sampled requests carrying it.
    pub samples: u64,
    /// The backend it maps to now, when known.
    pub backend: Option<String>,
}

/// Everything the detector reads for one pool and one tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolTick {
    /// Injected time: unix milliseconds (or any monotonic millisecond clock).
    pub now_ms: u64,
    /// Each backend's reading, in the pool's order.
    pub backends: Vec<BackendSample>,
    /// Expected shares over the eligible set, overriding the effective weights (hash
    /// pools: the key-space ownership of the ring or table). Same order as `backends`.
    pub expected: Option<Vec<f64>>,
    /// Expected shares over the configured set, overriding the configured weights
    /// (hash pools: the key space each backend owns). Its presence marks a hash pool's
    /// tick: a backend ramping up in slow start then takes its part of its own keys and
    /// turns the rest away to the others ([`key_space_split`]), rather than taking its
    /// part of a weight that the rest are renormalised against.
    pub expected_configured: Option<Vec<f64>>,
    /// Hash pools: the key statistics, when sampled.
    pub keys: Option<KeyStats>,
}

/// Per-backend gauges over the `phi_window`, published every tick.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendGauge {
    /// The backend.
    pub backend: String,
    /// Its share of the pool's requests.
    pub observed_share: f64,
    /// Its expected share over the eligible set.
    pub expected_share: f64,
    /// Its share by configured weight.
    pub configured_share: f64,
    /// `observed_share / expected_share`.
    pub ratio: f64,
    /// The share's z score against the eligible set.
    pub z: f64,
}

/// The detector's answer for one tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TickReport {
    /// Alerts fired and resolved this tick.
    pub events: Vec<AlertEvent>,
    /// Each backend's gauges.
    pub gauges: Vec<BackendGauge>,
    /// `max_i |z_i|` over the `phi_window` against the effective weights: below ~3 is
    /// ordinary noise; alerts additionally need the ratio and expected-count floors.
    pub skew_score: f64,
    /// The pool's over-dispersion estimate.
    pub phi: f64,
}
