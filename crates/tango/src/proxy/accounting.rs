//! After each try: count the response, feed latency to peak-EWMA, and tell passive
//! outlier detection about failures (an ejection and a return are journaled: they
//! explain traffic moving). After each request: count what the client saw. The common
//! case (a success on a backend with no failure streak) touches only atomics.
//!
//! Outlier events are mirrored into the backends' flags here (`apply_events`), for the
//! request path's failures and for the upkeep's returns alike.

use crate::runtime::{PoolRuntime, Runtime};
use crate::stats::class_index;
use std::time::Duration;
use tango_core::config::PolicyKind;
use tango_core::journal::EventKind;
use tango_core::outlier::{Event, Outcome};

/// Record one try at backend `i`: `status` is `None` when no response came.
pub(crate) fn record(
    rt: &Runtime,
    pool: &PoolRuntime,
    i: usize,
    status: Option<u16>,
    latency: Option<Duration>,
) {
    let b = &pool.backends[i];
    let class = status.map(class_index).unwrap_or(5);
    b.stats
        .record(class, if status.is_some() { latency } else { None });
    if let (Some(l), PolicyKind::PeakEwma) = (latency, pool.cfg.policy) {
        // A failed try counts at its full duration: a backend that times out is slow.
        let now = rt.elapsed();
        b.ewma
            .observe(l.as_secs_f64(), now.as_nanos() as u64, pool.cfg.ewma_decay);
    }
    let failed = class >= 4;
    if pool.cfg.outlier.is_none() {
        return;
    }
    let now = rt.elapsed();
    let mut guard = match pool.shared.outlier.try_lock() {
        Ok(g) => g,
        // Another worker is recording for this pool right now; for a success that is
        // not worth waiting for, for a failure it is.
        Err(_) if !failed => return,
        Err(_) => pool
            .shared
            .outlier
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    };
    let Some(det) = guard.as_mut() else { return };
    if i >= det.len() || (!failed && det.consecutive_failures(i) == 0) {
        return;
    }
    let outcome = if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let ev = det.record(i, outcome, now);
    drop(guard);
    if let Some(ev) = ev {
        apply_events(pool, std::slice::from_ref(&ev), rt.now_ms());
        if let Some(journal) = rt.journal.get() {
            journal_events(journal, pool, &[ev]);
        }
    }
}

/// One answer to a client of `pool`, after every try: `backend` is the last one tried.
/// A failure here is one a client saw; a failed try that a retry absorbed was counted
/// by [`record`] only.
pub(crate) fn client_response(
    pool: &PoolRuntime,
    backend: Option<usize>,
    status: http::StatusCode,
    latency: Duration,
) {
    let failed = status.is_server_error();
    pool.shared.client.record(failed, latency);
    if failed {
        if let Some(b) = backend.and_then(|i| pool.backends.get(i)) {
            b.stats.record_client_error();
        }
    }
}

/// Mirror outlier events into the backends' flags and the log.
pub(crate) fn apply_events(pool: &PoolRuntime, events: &[Event], now_ms: u64) {
    for ev in events {
        match ev {
            Event::Ejected {
                backend,
                until,
                consecutive,
                times_ejected,
            } => {
                if let Some(b) = pool.backends.get(*backend) {
                    b.eject();
                    tracing::warn!(pool = %pool.cfg.name, backend = %b.name, consecutive, times_ejected, until_s = until.as_secs_f64(), "backend ejected");
                }
            }
            Event::Returned { backend } => {
                if let Some(b) = pool.backends.get(*backend) {
                    // Back in service: slow start ramps it up from now.
                    b.return_to_service(now_ms);
                    tracing::info!(pool = %pool.cfg.name, backend = %b.name, "backend returned from ejection");
                }
            }
            Event::EjectionCapped {
                backend,
                ejected,
                max_ejected,
                ..
            } => {
                if let Some(b) = pool.backends.get(*backend) {
                    tracing::warn!(pool = %pool.cfg.name, backend = %b.name, ejected, max_ejected, "backend failing but not ejected: max_ejected_percent reached");
                }
            }
        }
    }
}

/// Ejections and returns go to the journal: they explain traffic moving.
pub(crate) fn journal_events(journal: &crate::journal::Sink, pool: &PoolRuntime, events: &[Event]) {
    for ev in events {
        match ev {
            Event::Ejected {
                backend,
                consecutive,
                times_ejected,
                ..
            } => {
                journal.record(EventKind::Ejected {
                    pool: pool.cfg.name.clone(),
                    backend: pool.cfg.backends[*backend].name.clone(),
                    reason: format!(
                        "{consecutive} consecutive failures (ejection #{times_ejected})"
                    ),
                });
            }
            Event::Returned { backend } => {
                journal.record(EventKind::Returned {
                    pool: pool.cfg.name.clone(),
                    backend: pool.cfg.backends[*backend].name.clone(),
                });
            }
            Event::EjectionCapped { .. } => {}
        }
    }
}
