//! After each try: count the response, feed latency to peak-EWMA, and tell passive
//! outlier detection about failures (an ejection and a return are journaled: they
//! explain traffic moving). After each request: count what the client saw. The common
//! case (a success on a backend with no failure streak) touches only atomics.
//!
//! A try's outcome is known only when its response body has ended: a backend may send
//! a good head and then break the body off (reset, close short of its length, framing
//! it cannot keep, silence). So an answer below 500 is counted by its status when its
//! head comes ([`record`]), and judged for outlier detection when its body ends
//! ([`body_end`]; [`Owed`] on hyper's path, where the body outlives the request): a
//! success then, or a failure of the backend if it broke the body off. Deferring the
//! success (rather than recording it at the head and correcting it) is what makes a
//! backend that always breaks its bodies reach `consecutive_failures`: a success at the
//! head would reset its streak before each failure. It costs nothing on the hot path:
//! the same check, made later. A body the client stopped taking is a success: the
//! backend answered, and a client must not be able to take backends out.
//!
//! Outlier events are mirrored into the backends' flags here (`apply_events`), for the
//! request path's failures and for the upkeep's returns alike.

use crate::runtime::{PoolRuntime, Runtime, Snapshot};
use crate::stats::class_index;
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::PolicyKind;
use tango_core::journal::EventKind;
use tango_core::outlier::{Event, Outcome};

/// Record one try at backend `i`: `status` is `None` when no response came. A failure
/// (no response, 5xx) goes to outlier detection now; an answer below 500 waits for its
/// body's end ([`body_end`]).
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
    if class >= 4 {
        outlier(rt, pool, i, Outcome::Failure);
    }
}

/// How the body of an answer ended, as its backend is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// It ended where its framing said (or there was none).
    Whole,
    /// The client went away, stopped reading, or its own request body broke off: not
    /// the backend's doing.
    Client,
    /// The backend reset or closed it short, framed it wrongly, or went silent past
    /// the stall timeout.
    Backend,
    /// As `Backend`, but before anything of the answer went out: the client is answered
    /// `502` instead, and that answer is counted as the client's error where it is sent.
    Unsent,
}

/// The body of the answer (`status`, counted by [`record`]) of backend `i` has ended
/// as `end` says. Called once per answer, on every path; an answer of 500 or more was
/// judged a failure at its head, and nothing more is recorded for it.
pub(crate) fn body_end(rt: &Runtime, pool: &PoolRuntime, i: usize, status: u16, end: BodyEnd) {
    if class_index(status) >= 4 {
        return;
    }
    if matches!(end, BodyEnd::Whole | BodyEnd::Client) {
        outlier(rt, pool, i, Outcome::Success);
        return;
    }
    // Counted before the outlier verdict, so whoever sees the ejection sees the count.
    let stats = &pool.backends[i].stats;
    if end == BodyEnd::Unsent {
        stats.record_broken_try();
    } else {
        stats.record_broken();
        pool.shared.client.record_broken();
    }
    let backend = &pool.cfg.backends[i].name;
    tracing::warn!(pool = %pool.cfg.name, %backend, status, "upstream response body broke off");
    outlier(rt, pool, i, Outcome::Failure);
}

/// Tell the pool's outlier detection (when it has one) about a try at backend `i`.
fn outlier(rt: &Runtime, pool: &PoolRuntime, i: usize, outcome: Outcome) {
    if pool.cfg.outlier.is_none() {
        return;
    }
    let failed = outcome == Outcome::Failure;
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
    if !indexed_alike(rt, pool, i) {
        return;
    }
    // Read only when the detector has something to do: a success on a backend without
    // a streak (the common case) costs no clock read.
    let ev = det.record(i, outcome, rt.elapsed());
    drop(guard);
    if let Some(ev) = ev {
        apply_events(pool, std::slice::from_ref(&ev), rt.now_ms());
        let journal = rt.journal.get();
        if let Some(journal) = journal {
            journal_events(journal, pool, std::slice::from_ref(&ev));
        }
        // An ejection may leave too few backends eligible: the pool balances across
        // all of them from the next pick on, rather than answering 503 until the
        // upkeep's next tick.
        if matches!(ev, Event::Ejected { .. }) {
            pool.recheck_panic(journal);
        }
    }
}

/// Whether backend `i` of `pool` (from the snapshot a request used) is backend `i` of
/// the snapshot in force, as the pool's outlier detection indexes its backends. A try
/// that began before a reload which moved or removed its backend (a long body spans
/// reloads) is not counted, rather than counted against another backend. Asked only
/// when the detector has something to record, never for the common success.
fn indexed_alike(rt: &Runtime, pool: &PoolRuntime, i: usize) -> bool {
    let snap = rt.current();
    snap.pools
        .iter()
        .find(|p| Arc::ptr_eq(&p.shared, &pool.shared))
        .and_then(|p| p.backends.get(i))
        .is_some_and(|b| Arc::ptr_eq(b, &pool.backends[i]))
}

/// Where a request hyper serves is accounted from its response body, which outlives
/// the request's borrows: the runtime, the snapshot the request used and its pool.
#[derive(Clone)]
pub(crate) struct Ledger {
    rt: Arc<Runtime>,
    snap: Arc<Snapshot>,
    pool: usize,
}

impl Ledger {
    pub(crate) fn new(rt: Arc<Runtime>, snap: Arc<Snapshot>, pool: usize) -> Self {
        Ledger { rt, snap, pool }
    }

    /// What the answer `status` of backend `i` owes until its body ends; `None` for a
    /// failure, judged at its head.
    pub(crate) fn owe(self, i: usize, status: u16) -> Option<Owed> {
        (class_index(status) < 4).then_some(Owed {
            ledger: self,
            backend: i,
            status,
            end: BodyEnd::Client,
        })
    }
}

/// The verdict an answer below 500 on hyper's path owes until its body ends, recorded
/// by [`body_end`] when this is dropped: as [`Owed::ended`] last said, or, when the
/// body never said how it ended, as the client's (hyper drops a body it stops sending,
/// and an answer with no body to read, a `101` or a `2xx` to CONNECT, ends so too):
/// a success either way. Recorded once.
pub(crate) struct Owed {
    ledger: Ledger,
    backend: usize,
    status: u16,
    end: BodyEnd,
}

impl Owed {
    /// How the body ended.
    pub(crate) fn ended(&mut self, end: BodyEnd) {
        self.end = end;
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        let l = &self.ledger;
        if let Some(pool) = l.snap.pools.get(l.pool) {
            body_end(&l.rt, pool, self.backend, self.status, self.end);
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
                    b.eject(now_ms, ejection_cause(*consecutive, *times_ejected));
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

/// Why outlier detection ejected a backend, in the journal and `tango status`.
fn ejection_cause(consecutive: u32, times_ejected: u32) -> String {
    format!("{consecutive} consecutive failures (ejection #{times_ejected})")
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
                    reason: ejection_cause(*consecutive, *times_ejected),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A runtime with one pool of two backends, ejecting after three failures.
    fn runtime() -> Arc<Runtime> {
        let text = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"p\"\n[pool.outlier]\nconsecutive_failures = 3\n\n[[pool.backend]]\naddress = \"127.0.0.1:1\"\n\n[[pool.backend]]\naddress = \"127.0.0.1:2\"\n";
        let loaded = tango_core::config::parse("t.toml", text, Path::new(".")).expect("valid");
        Runtime::new(loaded.config, text)
    }

    const MS: Option<Duration> = Some(Duration::from_millis(1));

    /// A `200` whose body ended as `end`.
    fn answer(rt: &Runtime, pool: &PoolRuntime, end: BodyEnd) {
        record(rt, pool, 0, Some(200), MS);
        body_end(rt, pool, 0, 200, end);
    }

    #[test]
    fn bodies_the_backend_breaks_off_eject_it_though_each_head_was_fine() {
        let rt = runtime();
        let snap = rt.current();
        let pool = &snap.pools[0];
        for _ in 0..2 {
            answer(&rt, pool, BodyEnd::Backend);
            assert!(!pool.backends[0].ejected());
        }
        answer(&rt, pool, BodyEnd::Backend);
        assert!(pool.backends[0].ejected());
        let s = pool.backends[0].stats.snapshot();
        // Three tries, each counted once by its status and once as a failure.
        assert_eq!((s.requests(), s.by_class[1]), (3, 3));
        assert_eq!((s.errors(), s.broken, s.client_errors), (3, 3, 3));
        assert_eq!(pool.shared.client.snapshot().errors, 3);
    }

    #[test]
    fn a_body_that_ends_whole_or_is_left_by_the_client_is_a_success() {
        let rt = runtime();
        let snap = rt.current();
        let pool = &snap.pools[0];
        for end in [BodyEnd::Whole, BodyEnd::Client] {
            // Two failures, then an answer whose body ended this way: the streak is
            // over, and two more failures do not eject.
            record(&rt, pool, 0, None, MS);
            answer(&rt, pool, BodyEnd::Backend);
            answer(&rt, pool, end);
            record(&rt, pool, 0, Some(502), MS);
            answer(&rt, pool, BodyEnd::Backend);
            assert!(!pool.backends[0].ejected(), "{end:?}");
            answer(&rt, pool, end);
        }
        assert_eq!(pool.backends[0].stats.snapshot().errors(), 8);
    }

    #[test]
    fn a_body_broken_before_anything_was_sent_is_one_client_error() {
        let rt = runtime();
        let snap = rt.current();
        let pool = &snap.pools[0];
        // Hyper's path: the head counts by its status, the body proves unframeable
        // before hyper has the head, and the client is answered 502, counted there.
        record(&rt, pool, 0, Some(200), MS);
        body_end(&rt, pool, 0, 200, BodyEnd::Unsent);
        client_response(pool, Some(0), http::StatusCode::BAD_GATEWAY, Duration::ZERO);
        let s = pool.backends[0].stats.snapshot();
        assert_eq!((s.errors(), s.broken, s.client_errors), (1, 1, 1));
        let c = pool.shared.client.snapshot();
        assert_eq!((c.requests, c.errors), (1, 1));
    }

    #[test]
    fn a_5xx_whose_body_breaks_off_is_one_failure() {
        let rt = runtime();
        let snap = rt.current();
        let pool = &snap.pools[0];
        for _ in 0..2 {
            record(&rt, pool, 0, Some(503), MS);
            body_end(&rt, pool, 0, 503, BodyEnd::Backend);
        }
        let s = pool.backends[0].stats.snapshot();
        assert_eq!((s.requests(), s.errors(), s.broken), (2, 2, 0));
        // Two failures so far, not four: a third ejects.
        assert!(!pool.backends[0].ejected());
        record(&rt, pool, 0, Some(503), MS);
        assert!(pool.backends[0].ejected());
    }

    #[test]
    fn a_body_that_ends_after_a_reload_moved_its_backend_is_not_counted_against_another() {
        let rt = runtime();
        let before: Arc<Snapshot> = Arc::clone(&rt.current());
        let text = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"p\"\n[pool.outlier]\nconsecutive_failures = 1\n\n[[pool.backend]]\naddress = \"127.0.0.1:2\"\n\n[[pool.backend]]\naddress = \"127.0.0.1:1\"\n";
        let loaded = tango_core::config::parse("t.toml", text, Path::new(".")).expect("valid");
        rt.snapshot
            .store(Arc::new(rt.build(loaded.config, text, 2)));
        // Backend 0 of the old snapshot is backend 1 now: its broken body is counted in
        // its stats, and ejects neither it (by the wrong index) nor the other.
        let old = &before.pools[0];
        answer(&rt, old, BodyEnd::Backend);
        assert_eq!(old.backends[0].stats.snapshot().broken, 1);
        let now = rt.current();
        assert!(!now.pools[0].backends[0].ejected() && !now.pools[0].backends[1].ejected());
        // A try under the snapshot in force ejects (one failure is enough now).
        answer(&rt, &now.pools[0], BodyEnd::Backend);
        assert!(now.pools[0].backends[0].ejected());
    }

    #[test]
    fn an_owed_verdict_is_recorded_once_when_dropped() {
        let rt = runtime();
        let snap: Arc<Snapshot> = Arc::clone(&rt.current());
        let pool = &snap.pools[0];
        let ledger = Ledger::new(Arc::clone(&rt), Arc::clone(&snap), 0);
        assert!(ledger.clone().owe(0, 500).is_none(), "judged at its head");
        for _ in 0..3 {
            record(&rt, pool, 0, Some(200), MS);
            let mut owed = ledger.clone().owe(0, 200).expect("owed");
            owed.ended(BodyEnd::Backend);
            drop(owed);
        }
        assert!(pool.backends[0].ejected());
        assert_eq!(pool.backends[1].stats.snapshot().errors(), 0);
        // Dropped without an end: the client's, a success.
        record(&rt, pool, 1, Some(200), MS);
        drop(ledger.owe(1, 200));
        assert_eq!(pool.backends[1].stats.snapshot().errors(), 0);
    }
}
