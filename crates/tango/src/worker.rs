//! The data plane's workers: N threads, each running its own single-threaded tokio
//! runtime, and which worker the calling thread is.
//!
//! Each worker accepts on sockets of its own (`proxy/listener.rs` binds one per worker
//! and address with `SO_REUSEPORT`, and the kernel spreads new connections across
//! them; a worker with more connections than another hands a new one over once, right
//! after accepting it), so a connection, and every task spawned for it, lives on one
//! thread from its first byte to close: no work stealing, and none of the multi-threaded scheduler's
//! cross-thread bookkeeping on the request path. The control plane (admin API, watch,
//! health probes, upkeep, reloads, signals) runs on the runtime that started the
//! workers.
//!
//! [`id`] tells the data plane which worker it runs on, so it can keep per-worker state
//! (idle upstream connections, buffers) that workers never contend for: an upstream
//! connection's task runs on the worker that opened it, and a request another worker
//! sends on it costs a cross-thread wake-up each way. Every thread
//! that is not a worker (the control plane's, the blocking pool's) is given index 0 as
//! well, so per-worker state must still be safe to share: it is uncontended, not
//! unshared.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static ID: Cell<usize> = const { Cell::new(0) };
}

/// How many workers the process runs: 1 until [`Workers::start`].
static COUNT: AtomicUsize = AtomicUsize::new(1);

/// The calling thread's worker, in `0..count()`; 0 on threads that are not workers.
pub(crate) fn id() -> usize {
    ID.with(Cell::get)
}

/// The number of workers, for sizing per-worker state: every [`id`] is below it.
pub(crate) fn count() -> usize {
    COUNT.load(Relaxed)
}

/// The default number of workers: one per core this process may run on (its CPU
/// affinity and cgroup quota count).
pub(crate) fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// One worker thread, and how to end it.
struct Thread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

/// The running workers. Dropping them stops and joins every thread (their tasks,
/// connections included, are dropped with their runtimes).
pub(crate) struct Workers {
    threads: Vec<Thread>,
}

impl Workers {
    /// Start `n` workers (at least one), each a thread named `tango-worker-I` running a
    /// current-thread runtime with I/O and timers, idle until tasks are spawned on it.
    #[cfg(test)]
    pub(crate) fn start(n: usize) -> std::io::Result<Self> {
        Self::start_with(n, || {})
    }

    /// [`start`](Self::start), with `setup` run first on each worker's thread, inside
    /// its runtime (what the data plane keeps per worker, such as its send ring).
    pub(crate) fn start_with(n: usize, setup: fn()) -> std::io::Result<Self> {
        let n = n.max(1);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let join = std::thread::Builder::new()
                .name(format!("tango-worker-{i}"))
                .spawn(move || {
                    ID.with(|id| id.set(i));
                    rt.block_on(async { setup() });
                    // A dropped sender (the `Workers` dropped) ends it too.
                    rt.block_on(async move {
                        let _ = stopped.await;
                    });
                })?;
            threads.push(Thread {
                handle,
                stop: Some(stop),
                join: Some(join),
            });
        }
        COUNT.store(n, Relaxed);
        Ok(Self { threads })
    }

    /// Each worker's runtime, by worker index: where its listeners' accept loops go.
    pub(crate) fn handles(&self) -> Vec<Handle> {
        self.threads.iter().map(|t| t.handle.clone()).collect()
    }

    /// Stop every worker and wait for its thread to end. What still runs on a worker
    /// (connections past the drain's grace period) is dropped.
    pub(crate) fn stop(&mut self) {
        for t in &mut self.threads {
            if let Some(stop) = t.stop.take() {
                let _ = stop.send(());
            }
        }
        for t in &mut self.threads {
            if let Some(join) = t.join.take() {
                if join.join().is_err() {
                    tracing::warn!("a worker thread panicked");
                }
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_knows_its_index_and_other_threads_are_zero() {
        let mut w = Workers::start(3).unwrap();
        assert_eq!(w.handles().len(), 3);
        assert_eq!(count(), 3);
        let ids: Vec<usize> = w
            .handles()
            .iter()
            .map(|h| {
                let (tx, rx) = std::sync::mpsc::channel();
                h.spawn(async move { tx.send(id()).unwrap() });
                rx.recv().unwrap()
            })
            .collect();
        assert_eq!(ids, vec![0, 1, 2]);
        assert_eq!(id(), 0, "a thread that is not a worker");
        w.stop();
        // Stopped: a task spawned now never runs.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        drop(w.handles()[1].spawn(async move { tx.send(()).unwrap() }));
        assert!(rx.recv().is_err());
    }
}
