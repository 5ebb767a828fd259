//! A listener's open connections, and which of them may be closed to make room.
//!
//! At `max_connections` a newcomer used to be refused even when every open connection
//! was doing nothing: a few thousand sockets that never send a byte, renewed as they time
//! out, locked every other client out. Like nginx, tango instead closes the connection
//! that has been idle longest (a keep-alive connection between requests, or one that has
//! not asked for anything yet) and admits the newcomer; only when none is idle is the
//! newcomer refused.
//!
//! The hot path stays free of locks: a request only counts itself in its connection's
//! atomics ([`Slot`]). The queue holds connections roughly in the order they were last
//! active: a connection is queued when admitted; when its entry reaches the front and
//! the connection has served requests since it was queued, it gets a second chance at
//! the back instead of being closed (so each request costs at most one move, made by
//! the accept loop, not by the request). Connections served by hyper are also queued
//! again by their watch loop's tick. At most one entry per connection is live (the
//! latest); the others are skipped when they reach the front, and the queue is
//! compacted when they outnumber the open connections, so every operation is O(1)
//! amortised. The front entry is taken only when its connection has no request in
//! progress at that moment; a busy one is dropped from the queue and queued again once
//! it is idle (by the connection itself, or by its watch loop's tick).
//!
//! A listener a reload removes stops ([`Conns::stop`]): each of its connections is told
//! to close as one chosen to make room is, so its connections drain as at shutdown.

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed,
};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::Notify;

const OPEN: u8 = 0;
const EVICTED: u8 = 1;
const CLOSED: u8 = 2;
/// Told to close as an evicted connection is, because its listener stopped: nobody
/// waits for its place, so its close may linger as at shutdown.
const STOPPED: u8 = 3;

/// `Slot::queued` of a connection that has no entry in the queue (it was busy when its
/// entry reached the front).
const UNQUEUED: u64 = u64::MAX;

/// One client connection's activity, shared by its requests, its watch loop and the
/// listener's idle queue.
pub(crate) struct Slot {
    /// Requests in progress: from the service call until the response body has been
    /// handed to hyper whole (or dropped).
    active: AtomicUsize,
    /// Requests finished. The watch loop compares it between ticks, so the hot path never
    /// reads the clock.
    done: AtomicU64,
    /// The `done` count its live queue entry was made with.
    queued: AtomicU64,
    /// A write to the client is blocked: bytes are waiting for it to read.
    blocked: AtomicBool,
    /// Response bodies whose last frame hyper has not yet sent on: it waits for the
    /// client (its socket, or under HTTP/2 the flow-control window it grants). At most
    /// a connection's concurrent streams; 16 bits, like the wrapping count below, keep
    /// the slot in the allocation size it had without them (every connection has one).
    waiting: AtomicU16,
    /// Response frames handed to hyper, wrapping: the watch loop compares it between
    /// ticks.
    delivered: AtomicU32,
    state: AtomicU8,
    evict: Notify,
    /// The task of an engine connection waiting for its next request: woken when the
    /// connection is chosen to close, or shutdown begins.
    waker: AtomicWaker,
}

impl Slot {
    pub(crate) fn new() -> Self {
        Self {
            active: AtomicUsize::new(0),
            done: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            waiting: AtomicU16::new(0),
            delivered: AtomicU32::new(0),
            state: AtomicU8::new(OPEN),
            evict: Notify::new(),
            waker: AtomicWaker::new(),
        }
    }

    /// A request in progress, or bytes of a finished one still to deliver.
    pub(crate) fn busy(&self) -> bool {
        self.active.load(Relaxed) > 0 || self.blocked.load(Relaxed)
    }

    pub(crate) fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Relaxed);
    }

    pub(crate) fn done(&self) -> u64 {
        self.done.load(Relaxed)
    }

    /// A response body waits for the client to take its last frame, and how many frames
    /// all of them have handed over so far.
    pub(crate) fn delivery(&self) -> (bool, u32) {
        (self.waiting.load(Relaxed) > 0, self.delivered.load(Relaxed))
    }

    /// A connection served without per-request guards starts work (a request, or a
    /// run of pipelined ones).
    pub(crate) fn enter(&self) {
        self.active.fetch_add(1, Relaxed);
    }

    /// ... and is done with it.
    pub(crate) fn leave(&self) {
        self.active.fetch_sub(1, Relaxed);
        self.done.fetch_add(1, Relaxed);
    }

    /// The task to wake when the connection is chosen to close or shutdown begins
    /// (check for those after registering).
    pub(crate) fn register(&self, w: &std::task::Waker) {
        self.waker.register(w);
    }

    /// Resolves when nothing counts itself in the connection any more: called once
    /// hyper is done with an HTTP/1.1 connection it handed over to a tunnel, whose
    /// [`TunnelGuard`] wakes the task as it goes.
    pub(crate) async fn tunnels_over(&self) {
        std::future::poll_fn(|cx| {
            self.register(cx.waker());
            if self.active.load(Relaxed) == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// The listener chose this connection to close for a newcomer, or has stopped.
    pub(crate) fn is_evicted(&self) -> bool {
        matches!(self.state.load(Relaxed), EVICTED | STOPPED)
    }

    /// It was told to close because its listener stopped, not to make room.
    pub(crate) fn listener_stopped(&self) -> bool {
        self.state.load(Relaxed) == STOPPED
    }

    /// Count a request in until the returned guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> RequestGuard {
        self.active.fetch_add(1, Relaxed);
        RequestGuard(self.clone())
    }

    /// Resolves once the listener has chosen this connection to close for a newcomer.
    /// (A choice made before the first poll is kept: `Notify` stores it.)
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await
    }

    /// The `done` count it was last queued with.
    pub(crate) fn queued(&self) -> u64 {
        self.queued.load(Relaxed)
    }

    /// The entry made with `stamp` is this open connection's latest.
    fn live(&self, stamp: u64) -> bool {
        self.state.load(Relaxed) == OPEN && self.queued() == stamp
    }
}

/// What a tunnel needs of its client connection, handed with each request that may
/// open one (CONNECT, or an HTTP/1.1 upgrade) in its extensions: the connection's slot,
/// which the tunnel keeps busy while it is open ([`Tunnel::start`]), so the connection
/// under it is never taken for idle (an HTTP/2 stream that became a tunnel outlives its
/// response; an HTTP/1.1 connection hyper handed over is open until the tunnel ends);
/// and the shutdown signal, which ends it.
#[derive(Clone)]
pub(crate) struct Tunnel {
    pub(crate) slot: Arc<Slot>,
    pub(crate) shutdown: super::shutdown::Shutdown,
}

impl Tunnel {
    pub(crate) fn start(&self) -> TunnelGuard {
        self.slot.active.fetch_add(1, Relaxed);
        TunnelGuard(self.slot.clone())
    }
}

/// Holds an open tunnel's place in its connection's `active` count, and wakes the
/// connection's task when the tunnel ends (see [`Slot::tunnels_over`]).
pub(crate) struct TunnelGuard(Arc<Slot>);

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
        self.0.done.fetch_add(1, Relaxed);
        self.0.waker.wake();
    }
}

/// Holds a request's place in its connection's `active` count.
pub(crate) struct RequestGuard(Arc<Slot>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
        self.0.done.fetch_add(1, Relaxed);
    }
}

/// A response body that keeps its request counted until hyper has it all, so a
/// connection streaming a response is never taken for idle. (A client that stops reading
/// holds it no longer than `send_timeout`.) It also tells the slot when hyper holds one
/// of its frames and has not asked for the next: the body then waits on the client, which
/// under HTTP/2 can stop reading without any write blocking (a window of zero), so the
/// watch loop times it (see [`Stall`]).
pub(crate) struct Tracked<B> {
    body: B,
    guard: RequestGuard,
    /// A frame went to hyper and the body has not been polled since.
    handed: bool,
}

impl<B> Tracked<B> {
    pub(crate) fn new(body: B, guard: RequestGuard) -> Self {
        Self {
            body,
            guard,
            handed: false,
        }
    }

    fn taken(&mut self) {
        if std::mem::take(&mut self.handed) {
            self.guard.0.waiting.fetch_sub(1, Relaxed);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let me = self.get_mut();
        me.taken();
        let r = Pin::new(&mut me.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &r {
            let slot = &me.guard.0;
            slot.delivered.fetch_add(1, Relaxed); // wraps
            slot.waiting.fetch_add(1, Relaxed);
            me.handed = true;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.taken();
    }
}

/// How long a connection's response bodies have all been waiting on the client, counted
/// by its watch loop's ticks: some body waits and no body has handed over a frame since
/// the last tick. Past `send_timeout` the client has stopped reading as surely as one
/// whose socket write blocks (which the socket wrapper times), and is closed the same way.
#[derive(Default)]
pub(crate) struct Stall {
    seen: u32,
    stalled: std::time::Duration,
}

impl Stall {
    /// One tick of `period`: whether the stall has now lasted `limit`.
    pub(crate) fn tick(
        &mut self,
        slot: &Slot,
        period: std::time::Duration,
        limit: std::time::Duration,
    ) -> bool {
        let (waiting, delivered) = slot.delivery();
        if waiting && delivered == self.seen {
            self.stalled += period;
        } else {
            self.stalled = std::time::Duration::ZERO;
            self.seen = delivered;
        }
        self.stalled >= limit
    }
}

struct Entry {
    slot: Arc<Slot>,
    stamp: u64,
}

/// A listener's open connections: how many, and the idle ones oldest first.
#[derive(Default)]
pub(crate) struct Conns {
    /// Admitted and neither closed nor evicted.
    open: AtomicUsize,
    idle: Mutex<VecDeque<Entry>>,
    /// The listener has stopped (a reload removed it): a connection queued from now on
    /// is told to close instead. Written and read under `idle`'s lock, so a connection
    /// queued while [`Conns::stop`] runs is either in the queue it sweeps or sees it.
    stopped: AtomicBool,
}

impl Conns {
    /// Admit a new connection under `max`, closing idle ones to make room. `None`: every
    /// connection is busy; refuse the newcomer.
    pub(crate) fn admit(&self, max: usize) -> Option<Arc<Slot>> {
        while self.open.load(Relaxed) >= max {
            if !self.evict_oldest() {
                return None;
            }
        }
        self.open.fetch_add(1, Relaxed);
        let slot = Arc::new(Slot::new());
        self.requeue(&slot, 0);
        Some(slot)
    }

    /// `slot` was active until lately and has `done` requests done: move it to the back.
    pub(crate) fn requeue(&self, slot: &Arc<Slot>, done: u64) {
        let mut q = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopped.load(Relaxed) {
            drop(q);
            self.evict(slot, STOPPED);
            return;
        }
        slot.queued.store(done, Relaxed);
        q.push_back(Entry {
            slot: slot.clone(),
            stamp: done,
        });
        // A connection has at most one live entry, so after compaction the queue is no
        // longer than the open connections: compacting at twice that keeps each push
        // O(1) amortised.
        if q.len() > 2 * self.open.load(Relaxed) + 64 {
            q.retain(|e| e.slot.live(e.stamp));
        }
    }

    /// `slot` has nothing in progress again: queue it if it was dropped from the queue
    /// while busy. Costs one load when it was not.
    pub(crate) fn idle_again(&self, slot: &Arc<Slot>) {
        if slot.queued() == UNQUEUED {
            self.requeue(slot, slot.done());
        }
    }

    /// Wake every connection waiting for a request (shutdown began: they close).
    pub(crate) fn wake_all(&self) {
        let q = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        for e in q.iter() {
            e.slot.waker.wake();
        }
    }

    /// The listener has stopped: every connection is told to close, as one chosen to
    /// make room is: an idle one at once, a busy one once its work in progress is done
    /// (its response says `Connection: close`). One busy when its entry was dropped
    /// from the queue is told when it is queued again, as it goes idle.
    pub(crate) fn stop(&self) {
        let mut q = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.stopped.store(true, Relaxed);
        let all = std::mem::take(&mut *q);
        drop(q);
        for e in all.into_iter().filter(|e| e.slot.live(e.stamp)) {
            self.evict(&e.slot, STOPPED);
        }
    }

    /// The connection has ended (for whatever reason).
    pub(crate) fn close(&self, slot: &Slot) {
        // An evicted connection was uncounted when it was chosen.
        if slot.state.swap(CLOSED, Relaxed) == OPEN {
            self.open.fetch_sub(1, Relaxed);
        }
    }

    /// Choose the connection idle longest, tell it to close and stop counting it.
    fn evict_oldest(&self) -> bool {
        let mut q = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Each live entry moves to the back at most once per request served, so this
        // ends; the bound only guards against connections that keep serving meanwhile.
        let mut budget = 2 * q.len() + 1;
        while let Some(e) = q.pop_front() {
            budget = budget.saturating_sub(1);
            if !e.slot.live(e.stamp) {
                continue;
            }
            // A request in progress: not idle. It is queued again once it is.
            if e.slot.busy() {
                e.slot.queued.store(UNQUEUED, Relaxed);
                continue;
            }
            let done = e.slot.done();
            if done != e.stamp && budget > 0 {
                // Active since it was queued: a second chance, at the back.
                e.slot.queued.store(done, Relaxed);
                q.push_back(Entry {
                    slot: e.slot,
                    stamp: done,
                });
                continue;
            }
            if self.evict(&e.slot, EVICTED) {
                return true;
            }
        }
        false
    }

    /// Tell `slot`'s connection to close (`to`: why) and stop counting it; false when
    /// it had closed, or been told, already.
    fn evict(&self, slot: &Slot, to: u8) -> bool {
        if slot
            .state
            .compare_exchange(OPEN, to, Relaxed, Relaxed)
            .is_err()
        {
            return false;
        }
        self.open.fetch_sub(1, Relaxed);
        slot.evict.notify_one();
        slot.waker.wake();
        true
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.idle.lock().map(|q| q.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
