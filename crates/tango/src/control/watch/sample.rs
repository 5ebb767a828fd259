//! One tick's reading of a pool: each backend's counters since the last tick into the
//! detectors' input (its effective weight over the part of the tick it was in rotation,
//! and for a hash pool the key-space split and the key statistics) and the tick's
//! traffic for the summaries.

use super::straddle;
use super::traffic::{BackendTick, PoolTraffic};
use super::PoolWatch;
use crate::proxy::keys::pick_for_key;
use crate::runtime::{PoolRuntime, Runtime};
use std::time::Duration;
use tango_core::detector::{key_space_split, BackendSample, KeyStats, PoolTick};
use tango_core::policy::Pick;

/// Read one pool's counters into the detector's input and the tick's traffic.
pub(super) fn sample(
    rt: &Runtime,
    pool: &PoolRuntime,
    w: &mut PoolWatch,
    now_ms: u64,
) -> (PoolTick, PoolTraffic) {
    let now = rt.now_ms();
    let client = pool.shared.client.snapshot();
    let mut traffic = PoolTraffic::new(now_ms, &client, &w.prev_client);
    w.prev_client = client;
    let mut backends = Vec::with_capacity(pool.backends.len());
    let tick_ms = w.detector.config().tick_ms;
    let span = w
        .sampled_ms
        .map_or(tick_ms, |last| now.saturating_sub(last));
    w.sampled_ms = Some(now);
    for (i, b) in pool.backends.iter().enumerate() {
        let cfg = &pool.cfg.backends[i];
        let s = b.stats.snapshot();
        let p = w.prev.get(&cfg.address).cloned().unwrap_or_default();
        let t = BackendTick::between(&cfg.name, &s, &p);
        backends.push(BackendSample {
            name: cfg.name.clone(),
            configured_weight: f64::from(cfg.weight),
            effective_weight: tick_weight(pool, i, now, span),
            requests: s.requests(),
            errors: s.errors(),
            client_errors: Some(s.client_errors),
            latency_sum_ms: s.latency_sum_us.saturating_sub(p.latency_sum_us) as f64 / 1000.0,
            latency_count: t.latency.iter().sum(),
            latency_buckets: t.latency.to_vec(),
        });
        traffic.backends.push(t);
        w.prev.insert(cfg.address.clone(), s);
    }
    let expected = pool.cfg.policy.is_hash().then(|| {
        // Key-space ownership, with each backend's part in rotation as the effective
        // weight scales the configured one: an ineligible backend's keys spread over the
        // rest, a backend that came back during the tick owns its keys for that part of
        // it, and one in slow start takes only its ramp's part of its own keys and turns
        // the rest away to the others, as the picker does (renormalised like weights, a
        // backend a reload adds read as an under-share while it ramps, and the canary
        // rolled the reload back).
        let parts: Vec<f64> = backends
            .iter()
            .map(|b| match b.configured_weight > 0.0 {
                true => (b.effective_weight / b.configured_weight).min(1.0),
                false => 0.0,
            })
            .collect();
        key_space_split(&pool.ownership, &parts)
    });
    let expected_configured = pool.cfg.policy.is_hash().then(|| pool.ownership.clone());
    let keys = pool
        .cfg
        .policy
        .is_hash()
        .then(|| key_stats(pool, rt.elapsed()));
    let input = PoolTick {
        now_ms,
        backends,
        expected,
        expected_configured,
        keys,
    };
    (input, traffic)
}

/// Backend `i`'s effective weight over the tick, `span` long and sampled at `now` (time
/// since start): scaled by the part of the tick it was in rotation, so the tick it came
/// back in or left in counts it only for the part it was in (one that left, at the
/// weight and ramp it had then). In panic mode every backend is in rotation.
fn tick_weight(pool: &PoolRuntime, i: usize, now: u64, span: u64) -> f64 {
    let b = &pool.backends[i];
    let weight = f64::from(pool.cfg.backends[i].weight);
    let available = b.available();
    let panic = pool.shared.panic();
    let stints = straddle::Stints {
        available: available || panic,
        back_ms: b.ready_since_ms(),
        left_ms: b.left_ms(),
    };
    let part = straddle::rotation_part(now, span, stints);
    if panic {
        return weight * part;
    }
    if available {
        // A ramping backend at the ramp's mean over the part of the tick it was in, not
        // at the tick's end: a second into a 3 s ramp that is 0.25 where the end says
        // 0.4, and the backend a reload added read as an under-share.
        let from = now
            .saturating_sub(span)
            .max(b.ready_since_ms().unwrap_or(0));
        return weight * pool.slow_start_over(i, from, now) * part;
    }
    let left = b.left_ms().unwrap_or(now);
    weight * pool.slow_start(i, left) * part
}

/// Heavy hitters handed to the detector.
const TOP_KEYS: usize = 8;
/// Samples the recent view's heaviest key needs before it is preferred.
const RECENT_MIN_SAMPLES: u64 = 10;

/// A hash pool's key statistics, as the detector judges by, with the backend each heavy
/// key maps to now: the minute's, unless a key is markedly heavier in the last seconds
/// (and seen there often enough to say so). `now` is the time since start.
fn key_stats(pool: &PoolRuntime, now: Duration) -> KeyStats {
    let [minute, recent] = pool.shared.keys.summaries(now.as_millis() as u64);
    let backend_of = |k| match pick_for_key(pool, k, now) {
        Pick::Backend(i) => Some(pool.cfg.backends[i].name.clone()),
        _ => None,
    };
    let minute = minute.key_stats(TOP_KEYS, backend_of);
    let recent = recent.key_stats(TOP_KEYS, backend_of);
    if recent.markedly_heavier_than(&minute, RECENT_MIN_SAMPLES) {
        recent
    } else {
        minute
    }
}
