//! HTTP/2 connections to a backend (`protocol = "h2"`): a multiplexed set per worker,
//! each connection carrying streams up to the cap the backend's SETTINGS allow, and a
//! new connection opened when every one is full.
//!
//! Each connection is driven by one task (h2 needs one to read frames and answer
//! pings), spawned on the worker that opened it; requests never get a task of their
//! own: the request's task sends on a [`Stream`] lent from the set. A connection counts
//! in the backend's `open` (so in `max_connections`) from the moment it starts
//! connecting until it is found dead (GOAWAY, an error, the backend closed it) or idle
//! past the pool's idle timeout, when the set lets go of it.
//!
//! The handshake takes any `AsyncRead + AsyncWrite` ([`handshake`]): plain TCP (h2c
//! with prior knowledge) or a TLS stream. With `protocol = "auto"` a new connection
//! whose backend chose `http/1.1` by ALPN goes to the backend's idle HTTP/1.1
//! connections instead, and one opened for an HTTP/1.1 request whose backend chose
//! `h2` comes here ([`adopt`]): neither is wasted.

use super::ConnectError;
use bytes::Bytes;
use h2::client::SendRequest;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// Streams per connection until the backend's SETTINGS say otherwise (RFC 9113 6.5.2
/// recommends a server allow at least 100).
const INITIAL_MAX_STREAMS: usize = 100;

/// The connection's receive window (1 GiB, as Go's HTTP/2 client; h2's default is
/// 64 KiB, the same as a stream's). A stream's window (64 KiB) is what bounds the
/// bytes a stream holds unread: a client that stops reading its answer leaves that
/// much with tango. With the connection's window no larger, one such stream would use
/// it all up, and every other stream on the connection, other clients' included, would
/// wait for that client. Large enough for every stream's window to be full at once, it
/// holds nothing back that the streams' windows do not.
const CONNECTION_WINDOW: u32 = 1 << 30;

/// What a connection's users and its driving task share.
struct Shared {
    /// Streams lent out and not yet given back.
    active: AtomicUsize,
    /// The driving task has ended: the connection takes no more streams.
    dead: AtomicBool,
    /// When the last stream was given back, in ms after `born`.
    last_used_ms: AtomicU64,
    born: Instant,
}

struct Conn {
    send: SendRequest<Bytes>,
    shared: Arc<Shared>,
}

impl Conn {
    /// The connection can take one more stream now.
    fn has_room(&self) -> bool {
        let cap = self.send.current_max_send_streams().max(1);
        !self.shared.dead.load(Relaxed) && self.shared.active.load(Relaxed) < cap
    }

    fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.shared.active.load(Relaxed) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.shared.last_used_ms.load(Relaxed));
        Some(now.saturating_duration_since(self.shared.born + since))
    }
}

/// A backend's HTTP/2 connections, one list per worker (as its idle HTTP/1 sockets:
/// each worker drives the connections it opened, on its own reactor).
pub(crate) struct Conns {
    shards: Box<[Mutex<Vec<Conn>>]>,
}

impl Default for Conns {
    fn default() -> Self {
        let n = crate::worker::count();
        Self {
            shards: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }
}

/// A stream's place on a connection, lent for one request; given back when dropped.
pub(crate) struct Stream {
    /// Sends the request (a clone of the connection's handle).
    pub(crate) send: SendRequest<Bytes>,
    /// The connection was opened for this request.
    pub(crate) fresh: bool,
    lease: Lease,
}

struct Lease(Arc<Shared>);

impl Drop for Lease {
    fn drop(&mut self) {
        let s = &self.0;
        let ms = s.born.elapsed().as_millis() as u64;
        s.last_used_ms.store(ms, Relaxed);
        s.active.fetch_sub(1, Relaxed);
    }
}

impl Stream {
    /// The stream's connection failed under it: lend it to no one else.
    pub(crate) fn connection_failed(&self) {
        self.lease.0.dead.store(true, Relaxed);
    }
}

fn lend(c: &Conn, fresh: bool) -> Stream {
    c.shared.active.fetch_add(1, Relaxed);
    Stream {
        send: c.send.clone(),
        fresh,
        lease: Lease(c.shared.clone()),
    }
}

impl Conns {
    fn shard(&self) -> &Mutex<Vec<Conn>> {
        &self.shards[crate::worker::id() % self.shards.len()]
    }

    /// A stream on a live connection of this worker with room for one, if any; dead
    /// connections met on the way are dropped and uncounted from `open`.
    fn take(&self, open: &AtomicU64) -> Option<Stream> {
        let mut list = lock(self.shard());
        let before = list.len();
        list.retain(|c| !c.shared.dead.load(Relaxed));
        open.fetch_sub((before - list.len()) as u64, Relaxed);
        // The busiest connection with room: streams gather on few connections, so the
        // others go idle and are closed.
        list.iter()
            .filter(|c| c.has_room())
            .max_by_key(|c| c.shared.active.load(Relaxed))
            .map(|c| lend(c, false))
    }

    /// Drop connections that are dead, or idle for `max_idle` or more. Returns how
    /// many were dropped.
    pub(crate) fn sweep(&self, max_idle: Duration) -> u64 {
        let now = Instant::now();
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut list = lock(shard);
            let before = list.len();
            list.retain(|c| {
                !c.shared.dead.load(Relaxed) && c.idle_for(now).is_none_or(|d| d < max_idle)
            });
            dropped += (before - list.len()) as u64;
        }
        dropped
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start HTTP/2 on `io` (the connection preface, SETTINGS) and spawn the task that
/// drives it; the handle sends requests on it. `shared` hears when the task ends.
async fn handshake<T>(io: T) -> Result<(SendRequest<Bytes>, Arc<Shared>), h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::Builder::new()
        .initial_max_send_streams(INITIAL_MAX_STREAMS)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake(io)
        .await?;
    let shared = Arc::new(Shared {
        active: AtomicUsize::new(0),
        dead: AtomicBool::new(false),
        last_used_ms: AtomicU64::new(0),
        born: Instant::now(),
    });
    let watch = shared.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
        }
        watch.dead.store(true, Relaxed);
    });
    Ok((send, shared))
}

/// A stream to the backend of `pool` at `address`: on a connection of this worker with
/// room, or on a new one opened as `dial` says (TLS offering `h2`; bounded by the
/// connect timeout, which covers both handshakes, and by `max_connections`).
pub(crate) async fn checkout(
    pool: &super::ConnPool,
    address: &str,
    dial: &super::Dialer,
    limits: super::Limits,
) -> Result<Stream, ConnectError> {
    if let Some(s) = pool.h2.take(pool.open_count()) {
        return Ok(s);
    }
    // Counted before connecting, as for HTTP/1: concurrent connects cannot pass the cap.
    let before = pool.open_count().fetch_add(1, Relaxed);
    let uncount = || pool.open_count().fetch_sub(1, Relaxed);
    if limits
        .max_connections
        .is_some_and(|max| before >= u64::from(max))
    {
        uncount();
        return Err(ConnectError::AtCapacity);
    }
    let opened = tokio::time::timeout(limits.connect_timeout, async {
        // No origin: a PROXY header cannot go on a shared connection (refused at load).
        let io = super::pool::open(address, dial, None, limits.connect_timeout, false).await?;
        if dial.auto {
            let h2 = io.chose_h2();
            pool.learned(h2);
            if !h2 {
                // Not wasted: the connection, with its count in `open`, joins the
                // backend's idle HTTP/1.1 connections for the request's next try.
                pool.sockets.put(io, None, Instant::now());
                return Err(ConnectError::Chose(false));
            }
        }
        handshake(io)
            .await
            .map_err(|e| ConnectError::Io(std::io::Error::other(e)))
    })
    .await;
    let (send, shared) = match opened {
        Ok(Ok(c)) => c,
        Ok(Err(e @ ConnectError::Chose(_))) => return Err(e),
        Ok(Err(e)) => {
            uncount();
            return Err(e);
        }
        Err(_) => {
            uncount();
            return Err(ConnectError::Timeout);
        }
    };
    let conn = Conn { send, shared };
    let stream = lend(&conn, true);
    lock(pool.h2.shard()).push(conn);
    Ok(stream)
}

/// Take `io`, a new connection of `pool`'s backend that chose `h2` by ALPN when it was
/// opened for an HTTP/1.1 request (`protocol = "auto"`), into this worker's set. It is
/// counted in `open` already; if HTTP/2 cannot start on it, it is closed and uncounted.
pub(crate) async fn adopt(pool: &super::ConnPool, io: super::Stream) {
    match handshake(io).await {
        Ok((send, shared)) => lock(pool.h2.shard()).push(Conn { send, shared }),
        Err(e) => {
            tracing::debug!(error = %e, "upstream HTTP/2 handshake failed");
            pool.open_count().fetch_sub(1, Relaxed);
        }
    }
}
