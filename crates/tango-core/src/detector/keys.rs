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
    // anything about the pool rather than about how many requests were sampled. Every
    // value must have been seen four times on average, and so must the values outside
    // the heavy hitters (a hot key's repeats say nothing of the rest). A small sample
    // that the heavy hitters hold whole leaves no rest to judge: its values must repeat
    // themselves, or a handful of requests, each with its own key, reads as a key that
    // takes a handful of values.
    let held: u64 = k.top_keys.iter().map(|t| t.samples).sum();
    let rest = k.distinct_keys.saturating_sub(k.top_keys.len() as u64);
    let saturated =
        k.sampled_keys >= 4 * k.distinct_keys && k.sampled_keys.saturating_sub(held) >= 4 * rest;
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

impl KeyStats {
    /// Whether these (a short window's) statistics show a heaviest key markedly heavier
    /// than `longer` does: seen `min_samples` times or more, and its share above the
    /// longer window's by a tenth and by more than sampling alone would put it (three
    /// standard errors of a share as heavy as the longer window's, over this sample).
    /// A key carrying 90% of requests is all of a short window's 15 samples one time in
    /// five; that is not a sudden change.
    pub fn markedly_heavier_than(&self, longer: &KeyStats, min_samples: u64) -> bool {
        let Some(top) = self.top_keys.first() else {
            return false;
        };
        let p = longer.top_key_share.clamp(0.0, 1.0);
        let n = self.sampled_keys.max(top.samples).max(1) as f64;
        let noise = 3.0 * (p * (1.0 - p) / n).sqrt();
        top.samples >= min_samples && self.top_key_share > p + 0.1 + noise
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::{KeySketch, KeySketchConfig};

    /// The watch's view (the minute's sketch, eight heavy hitters with their backends)
    /// after `values` key values were each sampled `times` times.
    fn sampled(values: u64, times: u64) -> KeyStats {
        let mut s = KeySketch::new(KeySketchConfig::default(), 0);
        for _ in 0..times {
            (0..values).for_each(|k| s.observe(Some(k)));
        }
        s.summary(1_000)
            .key_stats(8, |k| Some(format!("b{}", k % 4)))
    }

    /// A ring-hash pool of four whose b1 went from weight 1 to 4: 4/7 of the requests
    /// where a quarter were expected.
    fn weight_change(k: &KeyStats) -> Option<String> {
        key_explains(k, "b1", 4.0 / 7.0, 0.25, 4)
    }

    /// Statistics whose heaviest key carries `share` of `n` samples.
    fn heaviest(share: f64, n: u64) -> KeyStats {
        KeyStats {
            top_key_share: share,
            sampled_keys: n,
            top_keys: vec![TopKey {
                share,
                samples: (share * n as f64).round() as u64,
                ..TopKey::default()
            }],
            ..KeyStats::default()
        }
    }

    #[test]
    fn a_short_window_is_markedly_heavier_only_beyond_sampling_noise() {
        // A key at 90% over the minute fills a window of 15 samples now and then.
        assert!(!heaviest(1.0, 15).markedly_heavier_than(&heaviest(0.85, 3000), 10));
        assert!(!heaviest(1.0, 40).markedly_heavier_than(&heaviest(0.85, 3000), 10));
        // Keys collapsing onto one value: from a few percent to all of them.
        assert!(heaviest(1.0, 15).markedly_heavier_than(&heaviest(0.05, 3000), 10));
        assert!(heaviest(0.6, 200).markedly_heavier_than(&heaviest(0.3, 3000), 10));
        // Too few samples of the key to say anything.
        assert!(!heaviest(1.0, 9).markedly_heavier_than(&heaviest(0.0, 3000), 10));
    }

    #[test]
    fn keys_that_never_repeat_explain_nothing_however_few_were_sampled() {
        // A slow or young window holds a handful of samples, all different: every one
        // of them is among the heavy hitters, and nothing is left over to repeat.
        for n in 1..=64 {
            let k = sampled(n, 1);
            assert_eq!(weight_change(&k), None, "{n} samples: {k:?}");
        }
    }

    #[test]
    fn few_values_explain_once_each_was_seen_four_times() {
        assert_eq!(weight_change(&sampled(3, 3)), None);
        assert_eq!(
            weight_change(&sampled(3, 4)).as_deref(),
            Some("the hash key took only ~3 distinct values over the last 1 s for 4 backends")
        );
    }
}
