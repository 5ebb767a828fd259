//! Whether a hash pool's key statistics explain a share deviation: a few heavy key values
//! that land on (or away from) the backend, keyless requests that all go to one backend,
//! or a key that takes very few values.

use super::{KeyStats, TopKey};

/// Sampled requests a heavy key needs before it explains anything.
const MIN_KEY_SAMPLES: u64 = 10;

/// The explanation of `backend`'s share (`observed` against `expected`, shares of the
/// pool), if the keys give one.
pub(super) fn key_explains(
    k: &KeyStats,
    backend: &str,
    observed: f64,
    expected: f64,
    n_backends: usize,
) -> Option<String> {
    let excess = observed - expected;
    let over = excess > 0.0;
    let need = 0.5 * excess.abs();
    if let Some(why) = heavy_keys(k, backend, expected, over, need) {
        return Some(why);
    }
    // Keyless requests skew only when they all go to one backend: spread at random (the
    // default), they follow the weights.
    if let Some(b) = &k.missing_key_backend {
        let lands = (b == backend) == over;
        let share = k.missing_key_fraction
            * if b == backend {
                1.0 - expected
            } else {
                expected
            };
        if lands && share >= need && share > 0.0 {
            return Some(format!(
                "{:.0}% of requests lack the hash key and all go to {b}",
                k.missing_key_fraction * 100.0
            ));
        }
    }
    // Few distinct values: only once keys repeat in the sample does a low count say
    // anything about the pool rather than about how many requests were sampled.
    // (The heavy hitters' repeats say nothing of the rest.)
    let held: u64 = k.top_keys.iter().map(|t| t.samples).sum();
    let rest = k.distinct_keys.saturating_sub(k.top_keys.len() as u64);
    let saturated = k.sampled_keys > 0 && k.sampled_keys.saturating_sub(held) >= 4 * rest;
    if saturated && k.distinct_keys > 0 && k.distinct_keys < 4 * n_backends as u64 {
        return Some(format!(
            "the hash key took only ~{} distinct values{} for {} backends",
            k.distinct_keys,
            over_the(k.window_ms),
            n_backends
        ));
    }
    None
}

fn over_the(window_ms: u64) -> String {
    match window_ms / 1000 {
        0 => String::new(),
        s => format!(" over the last {s} s"),
    }
}

/// The keys that explain the deviation: those landing on `backend` (over-share) carry
/// more than its expected part of the heavy keys' traffic, or those landing elsewhere
/// (under-share) pull its part away.
fn heavy_keys(k: &KeyStats, backend: &str, expected: f64, over: bool, need: f64) -> Option<String> {
    let legacy;
    let keys: &[TopKey] = if k.top_keys.is_empty() {
        legacy = [TopKey {
            share: k.top_key_share,
            samples: (k.top_key_share * k.sampled_keys as f64).round() as u64,
            backend: k.top_key_backend.clone(),
        }];
        &legacy
    } else {
        &k.top_keys
    };
    let heavy: Vec<&TopKey> = keys
        .iter()
        .filter(|t| t.samples >= MIN_KEY_SAMPLES && t.backend.is_some())
        .collect();
    let total: f64 = heavy.iter().map(|t| t.share).sum();
    let here: f64 = heavy
        .iter()
        .filter(|t| t.backend.as_deref() == Some(backend))
        .map(|t| t.share)
        .sum();
    // What the heavy keys add beyond (or take below) an ordinary part of them.
    let explained = if over {
        here - expected * total
    } else {
        expected * total - here
    };
    if explained < need || explained <= 0.0 {
        return None;
    }
    let lands = |t: &&&TopKey| (t.backend.as_deref() == Some(backend)) == over;
    let movers: Vec<&&TopKey> = heavy.iter().filter(lands).collect();
    let first = movers.first()?;
    let to = first.backend.as_deref().unwrap_or("?");
    if movers.len() == 1 || first.share >= need {
        return Some(format!(
            "one key value carries {:.0}% of requests and maps to {to}",
            first.share * 100.0
        ));
    }
    let carried: f64 = movers.iter().map(|t| t.share).sum();
    let targets: Vec<&str> = {
        let mut v: Vec<&str> = movers.iter().filter_map(|t| t.backend.as_deref()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    Some(format!(
        "{} key values carry {:.0}% of requests and map to {}",
        movers.len(),
        carried * 100.0,
        targets.join(", ")
    ))
}
