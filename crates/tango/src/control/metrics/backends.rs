//! The backends' and pools' series of one scrape: the data plane's counters and latency
//! histograms, weights, health and panic mode, read from the snapshot in force.

use super::{counter_family, gauge_family, Labels, Value};
use crate::runtime::Snapshot;
use crate::stats::{StatsSnapshot, CODE_CLASSES, LATENCY_BUCKETS};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

/// Every backend's (and pool's) series of one scrape, read from the snapshot in force.
#[derive(Default)]
pub(super) struct BackendRows {
    requests: Vec<(Labels, u64)>,
    broken: Vec<(Labels, u64)>,
    in_flight: Vec<(Labels, f64)>,
    configured: Vec<(Labels, f64)>,
    effective: Vec<(Labels, f64)>,
    healthy: Vec<(Labels, f64)>,
    latency: Vec<(Labels, StatsSnapshot)>,
    transitions: Vec<(Labels, u64)>,
    panic: Vec<(Labels, f64)>,
    resends: Vec<(Labels, u64)>,
}

impl BackendRows {
    /// `now` is the time since start, for slow start.
    pub(super) fn read(snap: &Snapshot, now: u64) -> Self {
        let mut r = BackendRows::default();
        for pool in &snap.pools {
            let in_panic = pool.shared.panic();
            let pool_name = Value::from(&pool.cfg.name);
            r.panic.push((
                vec![("pool", pool_name.clone())],
                if in_panic { 1.0 } else { 0.0 },
            ));
            let (resent, refused) = pool.retry_budget.counts();
            for (result, n) in [("sent", resent), ("refused", refused)] {
                let labels = vec![("pool", pool_name.clone()), ("result", result.into())];
                r.resends.push((labels, n));
            }
            for (i, b) in pool.backends.iter().enumerate() {
                let bcfg = &pool.cfg.backends[i];
                let labels: Labels = vec![
                    ("pool", pool_name.clone()),
                    ("backend", (&bcfg.name).into()),
                ];
                let s = b.stats.snapshot();
                for (c, n) in s.by_class.iter().enumerate() {
                    let mut l = labels.clone();
                    l.push(("code", CODE_CLASSES[c].into()));
                    r.requests.push((l, *n));
                }
                r.broken.push((labels.clone(), s.broken));
                r.in_flight.push((labels.clone(), b.in_flight() as f64));
                r.configured.push((labels.clone(), f64::from(bcfg.weight)));
                r.effective
                    .push((labels.clone(), pool.effective_weight(i, now)));
                r.healthy
                    .push((labels.clone(), if b.available() { 1.0 } else { 0.0 }));
                r.transitions.push((labels.clone(), b.health_transitions()));
                r.latency.push((labels, s));
            }
        }
        r
    }

    pub(super) fn encode(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        counter_family(
            enc,
            "tango_backend_requests",
            "Requests forwarded to a backend, by response status class (error: no response).",
            &self.requests,
        )?;
        counter_family(
            enc,
            "tango_backend_broken_responses",
            "Answers below 500 whose body the backend broke off (reset, closed short, bad chunked framing, silent past the idle timeout); also counted in tango_backend_requests by status.",
            &self.broken,
        )?;
        self.encode_latency(enc)?;
        gauge_family(
            enc,
            "tango_backend_in_flight",
            "Requests in progress at a backend.",
            &self.in_flight,
        )?;
        gauge_family(
            enc,
            "tango_backend_configured_weight",
            "Weight as configured.",
            &self.configured,
        )?;
        gauge_family(
            enc,
            "tango_backend_effective_weight",
            "Configured weight x eligible (healthy, not ejected) x slow-start factor.",
            &self.effective,
        )?;
        counter_family(
            enc,
            "tango_pool_retry_resends",
            "Retries that send again a request a backend already received, paid from the pool's retry budget (result=sent) or refused for want of it (result=refused). Retries of requests that never left tango cost nothing and are not counted here.",
            &self.resends,
        )?;
        gauge_family(
            enc,
            "tango_pool_panic_mode",
            "1 while too few backends are eligible and the pool balances across all of them.",
            &self.panic,
        )?;
        counter_family(
            enc,
            "tango_backend_health_transitions",
            "Active health-check transitions, healthy to unhealthy or back.",
            &self.transitions,
        )?;
        gauge_family(
            enc,
            "tango_backend_healthy",
            "1 when the backend is eligible for traffic (healthy and not ejected).",
            &self.healthy,
        )
    }

    fn encode_latency(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let mut m = enc.encode_descriptor(
            "tango_backend_request_duration_seconds",
            "Time from sending a request to a backend to its response head.",
            None,
            MetricType::Histogram,
        )?;
        for (l, s) in &self.latency {
            // prometheus-client writes the bound `f64::MAX` as `+Inf`, the spelling
            // both formats require (`f64::INFINITY` would print as `inf`).
            let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                .iter()
                .copied()
                .chain(std::iter::once(f64::MAX))
                .zip(s.latency_buckets.iter().copied())
                .collect();
            m.encode_family(l)?.encode_histogram::<Labels>(
                s.latency_sum_us as f64 / 1e6,
                s.latency_count(),
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}
