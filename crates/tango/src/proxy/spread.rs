//! Which worker serves a connection one worker accepted: the kernel spreads new
//! connections over the workers' `SO_REUSEPORT` sockets by a hash of their addresses,
//! which leaves them uneven (64 connections came out 27 and 37 between two workers),
//! and the clients of the fuller worker wait longer for every response. So each
//! listener counts its open connections per worker, and a worker that accepts while it
//! has more connections than the emptiest hands the socket over to it (as Envoy's
//! exact connection balancing does), so no two workers differ by more than one. Only
//! accepting costs anything: the socket moves from one worker's poller to the
//! other's (two `epoll_ctl` calls and a wake-up); requests never cross.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Open connections per worker, for one listener.
#[derive(Debug)]
pub(crate) struct Spread {
    open: Box<[AtomicUsize]>,
}

impl Spread {
    /// Counts for `workers` workers, all at zero.
    pub(crate) fn new(workers: usize) -> Self {
        Spread {
            open: (0..workers.max(1)).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// The worker that should serve a connection worker `me` accepted: `me`, unless it
    /// has more connections than another; then the emptiest. The connection is counted
    /// there until the returned guard drops.
    pub(crate) fn place(self: &Arc<Self>, me: usize) -> Placed {
        let me = me.min(self.open.len() - 1);
        let mine = self.open[me].load(Relaxed);
        let (least, fewest) = self
            .open
            .iter()
            .map(|n| n.load(Relaxed))
            .enumerate()
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, mine));
        let to = if mine > fewest { least } else { me };
        self.open[to].fetch_add(1, Relaxed);
        Placed {
            spread: self.clone(),
            worker: to,
        }
    }

    /// How many connections worker `i` serves.
    #[cfg(test)]
    fn open(&self, i: usize) -> usize {
        self.open[i].load(Relaxed)
    }
}

/// A connection counted on its worker until dropped.
#[derive(Debug)]
pub(crate) struct Placed {
    spread: Arc<Spread>,
    /// The worker that serves it.
    pub(crate) worker: usize,
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.spread.open[self.worker].fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_accepted_by_one_worker_end_up_even() {
        let s = Arc::new(Spread::new(2));
        let placed: Vec<Placed> = (0..64).map(|_| s.place(1)).collect();
        assert_eq!((s.open(0), s.open(1)), (32, 32));
        assert_eq!(placed.iter().filter(|p| p.worker == 0).count(), 32);
        drop(placed);
        assert_eq!(
            (s.open(0), s.open(1)),
            (0, 0),
            "closed connections are uncounted"
        );
    }

    #[test]
    fn a_worker_no_fuller_than_the_emptiest_keeps_what_it_accepts() {
        let s = Arc::new(Spread::new(3));
        let a = s.place(0);
        assert_eq!(a.worker, 0, "all at 0");
        let b = s.place(0);
        assert_eq!(b.worker, 1, "1 against 0: to the first emptiest");
        assert_eq!(s.place(2).worker, 2, "1, 1 and 0");
        assert_eq!(s.place(2).worker, 2, "all at 1: it keeps it");
        drop(a);
        assert_eq!(s.place(1).worker, 0, "the emptiest again, once one closed");
    }
}
