//! The canary after an applied reload: which pools and backends the reload changed, and
//! whether an alert fired in the window is one the reload caused, so that the previous
//! configuration should come back.
//!
//! An alert is the reload's when the journal attributes it to the reload's generation
//! (the suspected cause is that config change, not health or the key distribution), it
//! is in a pool the reload changed, and it is a share alert (over- or under-share against
//! the new expectation, or a shift nobody predicted), or an error-rate or latency
//! outlier on a backend the reload changed.
//!
//! A canary does not pass a change it could not judge: the share tests need a backend's
//! expected requests in a window to reach the detector's floor
//! ([`DetectorConfig::min_expected`](crate::detector::DetectorConfig) times the pool's
//! over-dispersion), so at a low rate the window stays open past its length until every
//! changed pool has had [`requests_to_judge`] requests since the reload, for at most
//! [`LONGEST_WINDOWS`] windows; one that ends short of them was not judged.

use crate::config::Config;
use crate::detector::{AlertKind, Evidence};
use crate::journal::{summarize_changes, CanaryTraffic, SuspectedCause};
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

/// How many of its own windows a canary may last at most, while the pools it watches have
/// too few requests to judge (30 s: five minutes).
pub const LONGEST_WINDOWS: u64 = 10;

/// The smallest share, in the split before the reload, of a backend in `scope` (every
/// backend of the pool when the change is to the whole pool): the backend whose share
/// test needs the most requests. A backend or pool the reload adds counts at its share
/// in the new split. Shares are by weight (for a hash pool, about the key space a
/// backend owns). 1 when no backend of the scope has a share.
pub fn judged_share(old: &Config, new: &Config, scope: &ScopePool) -> f64 {
    let Some(np) = new.pool(&scope.pool) else {
        return 1.0;
    };
    let share = |p: &crate::config::Pool, name: &str| {
        let total: u32 = p.backends.iter().map(|b| b.weight).sum();
        let b = p.backends.iter().find(|b| b.name == name)?;
        (total > 0 && b.weight > 0).then(|| f64::from(b.weight) / f64::from(total))
    };
    np.backends
        .iter()
        .filter(|b| scope.backends.as_ref().is_none_or(|s| s.contains(&b.name)))
        .filter_map(|b| {
            let before = old.pool(&scope.pool).and_then(|op| share(op, &b.name));
            before.or_else(|| share(np, &b.name))
        })
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.min(s))))
        .unwrap_or(1.0)
}

/// Requests a pool needs before the share tests can judge a backend with `share` of it:
/// `floor` (the detector's least expected count in a window) over the share.
pub fn requests_to_judge(share: f64, floor: f64) -> u64 {
    (floor / share.max(1e-6)).ceil() as u64
}

/// What one applied reload's canary watches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Canary {
    /// The configuration generation the reload applied.
    pub generation: u64,
    /// Unix milliseconds when the window closes, if the pools have had the requests to
    /// judge by then.
    pub until_ms: u64,
    /// Unix milliseconds when it closes at the latest, judged or not
    /// ([`LONGEST_WINDOWS`] windows after the reload).
    pub longest_until_ms: u64,
    /// The pools it changed.
    pub pools: Vec<ScopePool>,
    /// For each of `pools`, its [`judged_share`].
    pub shares: Vec<f64>,
}

impl Canary {
    /// Whether `alert`, fired at `now_ms` with `cause` attributed to it, is this
    /// reload's doing. Any time up to `longest_until_ms` counts: whether the window was
    /// extended that far is the caller's to know.
    pub fn caused(&self, alert: &Evidence, cause: &SuspectedCause, now_ms: u64) -> bool {
        if now_ms > self.longest_until_ms || cause.generation != Some(self.generation) {
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

/// Where a canary stands once a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Its window is open.
    Open,
    /// Its window has passed, but some pool has had too few requests to judge (those
    /// pools): it stays open.
    Extended(Vec<CanaryTraffic>),
    /// Its window has passed and every pool had the requests to judge.
    Passed,
    /// Its longest window has passed and these pools still had too few requests.
    NotJudged(Vec<CanaryTraffic>),
}

impl Canary {
    /// Where the canary stands at `now_ms`, given each of its pools' requests since the
    /// reload and what judging it needs (`traffic`, one per pool).
    pub fn standing(&self, now_ms: u64, traffic: &[CanaryTraffic]) -> Standing {
        if now_ms <= self.until_ms {
            return Standing::Open;
        }
        let short: Vec<CanaryTraffic> = traffic
            .iter()
            .filter(|t| t.requests < t.needed)
            .cloned()
            .collect();
        match (short.is_empty(), now_ms > self.longest_until_ms) {
            (true, _) => Standing::Passed,
            (false, false) => Standing::Extended(short),
            (false, true) => Standing::NotJudged(short),
        }
    }
}
