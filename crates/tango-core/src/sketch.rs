//! Key statistics of a hash pool over a sliding window: how many distinct key values, and
//! which values carry the most requests.
//!
//! The proxy samples requests (1 in N) and hands each sampled request's key hash, or its
//! absence, to [`KeySketch::observe`]: a HyperLogLog register update and a Space-Saving
//! counter update, O(1) and without allocation once built. The window is a ring of
//! epochs (default 6 of 10 s); [`KeySketch::rotate`], called by the owner with the time
//! (the watch tick), moves to the next epoch and clears it, so nothing on the request path
//! reads a clock. [`KeySketch::summary`] merges the epochs into a [`KeySummary`]: the
//! distinct-key estimate over the window, the heavy hitters with their counts (also the
//! bounded key sample a predicted shift can be computed from), and the keyless share.
//!
//! Counts are of *sampled* requests; shares are unbiased under uniform sampling. The
//! distinct estimate is of distinct keys *among the samples*: it approaches the true
//! number only once keys repeat in the sample, which [`KeySummary::saturated`] tells.

mod hll;
#[cfg(test)]
mod tests;
mod topk;

pub use hll::Hll;
pub use topk::{KeyCount, TopK};

use crate::detector::{KeyStats, TopKey};

/// Sizes of a [`KeySketch`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeySketchConfig {
    /// The sliding window's length.
    pub window_ms: u64,
    /// Epochs the window is cut into: the window slides by `window_ms / epochs`.
    pub epochs: usize,
    /// Heavy-hitter counters per epoch.
    pub top_k: usize,
    /// HyperLogLog precision (`2^p` one-byte registers per epoch).
    pub precision: u8,
}

impl Default for KeySketchConfig {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            epochs: 6,
            top_k: 32,
            precision: 10,
        }
    }
}

#[derive(Debug, Clone)]
struct Epoch {
    hll: Hll,
    top: TopK,
    missing: u64,
}

/// Distinct keys and heavy hitters of one hash pool over a sliding window.
#[derive(Debug, Clone)]
pub struct KeySketch {
    cfg: KeySketchConfig,
    epochs: Vec<Epoch>,
    current: usize,
    /// When the current epoch began, and how many epochs hold data.
    started_ms: u64,
    filled: usize,
}

/// What the window holds, merged over its epochs.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct KeySummary {
    /// Time covered: from the oldest epoch with data to the last rotation.
    pub window_ms: u64,
    /// Sampled requests with the key, and without it.
    pub keyed: u64,
    /// Sampled requests without it.
    pub missing: u64,
    /// Estimated distinct key values among the keyed samples.
    pub distinct: u64,
    /// The heaviest key values, largest count first (at most the sketch's `top_k`).
    pub top: Vec<KeyCount>,
}

impl KeySketch {
    /// An empty sketch whose first epoch starts at `now_ms`.
    pub fn new(cfg: KeySketchConfig, now_ms: u64) -> Self {
        let n = cfg.epochs.max(1);
        let epoch = Epoch {
            hll: Hll::new(cfg.precision),
            top: TopK::new(cfg.top_k),
            missing: 0,
        };
        Self {
            epochs: vec![epoch; n],
            cfg,
            current: 0,
            started_ms: now_ms,
            filled: 1,
        }
    }

    fn epoch_ms(&self) -> u64 {
        (self.cfg.window_ms / self.epochs.len() as u64).max(1)
    }

    /// One sampled request: its key hash, or `None` when it had no key.
    pub fn observe(&mut self, key: Option<u64>) {
        let e = &mut self.epochs[self.current];
        match key {
            Some(k) => {
                e.hll.insert(k);
                e.top.observe(k);
            }
            None => e.missing += 1,
        }
    }

    /// Advances to `now_ms`: every epoch length passed starts a new epoch (clearing the
    /// oldest). Time going backwards is ignored.
    pub fn rotate(&mut self, now_ms: u64) {
        let len = self.epoch_ms();
        let n = self.epochs.len();
        let steps = now_ms.saturating_sub(self.started_ms) / len;
        if steps == 0 {
            return;
        }
        for _ in 0..steps.min(n as u64) {
            self.current = (self.current + 1) % n;
            let e = &mut self.epochs[self.current];
            e.hll.clear();
            e.top.clear();
            e.missing = 0;
        }
        self.filled = if steps >= n as u64 {
            1
        } else {
            (self.filled + steps as usize).min(n)
        };
        self.started_ms += steps * len;
    }

    /// The window merged: allocates, for the once-a-tick reader.
    pub fn summary(&self, now_ms: u64) -> KeySummary {
        let n = self.epochs.len();
        let mut hll = Hll::new(self.cfg.precision);
        let mut counts: Vec<KeyCount> = Vec::new();
        let (mut keyed, mut missing) = (0, 0);
        let held: Vec<&Epoch> = (0..self.filled)
            .map(|i| &self.epochs[(self.current + n - i) % n])
            .collect();
        let tops: Vec<Vec<KeyCount>> = held.iter().map(|e| e.top.top()).collect();
        for (e, top) in held.iter().zip(&tops) {
            hll.merge(&e.hll);
            keyed += e.top.observed();
            missing += e.missing;
            for kc in top {
                match counts.iter_mut().find(|c| c.key == kc.key) {
                    Some(c) => {
                        c.count += kc.count;
                        c.error += kc.error;
                    }
                    None => counts.push(*kc),
                }
            }
        }
        // A key an epoch does not hold was seen there at most that epoch's floor times.
        for c in &mut counts {
            for (e, top) in held.iter().zip(&tops) {
                if top.iter().all(|k| k.key != c.key) {
                    c.error += e.top.floor();
                }
            }
        }
        counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        counts.truncate(self.cfg.top_k);
        let older = (self.filled as u64).saturating_sub(1) * self.epoch_ms();
        KeySummary {
            window_ms: older + now_ms.saturating_sub(self.started_ms),
            keyed,
            missing,
            distinct: hll.estimate().round() as u64,
            top: counts,
        }
    }
}

impl KeySummary {
    /// Every sampled request, with or without the key.
    pub fn sampled(&self) -> u64 {
        self.keyed + self.missing
    }

    /// A key's share of all sampled requests.
    pub fn share(&self, k: &KeyCount) -> f64 {
        match self.sampled() {
            0 => 0.0,
            n => k.count as f64 / n as f64,
        }
    }

    /// Whether keys repeat in the sample, so that `distinct` estimates the pool's distinct
    /// keys rather than the sample's size: the values were sampled four times each on
    /// average, and so were those outside the heavy hitters (a hot key's repeats say
    /// nothing of the rest). A sample the heavy hitters hold whole has no rest: its
    /// values must repeat themselves.
    pub fn saturated(&self) -> bool {
        let held: u64 = self.top.iter().map(|k| k.count).sum();
        let rest = self.distinct.saturating_sub(self.top.len() as u64);
        self.distinct > 0
            && self.keyed >= 4 * self.distinct
            && self.keyed.saturating_sub(held) >= 4 * rest
    }

    /// The detector's view: the first `n` heavy hitters with the backend each maps to now
    /// (`backend_of` asks the pool's selector).
    pub fn key_stats(
        &self,
        n: usize,
        mut backend_of: impl FnMut(u64) -> Option<String>,
    ) -> KeyStats {
        let top_keys: Vec<TopKey> = self
            .top
            .iter()
            .take(n)
            .map(|k| TopKey {
                share: self.share(k),
                samples: k.count,
                backend: backend_of(k.key),
            })
            .collect();
        let sampled = self.sampled();
        KeyStats {
            top_key_share: top_keys.first().map_or(0.0, |k| k.share),
            top_key_backend: top_keys.first().and_then(|k| k.backend.clone()),
            distinct_keys: self.distinct,
            missing_key_fraction: if sampled > 0 {
                self.missing as f64 / sampled as f64
            } else {
                0.0
            },
            missing_key_backend: None,
            sampled_keys: self.keyed,
            window_ms: self.window_ms,
            top_keys,
        }
    }
}
