//! One backend's state that survives reloads (`BackendState`: health, ejection, when it
//! rejoined or left rotation, its counters, its idle connections), and a request
//! counted in flight at it (`InFlight`) against its caps. Its flags and counters change
//! only through its methods here, which choose the memory orderings.

use super::why;
use crate::stats::BackendStats;
use crate::upstream::ConnPool;
use std::ops::Deref;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use tango_core::policy::EwmaCell;

/// State of one backend that survives reloads.
///
/// Its flags and counters change only through its methods, which choose the memory
/// orderings:
///
/// - A backend coming back (health recovery, return from ejection) stamps the time it
///   rejoined (`ready_since_ms`, for slow start) and then clears or sets its flag with
///   `Release`; every load of a flag is `Acquire`. So a picker that sees the backend
///   back also sees the new stamp and ramps it up from there, never at full weight at
///   once on the old stamp. A stamp read without its flag is `Relaxed`: it is one number.
/// - Taking a backend out of rotation stamps when it left (`left_ms`, for the watch's
///   tick it left in) and then sets its flag with `Release`, so a watch that sees it
///   out also sees when it went.
/// - Counters (`in_flight`, `health_transitions`) are `Relaxed`: each is one number,
///   read for caps and exports; nothing else is ordered by them.
#[derive(Debug)]
pub(crate) struct BackendState {
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) stats: BackendStats,
    pub(crate) conns: ConnPool,
    /// Peak-EWMA latency (seconds), for `peak_ewma`.
    pub(crate) ewma: EwmaCell,
    /// Active health checks say it is up (true until they say otherwise).
    healthy: AtomicBool,
    /// Passive outlier detection has ejected it.
    ejected: AtomicBool,
    /// Milliseconds since process start when it (re)joined, for slow start;
    /// [`FROM_START`] for a backend in service since tango started.
    ready_since_ms: AtomicU64,
    /// Milliseconds since process start when it last left rotation (ejected or judged
    /// down while in it), [`NEVER_LEFT`] if it never has: the tick it left in held its
    /// requests for the part of the tick it was still in.
    left_ms: AtomicU64,
    /// Requests sent to it whose response has not been delivered whole.
    in_flight: AtomicU64,
    /// Health-check transitions (either way), for `/metrics`.
    health_transitions: AtomicU64,
    /// Why it is out of rotation, for `tango status`.
    why: why::WhyOut,
}

impl BackendState {
    /// `joined_ms`: when it joined (time since start), or [`FROM_START`].
    pub(super) fn new(name: &str, address: &str, joined_ms: u64) -> Self {
        Self {
            name: name.to_string(),
            address: address.to_string(),
            stats: BackendStats::default(),
            conns: ConnPool::default(),
            ewma: EwmaCell::new(0.005, 0),
            healthy: AtomicBool::new(true),
            ejected: AtomicBool::new(false),
            ready_since_ms: AtomicU64::new(joined_ms),
            left_ms: AtomicU64::new(NEVER_LEFT),
            in_flight: AtomicU64::new(0),
            health_transitions: AtomicU64::new(0),
            why: why::WhyOut::default(),
        }
    }

    /// Healthy and not ejected.
    pub(crate) fn available(&self) -> bool {
        self.healthy() && !self.ejected()
    }

    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Acquire)
    }

    pub(crate) fn ejected(&self) -> bool {
        self.ejected.load(Acquire)
    }

    /// When it last (re)joined, in milliseconds since start; `None` when it has been in
    /// service since tango started (and so never ramps until it leaves and comes back).
    pub(crate) fn ready_since_ms(&self) -> Option<u64> {
        match self.ready_since_ms.load(Relaxed) {
            FROM_START => None,
            ms => Some(ms),
        }
    }

    /// When it last left rotation, in milliseconds since start; `None` if it never has.
    pub(crate) fn left_ms(&self) -> Option<u64> {
        match self.left_ms.load(Relaxed) {
            NEVER_LEFT => None,
            ms => Some(ms),
        }
    }

    /// Taken out of rotation at `now_ms`: stamps when, if it was in rotation until now.
    fn stamp_leaving(&self, now_ms: u64) {
        if self.available() {
            self.left_ms.store(now_ms, Relaxed);
        }
    }

    /// The health checks' verdict changed at `now_ms` (time since start). Back up, it
    /// ramps up from now; down, it left rotation now. Either stamp is published with
    /// the flag.
    pub(crate) fn set_healthy(&self, healthy: bool, now_ms: u64) {
        if healthy {
            self.ready_since_ms.store(now_ms, Relaxed);
        } else {
            self.stamp_leaving(now_ms);
        }
        self.healthy.store(healthy, Release);
        self.health_transitions.fetch_add(1, Relaxed);
    }

    /// Its pool has no health checks: healthy by definition. Not a transition, and no
    /// slow start (nothing judged it down; a pool whose checks were removed by a reload
    /// trusts all its backends at once).
    pub(crate) fn assume_healthy(&self) {
        self.healthy.store(true, Relaxed);
    }

    /// Passive outlier detection took it out at `now_ms` (time since start); the stamp
    /// is published with the flag.
    /// `cause` says why, for `tango status`.
    pub(crate) fn eject(&self, now_ms: u64, cause: String) {
        self.why.ejected(cause);
        self.stamp_leaving(now_ms);
        self.ejected.store(true, Release);
    }

    /// Back from ejection at `now_ms` (time since start): it ramps up from now, the
    /// stamp published with the flag.
    pub(crate) fn return_to_service(&self, now_ms: u64) {
        self.ready_since_ms.store(now_ms, Relaxed);
        self.ejected.store(false, Release);
    }

    /// A health probe failed with `reason`; kept to say why the backend is down.
    pub(crate) fn probe_failed(&self, reason: &str) {
        self.why.probe_failed(reason);
    }

    /// Why it is out of rotation now: the last failed probe's reason while its health
    /// checks hold it down, else the ejection's cause while ejected; `None` in rotation
    /// (or when nothing said why).
    pub(crate) fn down_reason(&self) -> Option<String> {
        self.why.reason(!self.healthy(), self.ejected())
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    pub(crate) fn health_transitions(&self) -> u64 {
        self.health_transitions.load(Relaxed)
    }
}

/// The join time of a backend in service since tango started. Not 0: time 0 is tango's
/// start, and a backend stamped then would ramp up through the first `slow_start` window
/// alongside one a reload added a moment later, which then took its full share at once.
pub(super) const FROM_START: u64 = u64::MAX;

/// The leaving time of a backend that has never left rotation.
const NEVER_LEFT: u64 = u64::MAX;

/// A request in flight at a backend: counted from `new` until dropped (when the client
/// has the whole response, or goes away). `P` reaches the backend: an `Arc` for a
/// response handed to hyper, a reference for one the engine serves in its own task.
pub(crate) struct InFlight<P: Deref<Target = BackendState> = Arc<BackendState>>(P);

/// Why a request could not be counted in at a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// It holds its `max_in_flight`.
    MaxInFlight,
    /// It holds the bounded-load cap the pick held it to: another request took its last
    /// place after the pick read the counts.
    LoadCap,
}

impl<P: Deref<Target = BackendState>> InFlight<P> {
    /// Count a request in at `backend`, unless that would take it past `max_in_flight`
    /// or past `load_cap` (the bounded-load cap its pick computed). The picker skips a
    /// backend at either, but two workers can pick the last place at once: taking it
    /// here, atomically, is what keeps both caps exact. Without either, a plain add.
    pub(crate) fn reserve(
        backend: P,
        max_in_flight: Option<u32>,
        load_cap: Option<u64>,
    ) -> Result<Self, Full> {
        let limit = match (max_in_flight, load_cap) {
            (None, None) => {
                backend.in_flight.fetch_add(1, Relaxed);
                return Ok(InFlight(backend));
            }
            (m, c) => m.map_or(u64::MAX, u64::from).min(c.unwrap_or(u64::MAX)),
        };
        // One atomic read-compare-write: the count never passes `limit`, whatever the
        // other workers do meanwhile (Relaxed: it orders nothing else).
        let room = |n: u64| (n < limit).then_some(n + 1);
        match backend.in_flight.fetch_update(Relaxed, Relaxed, room) {
            Ok(_) => Ok(InFlight(backend)),
            Err(n) if max_in_flight.is_some_and(|m| n >= u64::from(m)) => Err(Full::MaxInFlight),
            Err(_) => Err(Full::LoadCap),
        }
    }
}

impl<P: Deref<Target = BackendState>> Drop for InFlight<P> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// A response body handed to hyper owns its connection, and reaches the connection's
/// pool through its backend.
impl crate::upstream::PoolRef for Arc<BackendState> {
    fn pool(&self) -> &ConnPool {
        &self.conns
    }
}
