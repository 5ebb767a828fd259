//! Active health checks: one probe task per backend of every pool with `[pool.health]`.
//! A supervisor reconciles the tasks with each configuration generation, so probes start
//! for new backends and stop for backends that left. Decisions (rise/fall, expected
//! status) are tango-core's; this module only probes (`probe`) and applies. Each probe
//! goes with the settings in force when it starts, a reload's included.

mod probe;

use crate::runtime::{BackendState, Runtime};
use crate::upstream::Dialer;
use probe::{probe, Wire};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::HealthCheck;
use tango_core::health::{next_probe_delay, HealthState};

/// Keep one probe task per (pool, address) that has health checks configured.
pub(crate) async fn supervise(rt: Arc<Runtime>, events: crate::journal::Sink) {
    let mut tasks: HashMap<(String, String), tokio::task::JoinHandle<()>> = HashMap::new();
    let mut seen_generation = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let snap = rt.current();
        if snap.generation == seen_generation {
            continue;
        }
        seen_generation = snap.generation;
        let mut want = Vec::new();
        for p in &snap.pools {
            if p.cfg.health.is_some() {
                for b in &p.cfg.backends {
                    want.push((p.cfg.name.clone(), b.address.clone()));
                }
            }
        }
        tasks.retain(|k, t| {
            let keep = want.contains(k);
            if !keep {
                t.abort();
            }
            keep
        });
        for k in want {
            tasks
                .entry(k.clone())
                .or_insert_with(|| tokio::spawn(probe_loop(rt.clone(), k.0, k.1, events.clone())));
        }
        // A backend without health checks is healthy by definition.
        for p in snap.pools.iter().filter(|p| p.cfg.health.is_none()) {
            for b in &p.backends {
                b.assume_healthy();
            }
        }
    }
}

async fn probe_loop(rt: Arc<Runtime>, pool: String, address: String, events: crate::journal::Sink) {
    let mut state: Option<HealthState> = None;
    loop {
        // The interval in force now; the wait may be long, and a reload during it.
        let Some((cfg, ..)) = current(&rt, &pool, &address) else {
            return;
        };
        tokio::time::sleep(next_probe_delay(
            cfg.interval,
            cfg.jitter,
            crate::rng::next_u64(),
        ))
        .await;
        // The settings in force when the probe goes: a reload during the wait (a new
        // path, expected statuses, TLS) applies to it, not only to the one after.
        let Some((cfg, backend, dial, wire)) = current(&rt, &pool, &address) else {
            return;
        };
        let st = state.get_or_insert_with(|| HealthState::new(&cfg));
        st.reconfigure(cfg.rise, cfg.fall);
        let probe = probe(&address, &cfg, &dial, wire).await;
        if let tango_core::health::Probe::Fail(reason) = &probe {
            // Kept for `tango status`, which says why a backend is down.
            backend.probe_failed(reason);
        }
        if let Some(t) = st.record(probe, rt.elapsed()) {
            // Back in service, slow start ramps it up from now.
            backend.set_healthy(t.healthy, rt.now_ms());
            if t.healthy {
                tracing::info!(pool = %pool, backend = %backend.name, reason = %t.reason, "backend healthy");
            } else {
                tracing::warn!(pool = %pool, backend = %backend.name, reason = %t.reason, "backend unhealthy");
            }
            events.health(&pool, &backend.name, t.healthy, &t.reason);
            let snap = rt.current();
            if let Some(p) = snap.pools.iter().find(|p| p.cfg.name == pool) {
                p.recheck_panic(Some(&events));
            }
        }
    }
}

/// What probing `address` in `pool` takes in the configuration in force: the check,
/// the backend, how to connect and what to speak; `None` once the pool, the backend or
/// the pool's checks are gone.
fn current(
    rt: &Runtime,
    pool: &str,
    address: &str,
) -> Option<(HealthCheck, Arc<BackendState>, Arc<Dialer>, Wire)> {
    let snap = rt.current();
    let p = snap.pools.iter().find(|p| p.cfg.name == pool)?;
    let i = p.cfg.backends.iter().position(|b| b.address == address)?;
    let cfg = p.cfg.health.clone()?;
    Some((cfg, p.backends[i].clone(), p.dial.clone(), Wire::of(&p.cfg)))
}
