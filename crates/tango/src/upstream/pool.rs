//! Idle upstream connections as bare sockets, and the lease on a connection in use.
//!
//! An idle connection is its socket and the time it went idle: no task, no buffer. It
//! is checked for life when taken (a non-blocking read: `WouldBlock` means the backend
//! has said nothing and it is alive; end of stream, stray bytes or an error mean it is
//! not). Every open connection, idle or in use or still connecting, counts in the
//! backend's `open`, which bounds `max_connections`.
//!
//! Idle lists are kept per worker (`shards`, indexed by `worker::id`): each worker runs
//! its own single-threaded runtime and reuses the sockets it opened, registered with its
//! own reactor, from a list no other worker contends for.

use super::{ConnPool, ConnectError};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// A backend's idle sockets, one list per worker.
pub(crate) struct Sockets {
    shards: Box<[Mutex<Vec<Idle>>]>,
}

impl Default for Sockets {
    fn default() -> Self {
        let n = crate::worker::count();
        Self {
            shards: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }
}

impl Sockets {
    fn shard(&self) -> &Mutex<Vec<Idle>> {
        let i = crate::worker::id() % self.shards.len();
        &self.shards[i]
    }

    fn put(&self, stream: TcpStream, now: Instant) {
        let idle = Idle { stream, since: now };
        lock(self.shard()).push(idle);
    }

    /// The most recently used live socket idle for less than `max_idle` at `now`; dead
    /// and stale ones met on the way are closed and uncounted from `open`.
    fn take(&self, max_idle: Duration, now: Instant, open: &AtomicU64) -> Option<TcpStream> {
        let mut list = lock(self.shard());
        while let Some(c) = list.pop() {
            if now.saturating_duration_since(c.since) < max_idle && alive(&c.stream) {
                return Some(c.stream);
            }
            open.fetch_sub(1, Relaxed);
        }
        None
    }

    /// Close sockets idle for `max_idle` or more, or closed by the backend. Returns
    /// how many were closed.
    pub(crate) fn sweep(&self, max_idle: Duration) -> u64 {
        let now = Instant::now();
        let mut closed = 0;
        for shard in self.shards.iter() {
            let mut list = lock(shard);
            let before = list.len();
            list.retain(|c| now.saturating_duration_since(c.since) < max_idle && alive(&c.stream));
            closed += (before - list.len()) as u64;
        }
        closed
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An idle connection is alive when a read would block: the backend has neither
/// closed it nor sent anything unasked.
fn alive(s: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(s.try_read(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// Reaches a backend's pool from a connection checked out of it: a reference for a
/// request served within one task, an owning handle for a response body handed to
/// hyper.
pub(crate) trait PoolRef {
    fn pool(&self) -> &ConnPool;
}

impl PoolRef for &ConnPool {
    fn pool(&self) -> &ConnPool {
        self
    }
}

/// A connection in use. Dropped, it closes and leaves `open`; [`Upstream::release`]
/// puts it back in the idle list instead.
pub(crate) struct Upstream<P: PoolRef> {
    pub(crate) stream: TcpStream,
    /// Taken from the idle list rather than opened for this request.
    pub(crate) reused: bool,
    lease: Lease<P>,
}

struct Lease<P: PoolRef> {
    pool: P,
    counted: bool,
}

impl<P: PoolRef> Drop for Lease<P> {
    fn drop(&mut self) {
        if self.counted {
            self.pool.pool().open_count().fetch_sub(1, Relaxed);
        }
    }
}

impl<P: PoolRef> Upstream<P> {
    /// The exchange ended cleanly at `now`: the connection may serve another request.
    pub(crate) fn release(self, now: Instant) {
        let Upstream {
            stream, mut lease, ..
        } = self;
        lease.counted = false;
        lease.pool.pool().sockets.put(stream, now);
    }
}

pub(super) async fn connect(address: &str, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| ConnectError::Timeout)??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// What bounds taking a connection.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) connect_timeout: Duration,
    /// Idle connections older than this are not reused.
    pub(crate) max_idle: Duration,
    pub(crate) max_connections: Option<u32>,
}

/// A connection from `pool` (to `address`) at `now`: a live idle one, or a new one
/// (bounded by the connect timeout and the backend's `max_connections`).
pub(crate) async fn checkout<P: PoolRef>(
    pool: P,
    address: &str,
    limits: Limits,
    now: Instant,
) -> Result<Upstream<P>, ConnectError> {
    let conns = pool.pool();
    if let Some(stream) = conns.sockets.take(limits.max_idle, now, conns.open_count()) {
        return Ok(Upstream {
            stream,
            reused: true,
            lease: Lease {
                pool,
                counted: true,
            },
        });
    }
    // Counted before connecting, so concurrent connects cannot pass the cap together.
    let before = conns.open_count().fetch_add(1, Relaxed);
    // From here the lease uncounts it on every way out.
    let lease = Lease {
        pool,
        counted: true,
    };
    if limits
        .max_connections
        .is_some_and(|max| before >= u64::from(max))
    {
        return Err(ConnectError::AtCapacity);
    }
    // Boxed: connecting is the uncommon case, and its future (with its timer) would
    // make every request's larger.
    let stream = Box::pin(connect(address, limits.connect_timeout)).await?;
    Ok(Upstream {
        stream,
        reused: false,
        lease,
    })
}
