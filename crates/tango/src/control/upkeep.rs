//! The upkeep task, every 250 ms: return ejected backends on time (outlier detection's
//! clock), recompute each pool's panic mode, drop stale idle upstream connections, and
//! report connect failures the rate-limited log left out. Panic mode is also recomputed
//! by the health checks when a backend goes up or down, and by the request path when
//! it ejects one (`PoolRuntime::recheck_panic`), so a pool never waits for this tick to balance
//! across all its backends once too few are left.

use crate::journal::Sink;
use crate::proxy::accounting::{apply_events, journal_events};
use crate::runtime::Runtime;
use std::sync::Arc;
use std::time::Duration;

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
            pool.recheck_panic(Some(&journal));
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
