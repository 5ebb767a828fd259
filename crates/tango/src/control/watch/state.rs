//! What the watch publishes, for `/metrics`, the admin API, the reload guard and the
//! demo: each pool's gauges, the clients' traffic per tick, each pool's observed load,
//! the incidents open and recent, the last fifteen minutes of shares; and what it is
//! told: the split to expect after a predicted change.

use super::history::{pool_point, History, HistoryPoint};
use crate::runtime::PoolRuntime;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tango_core::detector::{BackendGauge, Evidence, Incident};
use tango_core::journal::SuspectedCause;

/// Each backend's expected share of a pool, by name.
pub(crate) type Split = Vec<(String, f64)>;
/// Per pool, a split the watch's shift detector should expect.
pub(crate) type Expectations = Vec<(String, Split)>;

/// One signal as `/metrics` and the demo read it: the evidence and its incident's cause.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct AlertRecord {
    pub(crate) evidence: Evidence,
    pub(crate) cause: SuspectedCause,
    pub(crate) active: bool,
    pub(crate) resolved_ms: Option<u64>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct PoolView {
    pub(crate) gauges: Vec<BackendGauge>,
    pub(crate) skew_score: f64,
}

/// Requests answered to clients, and the failures among them, per tick (all pools).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct TrafficPoint {
    pub(crate) ts_ms: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
}

/// A pool's recent load, for the reload guard's prediction.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Observed {
    pub(crate) rate_rps: f64,
    /// Mean response time in milliseconds (0: no response seen).
    pub(crate) latency_ms: f64,
}

/// What the watch publishes; read by `/metrics` and the admin API.
#[derive(Default)]
pub(crate) struct WatchState {
    pub(crate) pools: Mutex<HashMap<String, PoolView>>,
    /// Open and recent incidents, for the API.
    book: Mutex<Book>,
    pub(crate) traffic: Mutex<VecDeque<TrafficPoint>>,
    pub(crate) observed: Mutex<HashMap<String, Observed>>,
    /// Per pool, the split the shift detector should expect from a generation on.
    expectations: Mutex<HashMap<String, (u64, Split)>>,
    /// Shares and latency over the last fifteen minutes, for the dashboard.
    pub(crate) history: Mutex<History>,
}

impl WatchState {
    /// From `generation` on, expect these splits (a change the guard predicted and let
    /// through without force): the shift detector re-baselines to them. A pool in
    /// `changed` without a split here forgets any it was still to expect: that change
    /// was not predicted.
    pub(crate) fn expect(&self, generation: u64, e: Expectations, changed: &[String]) {
        let mut x = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
        for pool in changed {
            x.remove(pool);
        }
        for (pool, shares) in e {
            x.insert(pool, (generation, shares));
        }
    }

    /// The expectations due at `generation`.
    pub(super) fn due(&self, generation: u64) -> Expectations {
        let mut x = self.expectations.lock().unwrap_or_else(|p| p.into_inner());
        let pools: Vec<String> = x
            .iter()
            .filter(|(_, (g, _))| *g <= generation)
            .map(|(p, _)| p.clone())
            .collect();
        pools
            .into_iter()
            .filter_map(|p| x.remove(&p).map(|(_, shares)| (p, shares)))
            .collect()
    }
}

impl WatchState {
    /// This tick's gauges and observed load, in place of the last tick's, and the tick's
    /// point in the history: every pool with gauges and load, in configuration order.
    pub(super) fn publish(
        &self,
        ts_ms: u64,
        pools: &[PoolRuntime],
        views: HashMap<String, PoolView>,
        observed: HashMap<String, Observed>,
    ) {
        let points = pools
            .iter()
            .filter_map(|p| {
                let (v, o) = (views.get(&p.cfg.name)?, observed.get(&p.cfg.name)?);
                Some(pool_point(&p.cfg.name, &v.gauges, o.rate_rps, o.latency_ms))
            })
            .collect();
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(HistoryPoint {
                ts_ms,
                pools: points,
            });
        *self.pools.lock().unwrap_or_else(|p| p.into_inner()) = views;
        *self.observed.lock().unwrap_or_else(|p| p.into_inner()) = observed;
    }
}

/// Incidents kept for the API, open or resolved.
const HISTORY: usize = 1000;

#[derive(Debug, Default)]
struct Book {
    /// Open incidents of every pool, as of the last tick.
    open: Vec<Incident>,
    /// Every incident announced, oldest first, in its latest state.
    history: VecDeque<Incident>,
}

impl Book {
    fn upsert(&mut self, i: &Incident) {
        match self.history.iter_mut().find(|h| h.id == i.id) {
            Some(h) => *h = i.clone(),
            None => {
                if self.history.len() == HISTORY {
                    self.history.pop_front();
                }
                self.history.push_back(i.clone());
            }
        }
    }
}

impl WatchState {
    /// Open incidents and every recent one, newest first.
    pub(crate) fn incidents(&self) -> (Vec<Incident>, Vec<Incident>) {
        let b = self.book.lock().unwrap_or_else(|p| p.into_inner());
        let mut open = b.open.clone();
        open.sort_by_key(|i| std::cmp::Reverse(i.opened_ms));
        (open, b.history.iter().rev().cloned().collect())
    }

    /// The active signals of open incidents, each with its incident's cause: one row
    /// per backend and kind (what `tango_alerts_active` counts).
    pub(crate) fn active_alerts(&self) -> Vec<AlertRecord> {
        let b = self.book.lock().unwrap_or_else(|p| p.into_inner());
        b.open
            .iter()
            .flat_map(|i| {
                i.signals.iter().filter(|s| s.active).map(|s| AlertRecord {
                    evidence: s.evidence.clone(),
                    cause: i.cause.clone(),
                    active: true,
                    resolved_ms: None,
                })
            })
            .collect()
    }

    /// The open incidents of `pool` as of this tick (the others' are kept).
    pub(super) fn set_open(&self, pool: &str, open: Vec<Incident>) {
        let mut b = self.book.lock().unwrap_or_else(|p| p.into_inner());
        b.open.retain(|i| i.pool != pool);
        for i in &open {
            b.upsert(i);
        }
        b.open.extend(open);
    }

    /// An incident as just announced: kept, in its latest state, for the API.
    pub(super) fn record_incident(&self, i: &Incident) {
        self.book
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .upsert(i);
    }
}
