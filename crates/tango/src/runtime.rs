//! The running configuration: an immutable `Snapshot` swapped whole on reload, and the
//! per-backend and per-pool state (counters, health, ejection, connections, key
//! samples) that outlives snapshots. The data plane and the control tasks both read and
//! write it; it uses neither. `BackendState`'s methods (`backend.rs`) own its flags and
//! counters and their memory orderings.
//!
//! Backends are identified by pool name and address, so a reload that keeps a backend
//! keeps its counters, its health and its idle connections.

mod backend;
mod panic;
mod rules;
mod samples;
#[cfg(test)]
mod tests;
mod why;

pub(crate) use backend::{BackendState, Full, InFlight};
pub(crate) use rules::RouteRules;
pub(crate) use samples::{
    KeyTracker, RequestSample, SAMPLE_CAP, SAMPLE_CAP_UNHASHED, SAMPLE_EVERY, SAMPLE_EVERY_UNHASHED,
};

use arc_swap::ArcSwap;
use backend::FROM_START;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tango_core::config::{Config, Pool};
use tango_core::outlier::OutlierDetector;
use tango_core::policy::{slow_start_factor, slow_start_mean, Selector};

/// A pool as the data plane uses it: config, selector and backend states, built once.
pub(crate) struct PoolRuntime {
    pub(crate) cfg: Pool,
    pub(crate) selector: Selector,
    /// Hash pools: each backend's share of the key space, computed once per snapshot
    /// (the watch reads it every tick). Empty for other policies.
    pub(crate) ownership: Vec<f64>,
    pub(crate) backends: Vec<Arc<BackendState>>,
    pub(crate) retry_budget: Arc<RetryBudget>,
    pub(crate) shared: Arc<PoolShared>,
    /// How a new connection to a backend is opened (TLS, a PROXY header).
    pub(crate) dial: Arc<crate::upstream::Dialer>,
}

impl PoolRuntime {
    /// Backend `i`'s slow-start factor at `now_ms` (time since start): 1 without slow
    /// start or once its window has passed since it (re)joined.
    pub(crate) fn slow_start(&self, i: usize, now_ms: u64) -> f64 {
        match self.cfg.slow_start {
            Some(window) => match self.backends[i].ready_since_ms() {
                Some(at) => {
                    slow_start_factor(Duration::from_millis(now_ms.saturating_sub(at)), window)
                }
                None => 1.0,
            },
            None => 1.0,
        }
    }

    /// Backend `i`'s slow-start factor on average from `from_ms` to `to_ms` (time since
    /// start): what the requests of that span saw, as the watch reads a tick.
    pub(crate) fn slow_start_over(&self, i: usize, from_ms: u64, to_ms: u64) -> f64 {
        let (Some(window), Some(at)) = (self.cfg.slow_start, self.backends[i].ready_since_ms())
        else {
            return 1.0;
        };
        let since = |ms: u64| Duration::from_millis(ms.saturating_sub(at));
        slow_start_mean(since(from_ms), since(to_ms), window)
    }

    /// Configured weight x eligible x slow start (none in panic mode, as the picker
    /// sees it), as exported and used by the watch.
    pub(crate) fn effective_weight(&self, i: usize, now_ms: u64) -> f64 {
        let weight = f64::from(self.cfg.backends[i].weight);
        match (self.shared.panic(), self.backends[i].available()) {
            (true, _) => weight,
            (false, true) => weight * self.slow_start(i, now_ms),
            (false, false) => 0.0,
        }
    }
}

/// Per-pool state that outlives snapshots and is changed by control tasks, not by picks.
#[derive(Debug, Default)]
pub(crate) struct PoolShared {
    /// Too few backends are eligible: balance across all of them.
    panic: AtomicBool,
    /// Passive outlier detection, indexed like the pool's backends in the current
    /// snapshot. Touched only when a backend fails or has a failure streak to reset.
    pub(crate) outlier: Mutex<Option<OutlierDetector>>,
    /// Hash pools: how keys are distributed, for telling a hot key from a bad config.
    pub(crate) keys: KeyTracker,
    /// What the pool's clients saw (answers, failures, latency), across reloads.
    pub(crate) client: crate::stats::ClientStats,
    /// Hash pools: recent requests, for the reload guard's prediction of where a new
    /// configuration would send the live keys.
    pub(crate) requests: RequestSample,
}

impl PoolShared {
    /// In panic mode. The flag publishes nothing else: `Relaxed`.
    pub(crate) fn panic(&self) -> bool {
        self.panic.load(Relaxed)
    }

    /// Enter or leave panic mode; returns whether it was in it.
    pub(crate) fn set_panic(&self, panic: bool) -> bool {
        self.panic.swap(panic, Relaxed)
    }
}

/// An immutable view of a configuration, ready to serve.
pub(crate) struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) config: Arc<Config>,
    /// The file's text as it was applied (for `/api/v1/config` and post-mortems).
    pub(crate) text: Arc<str>,
    pub(crate) pools: Vec<PoolRuntime>,
    /// Each route's header edits, compiled; by index into `config.routes`.
    pub(crate) routes: Vec<RouteRules>,
    /// Unix time (seconds) when this snapshot was applied.
    pub(crate) applied_at: f64,
    /// A pool sends PROXY headers: connections accepted under it note the address
    /// the client reached.
    pub(crate) sends_proxy: bool,
}

/// Retries as a fraction of requests: each request deposits `ratio` tokens, each retry
/// takes one. A small reserve lets a quiet pool retry at all.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    milli_tokens: AtomicU64,
    /// Re-sends the budget paid for, and those it refused: whether it holds back a
    /// retry storm shows only here.
    resent: AtomicU64,
    refused: AtomicU64,
}

const RETRY_RESERVE_MILLI: u64 = 10_000;
const RETRY_CAP_MILLI: u64 = 100_000;

impl RetryBudget {
    fn new() -> Self {
        Self {
            milli_tokens: AtomicU64::new(RETRY_RESERVE_MILLI),
            resent: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    pub(crate) fn deposit(&self, ratio: f64) {
        let add = (ratio * 1000.0) as u64;
        let _ = self
            .milli_tokens
            .fetch_update(Relaxed, Relaxed, |t| Some((t + add).min(RETRY_CAP_MILLI)));
    }

    /// Take a token for a re-send; counted either way.
    pub(crate) fn try_withdraw(&self) -> bool {
        let ok = self
            .milli_tokens
            .fetch_update(Relaxed, Relaxed, |t| t.checked_sub(1000))
            .is_ok();
        let counter = if ok { &self.resent } else { &self.refused };
        counter.fetch_add(1, Relaxed);
        ok
    }

    /// Re-sends paid for, and refused, since the pool was first configured.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.resent.load(Relaxed), self.refused.load(Relaxed))
    }
}

/// Everything the data plane and the control tasks share.
pub(crate) struct Runtime {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    registry: Mutex<HashMap<(String, String), Arc<BackendState>>>,
    budgets: Mutex<HashMap<String, Arc<RetryBudget>>>,
    shared: Mutex<HashMap<String, Arc<PoolShared>>>,
    pub(crate) started: Instant,
    /// The journal, for what the data plane decides rarely and must leave a trace of
    /// (an ejection). Set once at start.
    pub(crate) journal: std::sync::OnceLock<crate::journal::Sink>,
    /// Requests answered with a route's redirect (no pool picked), across reloads.
    pub(crate) redirects: AtomicU64,
    /// Failed TLS handshakes on the listeners, by name.
    pub(crate) tls_failures: crate::stats::TlsFailures,
    /// When the certificates the listeners serve expire.
    pub(crate) certificate_dates: crate::stats::CertificateDates,
}

impl Runtime {
    pub(crate) fn new(config: Config, text: &str) -> Arc<Self> {
        let rt = Arc::new(Self {
            snapshot: ArcSwap::from_pointee(Snapshot {
                generation: 0,
                config: Arc::new(config.clone()),
                text: Arc::from(""),
                pools: Vec::new(),
                routes: Vec::new(),
                applied_at: unix_secs(),
                sends_proxy: false,
            }),
            registry: Mutex::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
            shared: Mutex::new(HashMap::new()),
            started: Instant::now(),
            journal: std::sync::OnceLock::new(),
            redirects: AtomicU64::new(0),
            tls_failures: crate::stats::TlsFailures::default(),
            certificate_dates: crate::stats::CertificateDates::default(),
        });
        let snap = rt.build(config, text, 1);
        rt.snapshot.store(Arc::new(snap));
        rt
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Build a snapshot, reusing the state of backends already known.
    pub(crate) fn build(&self, config: Config, text: &str, generation: u64) -> Snapshot {
        let now_ms = self.now_ms();
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let mut shared_all = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.snapshot.load();
        // Backends present at startup need no slow start; later additions ramp up.
        let joined_ms = if generation <= 1 { FROM_START } else { now_ms };
        let mut keep = std::collections::HashSet::new();
        let pools = config
            .pools
            .iter()
            .map(|p| {
                let prev = old.pools.iter().find(|o| o.cfg.name == p.name);
                // What a backend chose by ALPN holds for the settings it was offered.
                let offer_changed =
                    prev.is_none_or(|o| o.cfg.protocol != p.protocol || o.cfg.tls != p.tls);
                let backends = p
                    .backends
                    .iter()
                    .map(|b| {
                        let key = (p.name.clone(), b.address.clone());
                        keep.insert(key.clone());
                        let state = registry
                            .entry(key)
                            .or_insert_with(|| {
                                Arc::new(BackendState::new(&b.name, &b.address, joined_ms))
                            })
                            .clone();
                        if offer_changed {
                            state.conns.forget_choice();
                        }
                        state
                    })
                    .collect::<Vec<Arc<BackendState>>>();
                let shared = shared_all.entry(p.name.clone()).or_default().clone();
                rebuild_outlier(&shared, p, prev);
                self.return_unheld(p, &backends, &shared, now_ms);
                let retry_budget = budgets
                    .entry(p.name.clone())
                    .or_insert_with(|| Arc::new(RetryBudget::new()))
                    .clone();
                let selector = Selector::from_pool(p);
                let ownership = if p.policy.is_hash() {
                    selector.ownership()
                } else {
                    Vec::new()
                };
                PoolRuntime {
                    cfg: p.clone(),
                    selector,
                    ownership,
                    backends,
                    retry_budget,
                    shared,
                    dial: Arc::new(crate::upstream::Dialer::new(p)),
                }
            })
            .collect();
        // Backends that left the config are forgotten; in-flight requests keep their Arc.
        registry.retain(|k, _| keep.contains(k));
        let configured = |name: &String| config.pools.iter().any(|p| &p.name == name);
        budgets.retain(|k, _| configured(k));
        shared_all.retain(|k, _| configured(k));
        let sends_proxy = config.pools.iter().any(|p| p.send_proxy_protocol.is_some());
        Snapshot {
            sends_proxy,
            generation,
            routes: config.routes.iter().map(RouteRules::of).collect(),
            config: Arc::new(config),
            text: Arc::from(text),
            pools,
            applied_at: unix_secs(),
        }
    }

    /// Backends of `pool` flagged ejected that its outlier detection, as rebuilt for
    /// the new configuration, does not hold ejected (a reload turned it off): nothing
    /// would ever return them, so they return now.
    fn return_unheld(
        &self,
        pool: &Pool,
        backends: &[Arc<BackendState>],
        shared: &PoolShared,
        now_ms: u64,
    ) {
        let held = shared
            .outlier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(OutlierDetector::ejected)
            .unwrap_or_default();
        for (i, b) in backends.iter().enumerate() {
            if !b.ejected() || held.get(i).copied().unwrap_or(false) {
                continue;
            }
            b.return_to_service(now_ms);
            let backend = &pool.backends[i].name;
            tracing::info!(pool = %pool.name, %backend, "backend returned from ejection: outlier detection is off");
            if let Some(journal) = self.journal.get() {
                journal.record(tango_core::journal::EventKind::Returned {
                    pool: pool.name.clone(),
                    backend: backend.clone(),
                });
            }
        }
    }

    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }
}

/// Carry outlier state over a reload: backends keep theirs by address.
fn rebuild_outlier(shared: &PoolShared, new: &Pool, old: Option<&PoolRuntime>) {
    let mut o = shared.outlier.lock().unwrap_or_else(|e| e.into_inner());
    *o = match (&new.outlier, o.as_ref(), old) {
        (None, _, _) => None,
        (Some(cfg), Some(prev), Some(old)) => {
            let index: Vec<Option<usize>> = new
                .backends
                .iter()
                .map(|b| {
                    old.cfg
                        .backends
                        .iter()
                        .position(|ob| ob.address == b.address)
                })
                .collect();
            Some(prev.rebuild(cfg, &index))
        }
        (Some(cfg), _, _) => Some(OutlierDetector::new(cfg, new.backends.len())),
    };
}

/// Unix time now, in seconds (a snapshot's `applied_at`).
fn unix_secs() -> f64 {
    crate::journal::unix_ms() as f64 / 1000.0
}
