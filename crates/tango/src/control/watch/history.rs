//! The last fifteen minutes of every pool's shares and latency, one point per watch
//! tick, kept so a freshly opened dashboard can draw its chart at once.

use std::collections::VecDeque;
use tango_core::detector::BackendGauge;

/// How far back the history reaches.
pub(crate) const KEEP_MS: u64 = 15 * 60 * 1000;

/// One backend's shares (fractions of the pool, 0 to 1) at one tick.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct BackendPoint {
    pub(crate) backend: String,
    pub(crate) observed: f64,
    pub(crate) effective: f64,
    pub(crate) configured: f64,
}

/// One pool at one tick.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PoolPoint {
    pub(crate) pool: String,
    pub(crate) rate_rps: f64,
    /// Mean response time over the last few ticks; absent when no response was seen.
    pub(crate) latency_ms: Option<f64>,
    pub(crate) backends: Vec<BackendPoint>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct HistoryPoint {
    pub(crate) ts_ms: u64,
    pub(crate) pools: Vec<PoolPoint>,
}

/// Points oldest first, none older than `KEEP_MS` before the newest.
#[derive(Debug, Default)]
pub(crate) struct History {
    points: VecDeque<HistoryPoint>,
}

impl History {
    pub(crate) fn push(&mut self, p: HistoryPoint) {
        let cutoff = p.ts_ms.saturating_sub(KEEP_MS);
        while self.points.front().is_some_and(|o| o.ts_ms < cutoff) {
            self.points.pop_front();
        }
        self.points.push_back(p);
    }

    /// The points at or after `from_ms`, oldest first.
    pub(crate) fn since(&self, from_ms: u64) -> Vec<HistoryPoint> {
        self.points
            .iter()
            .filter(|p| p.ts_ms >= from_ms)
            .cloned()
            .collect()
    }
}

/// A pool's point from the detector's gauges and the watch's observed load.
pub(super) fn pool_point(
    pool: &str,
    gauges: &[BackendGauge],
    rate_rps: f64,
    latency_ms: f64,
) -> PoolPoint {
    PoolPoint {
        pool: pool.to_string(),
        rate_rps,
        latency_ms: (latency_ms > 0.0).then_some(latency_ms),
        backends: gauges
            .iter()
            .map(|g| BackendPoint {
                backend: g.backend.clone(),
                observed: g.observed_share,
                effective: g.expected_share,
                configured: g.configured_share,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ts_ms: u64) -> HistoryPoint {
        HistoryPoint {
            ts_ms,
            pools: Vec::new(),
        }
    }

    #[test]
    fn keeps_fifteen_minutes_and_answers_from_a_time() {
        let mut h = History::default();
        for s in 0..=1000u64 {
            h.push(point(s * 1000));
        }
        let all = h.since(0);
        assert_eq!(all.first().map(|p| p.ts_ms), Some(100_000));
        assert_eq!(all.len(), 901);
        let tail: Vec<u64> = h.since(998_500).iter().map(|p| p.ts_ms).collect();
        assert_eq!(tail, vec![999_000, 1_000_000]);
    }
}
