//! The canary after an applied reload: which pools and backends the reload changed, and
//! whether an alert fired in the window is one the reload caused, so that the previous
//! configuration should come back.
//!
//! An alert is the reload's when the journal attributes it to the reload's generation
//! (the suspected cause is that config change, not health or the key distribution), it
//! is in a pool the reload changed, and it is a share alert (over- or under-share against
//! the new expectation, or a shift nobody predicted), or an error-rate or latency
//! outlier on a backend the reload changed.

use crate::config::Config;
use crate::detector::{AlertKind, Evidence};
use crate::journal::{summarize_changes, SuspectedCause};
use serde::Serialize;

/// A pool a reload changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopePool {
    /// The pool's name.
    pub pool: String,
    /// The backends it changed, by name in the new configuration; `None` when the change
    /// is to the whole pool (policy, hash key, health, timeouts, a new pool).
    pub backends: Option<Vec<String>>,
}

/// The pools `new` changes relative to `old`, in the new file's pool order. A removed
/// pool cannot alert, so it is not one of them.
pub fn changed_pools(old: &Config, new: &Config) -> Vec<ScopePool> {
    let changes = summarize_changes(old, new);
    let mut out = Vec::new();
    for np in &new.pools {
        let mine: Vec<_> = changes.iter().filter(|c| c.pool == np.name).collect();
        let caps_moved = old.pool(&np.name).is_some_and(|op| {
            np.backends.iter().any(|nb| {
                op.backends
                    .iter()
                    .any(|ob| ob.address == nb.address && ob.max_in_flight != nb.max_in_flight)
            })
        });
        if mine.is_empty() && !caps_moved {
            continue;
        }
        let whole = caps_moved || mine.iter().any(|c| c.backend.is_none());
        let backends = (!whole).then(|| {
            let mut names: Vec<String> = Vec::new();
            for b in mine.iter().filter_map(|c| c.backend.clone()) {
                if !names.contains(&b) {
                    names.push(b);
                }
            }
            names
        });
        out.push(ScopePool {
            pool: np.name.clone(),
            backends,
        });
    }
    out
}

/// What one applied reload's canary watches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Canary {
    /// The configuration generation the reload applied.
    pub generation: u64,
    /// Unix milliseconds when the window closes.
    pub until_ms: u64,
    /// The pools it changed.
    pub pools: Vec<ScopePool>,
}

impl Canary {
    /// Whether `alert`, fired at `now_ms` with `cause` attributed to it, is this
    /// reload's doing.
    pub fn caused(&self, alert: &Evidence, cause: &SuspectedCause, now_ms: u64) -> bool {
        if now_ms > self.until_ms || cause.generation != Some(self.generation) {
            return false;
        }
        let Some(scope) = self.pools.iter().find(|p| p.pool == alert.pool) else {
            return false;
        };
        match alert.kind {
            AlertKind::OverShare | AlertKind::UnderShare => true,
            AlertKind::Errors | AlertKind::Latency => scope
                .backends
                .as_ref()
                .is_none_or(|b| b.contains(&alert.backend)),
        }
    }
}
