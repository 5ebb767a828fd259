//! Shutdown as every connection hears it: a flag read where a channel would cost more
//! (the engine's connections, once per response), a channel for those that wait on it
//! (hyper's connections, tunnels, the admin API's readiness), and the count of open
//! connections the drain waits on.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Signals every connection to finish its current requests and close.
#[derive(Clone)]
pub(crate) struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    /// Connections still open, across all listeners.
    open: Arc<AtomicUsize>,
    /// Woken each time a connection closes, so a drain can recount.
    closed: Arc<tokio::sync::Notify>,
    /// Set once shutdown begins (read by connections where a channel would cost more).
    draining: Arc<AtomicBool>,
}

impl Shutdown {
    pub(crate) fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
            open: Arc::new(AtomicUsize::new(0)),
            closed: Arc::new(tokio::sync::Notify::new()),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A connection was admitted.
    pub(super) fn connection_opened(&self) {
        self.open.fetch_add(1, Relaxed);
    }

    /// A connection has closed.
    pub(super) fn connection_closed(&self) {
        self.open.fetch_sub(1, Relaxed);
        self.closed.notify_waiters();
    }

    pub(crate) fn trigger(&self) {
        self.draining.store(true, Relaxed);
        let _ = self.tx.send(true);
    }

    /// Shutdown has begun.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// Tells `true` once shutdown has begun.
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Connections still open.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Wait until every connection has closed, or `grace` has passed. Returns how many
    /// were still open.
    pub(crate) async fn drained(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.closed.notified();
            let n = self.open.load(Relaxed);
            if n == 0 || tokio::time::Instant::now() >= deadline {
                return n;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
