//! A pool's panic mode (too few eligible backends: balance across all of them),
//! recomputed wherever eligibility changes: the upkeep tick, the health checks when a
//! backend goes up or down, the request path when it ejects one, and a reload, so a
//! pool never waits for the next tick to balance across all its backends.

use super::PoolRuntime;
use crate::journal::Sink;
use tango_core::health::eligibility;
use tango_core::journal::EventKind;

impl PoolRuntime {
    /// Recompute whether the pool is in panic mode, and journal the change if there is
    /// one.
    pub(crate) fn recheck_panic(&self, journal: Option<&Sink>) {
        if let (Some(entered), Some(journal)) = (self.update_panic(), journal) {
            journal.record(EventKind::PanicMode {
                pool: self.cfg.name.clone(),
                entered,
            });
        }
    }

    /// Recompute whether the pool is in panic mode. Returns `Some(entered)` when that
    /// changed.
    fn update_panic(&self) -> Option<bool> {
        let healthy: Vec<bool> = self.backends.iter().map(|b| b.healthy()).collect();
        let ejected: Vec<bool> = self.backends.iter().map(|b| b.ejected()).collect();
        let weights: Vec<u32> = self.cfg.backends.iter().map(|b| b.weight).collect();
        let e = eligibility(&healthy, &ejected, &weights, self.cfg.panic_threshold);
        let was = self.shared.set_panic(e.panic);
        if was == e.panic {
            return None;
        }
        if e.panic {
            tracing::warn!(pool = %self.cfg.name, eligible = e.count(), backends = self.backends.len(), "panic mode: too few eligible backends, balancing across all");
        } else {
            tracing::info!(pool = %self.cfg.name, "panic mode over");
        }
        Some(e.panic)
    }
}
