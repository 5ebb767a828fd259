//! Idle upstream connections as bare sockets (or TLS sessions), and the lease on a
//! connection in use.
//!
//! An idle connection is its stream and the time it went idle: no task, no buffer. It
//! is checked for life when taken (a non-blocking read: `WouldBlock` means the backend
//! has said nothing and it is alive; end of stream, stray bytes or an error mean it is
//! not, and the request takes another), a check that reads the socket's readiness and
//! makes a system call only when that says readable (`Stream::alive`). Every open
//! connection, idle or in use or still connecting, counts in the backend's `open`,
//! which bounds `max_connections`.
//!
//! Idle lists are kept per worker (`shards`, indexed by `worker::id`): each worker runs
//! its own single-threaded runtime and reuses the sockets it opened, registered with its
//! own reactor, from a list no other worker contends for.
//!
//! A connection that began with a PROXY header carries one client's address, so it is
//! private to that origin (as HAProxy marks such connections): it goes back to a list
//! of its own, tagged with the origin, and is taken again only for a request with the
//! same client address and listener address. Pools that send no header use only the
//! shared list.

use super::{ConnPool, ConnectError, Dialer, Origin, Stream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

struct Idle {
    stream: Stream,
    since: Instant,
}

impl Idle {
    /// Still worth keeping at `now`: idle for less than `max_idle`, and alive.
    fn keep(&mut self, max_idle: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < max_idle && self.stream.alive()
    }
}

/// One worker's idle connections to a backend.
#[derive(Default)]
struct Lists {
    shared: Vec<Idle>,
    /// Connections private to an origin (they began with its PROXY header), by origin:
    /// a request finds its own without looking at every other client's.
    private: HashMap<Origin, Vec<Idle>>,
}

impl Lists {
    fn len(&self) -> usize {
        self.shared.len() + self.private.values().map(Vec::len).sum::<usize>()
    }
}

/// A backend's idle connections, one set of lists per worker.
pub(crate) struct Sockets {
    shards: Box<[Mutex<Lists>]>,
}

impl Default for Sockets {
    fn default() -> Self {
        let n = crate::worker::count();
        Self {
            shards: (0..n).map(|_| Mutex::new(Lists::default())).collect(),
        }
    }
}

impl Sockets {
    fn shard(&self) -> &Mutex<Lists> {
        let i = crate::worker::id() % self.shards.len();
        &self.shards[i]
    }

    pub(super) fn put(&self, stream: Stream, private: Option<Box<Origin>>, now: Instant) {
        let idle = Idle { stream, since: now };
        match private {
            None => lock(self.shard()).shared.push(idle),
            Some(o) => lock(self.shard()).private.entry(*o).or_default().push(idle),
        }
    }

    /// The most recently used live connection (private to `origin`, when given) idle
    /// for less than `max_idle` at `now`; dead and stale ones met on the way are closed
    /// and uncounted from `open`.
    fn take(
        &self,
        max_idle: Duration,
        now: Instant,
        open: &AtomicU64,
        origin: Option<&Origin>,
    ) -> Option<Stream> {
        let mut lists = lock(self.shard());
        let Some(origin) = origin else {
            while let Some(mut c) = lists.shared.pop() {
                if c.keep(max_idle, now) {
                    return Some(c.stream);
                }
                open.fetch_sub(1, Relaxed);
            }
            return None;
        };
        let list = lists.private.get_mut(origin)?;
        let mut found = None;
        while let Some(mut c) = list.pop() {
            if c.keep(max_idle, now) {
                found = Some(c.stream);
                break;
            }
            open.fetch_sub(1, Relaxed);
        }
        if list.is_empty() {
            lists.private.remove(origin);
        }
        found
    }

    /// Close connections idle for `max_idle` or more, or closed by the backend.
    /// Returns how many were closed.
    pub(crate) fn sweep(&self, max_idle: Duration) -> u64 {
        let now = Instant::now();
        let mut closed = 0;
        for shard in self.shards.iter() {
            let mut lists = lock(shard);
            let before = lists.len();
            lists.shared.retain_mut(|c| c.keep(max_idle, now));
            lists.private.retain(|_, list| {
                list.retain_mut(|c| c.keep(max_idle, now));
                !list.is_empty()
            });
            closed += (before - lists.len()) as u64;
        }
        closed
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reaches a backend's pool from a connection checked out of it: a reference for a
/// request served within one task, an owning handle for a response body handed to
/// hyper.
pub(crate) trait PoolRef: Clone {
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
    pub(crate) stream: Stream,
    /// Taken from the idle list rather than opened for this request.
    pub(crate) reused: bool,
    /// The origin whose PROXY header it began with: it serves only that origin.
    private: Option<Box<Origin>>,
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
    /// The handle on the connection's pool.
    pub(crate) fn handle(&self) -> &P {
        &self.lease.pool
    }

    /// The connection's stream, its count in `open` going with it.
    pub(crate) fn into_counted(self) -> Stream {
        let Upstream {
            stream, mut lease, ..
        } = self;
        lease.counted = false;
        stream
    }

    /// The exchange ended cleanly at `now`: the connection may serve another request.
    pub(crate) fn release(self, now: Instant) {
        let Upstream {
            stream,
            private,
            mut lease,
            ..
        } = self;
        lease.counted = false;
        lease.pool.pool().sockets.put(stream, private, now);
    }
}

/// A new connection to `address` as `dial` opens them, within `timeout` for all of it
/// (TCP, the PROXY header, the TLS handshake). The header tells of `origin`; without
/// one (a health check's own connection) it tells of the connection's own addresses.
/// `http1_only`: TLS offers only `http/1.1` by ALPN, whatever the pool's protocol (a
/// health probe that speaks it).
pub(crate) async fn open(
    address: &str,
    dial: &Dialer,
    origin: Option<&Origin>,
    timeout: Duration,
    http1_only: bool,
) -> Result<Stream, ConnectError> {
    tokio::time::timeout(timeout, open_now(address, dial, origin, http1_only))
        .await
        .map_err(|_| ConnectError::Timeout)?
}

async fn open_now(
    address: &str,
    dial: &Dialer,
    origin: Option<&Origin>,
    http1_only: bool,
) -> Result<Stream, ConnectError> {
    let mut tcp = TcpStream::connect(address).await?;
    let _ = tcp.set_nodelay(true);
    if let Some(version) = dial.proxy {
        let o = match origin {
            Some(o) => *o,
            None => Origin {
                client: tcp.local_addr()?,
                local: tcp.peer_addr()?,
            },
        };
        let header = tango_core::proxy_protocol::encode(version, o.client, o.local);
        tcp.write_all(&header).await?;
    }
    match &dial.tls {
        None => Ok(Stream::Plain(tcp)),
        Some(Err(why)) => Err(ConnectError::TlsSettings(why.clone())),
        Some(Ok(client)) => match client.handshake(tcp, address, http1_only).await {
            Ok(s) => Ok(Stream::Tls(Box::new(s))),
            Err(e) => Err(ConnectError::Tls(e)),
        },
    }
}

/// What bounds taking a connection.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) connect_timeout: Duration,
    /// Idle connections older than this are not reused.
    pub(crate) max_idle: Duration,
    pub(crate) max_connections: Option<u32>,
}

/// A connection from `pool` (to `address`, opened as `dial` says) for a request from
/// `origin` at `now`: a live idle one, or a new one (bounded by the connect timeout and
/// the backend's `max_connections`).
pub(crate) async fn checkout<P: PoolRef>(
    pool: P,
    address: &str,
    limits: Limits,
    dial: &Dialer,
    origin: &Origin,
    now: Instant,
) -> Result<Upstream<P>, ConnectError> {
    let conns = pool.pool();
    let origin = dial.private().then_some(origin);
    if let Some(stream) = conns
        .sockets
        .take(limits.max_idle, now, conns.open_count(), origin)
    {
        return Ok(Upstream {
            stream,
            reused: true,
            private: origin.map(|o| Box::new(*o)),
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
    let stream = Box::pin(open(address, dial, origin, limits.connect_timeout, false)).await?;
    Ok(Upstream {
        stream,
        reused: false,
        private: origin.map(|o| Box::new(*o)),
        lease,
    })
}
