//! The upkeep task, every 250 ms: return ejected backends on time (outlier detection's
//! clock), recompute each pool's panic mode, drop stale idle upstream connections, and
//! report connect failures the rate-limited log left out. Panic mode is also recomputed
//! by the health checks when a backend goes up or down, and by the request path when
//! it ejects one ([`recheck_panic`]), so a pool never waits for this tick to balance
//! across all its backends once too few are left.

use crate::journal::Sink;
use crate::proxy::accounting::{apply_events, journal_events};
use crate::runtime::{PoolRuntime, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tango_core::health::eligibility;
use tango_core::journal::EventKind;

/// Every 250 ms, for every pool of the snapshot in force.
pub(crate) async fn run(rt: Arc<Runtime>, journal: Sink) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let snap = rt.current();
        let now = rt.elapsed();
        for pool in &snap.pools {
            let events = {
                let mut g = pool
                    .shared
                    .outlier
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match g.as_mut() {
                    Some(det) => det.tick(now),
                    None => Vec::new(),
                }
            };
            apply_events(pool, &events, rt.now_ms());
            journal_events(&journal, pool, &events);
            recheck_panic(pool, Some(&journal));
            let now_ms = rt.now_ms();
            for (b, cfg) in pool.backends.iter().zip(&pool.cfg.backends) {
                b.conns.sweep(pool.cfg.idle_timeout);
                crate::upstream::flush_connect_failures(
                    &b.conns,
                    &pool.cfg.name,
                    &cfg.name,
                    now_ms,
                );
            }
        }
    }
}

/// Recompute whether the pool is in panic mode, and journal the change if there is one.
pub(crate) fn recheck_panic(pool: &PoolRuntime, journal: Option<&Sink>) {
    if let (Some(entered), Some(journal)) = (update_panic(pool), journal) {
        journal.record(EventKind::PanicMode {
            pool: pool.cfg.name.clone(),
            entered,
        });
    }
}

/// Recompute whether the pool is in panic mode (too few eligible backends). Returns
/// `Some(entered)` when that changed.
fn update_panic(pool: &PoolRuntime) -> Option<bool> {
    let healthy: Vec<bool> = pool.backends.iter().map(|b| b.healthy()).collect();
    let ejected: Vec<bool> = pool.backends.iter().map(|b| b.ejected()).collect();
    let weights: Vec<u32> = pool.cfg.backends.iter().map(|b| b.weight).collect();
    let e = eligibility(&healthy, &ejected, &weights, pool.cfg.panic_threshold);
    let was = pool.shared.set_panic(e.panic);
    if was != e.panic {
        if e.panic {
            tracing::warn!(pool = %pool.cfg.name, eligible = e.count(), backends = pool.backends.len(), "panic mode: too few eligible backends, balancing across all");
        } else {
            tracing::info!(pool = %pool.cfg.name, "panic mode over");
        }
        return Some(e.panic);
    }
    None
}
