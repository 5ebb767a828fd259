//! Upstream connections: an HTTP/1.1 keep-alive pool per backend, and the body of a
//! request sent upstream.
//!
//! The pool is ours rather than hyper-util's legacy client because the proxy must know
//! whether a request was sent before deciding to retry it elsewhere: connecting happens
//! before the request is handed over, and `try_send_request` gives back a request that
//! never reached the wire (a pooled connection the backend had just closed).
//!
//! Failed connects are logged at most once per backend per second, with how many were
//! left out (`FailureLog`): a dead backend under load fails thousands of times a second.

mod pool;

pub(crate) use pool::{checkout as checkout_socket, Limits, PoolRef, Upstream};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The body of a request sent upstream: the client's, or none.
pub(crate) type UpBody = http_body_util::Either<ClientBody, http_body_util::Empty<Bytes>>;

/// A client's request body on its way upstream; with the access log on, it counts the
/// bytes read.
pub(crate) struct ClientBody {
    body: Incoming,
    read: Option<Arc<AtomicU64>>,
}

impl ClientBody {
    pub(crate) fn new(body: Incoming, read: Option<Arc<AtomicU64>>) -> Self {
        ClientBody { body, read }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.body).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(f))), Some(read)) = (&r, &this.read) {
            if let Some(d) = f.data_ref() {
                read.fetch_add(d.len() as u64, Relaxed);
            }
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

/// An upstream request body with nothing in it.
pub(crate) fn no_body() -> UpBody {
    http_body_util::Either::Right(http_body_util::Empty::new())
}

pub(crate) type Sender = http1::SendRequest<UpBody>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect timed out")]
    Timeout,
    #[error("connect failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake failed: {0}")]
    Handshake(#[from] hyper::Error),
    #[error("connection limit reached")]
    AtCapacity,
}

struct Idle {
    tx: Sender,
    since: Instant,
}

/// Idle connections of one backend, and how many are open in all.
pub(crate) struct ConnPool {
    /// Shared with the connections checked out, which come back here.
    idle: Arc<Mutex<Vec<Idle>>>,
    /// Idle connections as bare sockets (the HTTP/1.1 engine's).
    sockets: pool::Sockets,
    open: Arc<AtomicU64>,
    /// Rate limit for logging failed connects to this backend.
    pub(crate) connect_failures: FailureLog,
}

impl std::fmt::Debug for ConnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnPool")
            .field("open", &self.open.load(Relaxed))
            .finish()
    }
}

/// A connection checked out of a pool; `release` puts it back.
pub(crate) struct Pooled {
    pub(crate) tx: Sender,
    idle: Arc<Mutex<Vec<Idle>>>,
    pub(crate) reused: bool,
}

impl Pooled {
    pub(crate) fn release(self) {
        // Right after a response ends the connection may not be ready yet (its task
        // has not seen the end); `checkout` waits for readiness, so only a closed
        // connection is dropped here.
        if !self.tx.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.push(Idle {
                tx: self.tx,
                since: Instant::now(),
            });
        }
    }
}

impl Default for ConnPool {
    fn default() -> Self {
        Self {
            idle: Arc::new(Mutex::new(Vec::new())),
            sockets: pool::Sockets::default(),
            open: Arc::new(AtomicU64::new(0)),
            connect_failures: FailureLog::default(),
        }
    }
}

impl ConnPool {
    pub(crate) fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// Connections open to the backend: idle, in use or connecting.
    fn open_count(&self) -> &AtomicU64 {
        &self.open
    }

    /// Drop idle connections older than `max_idle` (called by a periodic sweep).
    pub(crate) fn sweep(&self, max_idle: Duration) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| c.since.elapsed() < max_idle && !c.tx.is_closed());
        drop(idle);
        let closed = self.sockets.sweep(max_idle);
        self.open.fetch_sub(closed, Relaxed);
    }

    fn take_idle(&self, max_idle: Duration) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(c) = idle.pop() {
            if !c.tx.is_closed() && c.since.elapsed() < max_idle {
                return Some(c.tx);
            }
        }
        None
    }
}

/// Get a ready connection from `pool` to `address`: an idle one, or a new one.
pub(crate) async fn checkout(
    pool: &ConnPool,
    address: &str,
    connect_timeout: Duration,
    max_idle: Duration,
    max_connections: Option<u32>,
) -> Result<Pooled, ConnectError> {
    while let Some(mut tx) = pool.take_idle(max_idle) {
        // Ready at once in the common case; a connection that the backend closed
        // reports an error here and the next one is tried.
        if tx.ready().await.is_ok() {
            return Ok(Pooled {
                tx,
                idle: pool.idle.clone(),
                reused: true,
            });
        }
    }
    if let Some(max) = max_connections {
        if pool.open() >= u64::from(max) {
            return Err(ConnectError::AtCapacity);
        }
    }
    let tx = connect(address, connect_timeout, &pool.open).await?;
    Ok(Pooled {
        tx,
        idle: pool.idle.clone(),
        reused: false,
    })
}

async fn connect(
    addr: &str,
    timeout: Duration,
    open: &Arc<AtomicU64>,
) -> Result<Sender, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout)??;
    let _ = stream.set_nodelay(true);
    let (tx, conn) = http1::Builder::new()
        // One buffer per message: a plain write is cheaper than writev for small heads.
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await?;
    open.fetch_add(1, Relaxed);
    let open = open.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
        open.fetch_sub(1, Relaxed);
    });
    Ok(tx)
}

/// The shortest time between two log lines about one backend's failed connects.
const LOG_EVERY_MS: u64 = 1000;
const NEVER: u64 = u64::MAX;

/// Logs a kind of failure at most once per `LOG_EVERY_MS`, counting the ones left out.
/// Lock-free: a failure that is not logged costs a load, a compare and an increment.
#[derive(Debug)]
pub(crate) struct FailureLog {
    /// When the last line was logged (`Runtime::now_ms`), or `NEVER`.
    last_ms: AtomicU64,
    /// Failures since then that were not logged.
    suppressed: AtomicU64,
}

impl Default for FailureLog {
    fn default() -> Self {
        Self {
            last_ms: AtomicU64::new(NEVER),
            suppressed: AtomicU64::new(0),
        }
    }
}

/// A log line is due: `suppressed` failures were left out over the last `over_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) suppressed: u64,
    pub(crate) over_ms: u64,
}

impl FailureLog {
    /// Count a failure at `now_ms`; `Some` when this one is to be logged.
    pub(crate) fn failure(&self, now_ms: u64) -> Option<Due> {
        let due = self.claim(now_ms);
        if due.is_none() {
            self.suppressed.fetch_add(1, Relaxed);
        }
        due
    }

    /// Failures left out and not yet reported, once a line is allowed again: for the
    /// periodic upkeep, so a burst's count is reported even if nothing fails after it.
    pub(crate) fn flush(&self, now_ms: u64) -> Option<Due> {
        if self.suppressed.load(Relaxed) == 0 {
            return None;
        }
        self.claim(now_ms).filter(|d| d.suppressed > 0)
    }

    /// Take the right to log at `now_ms`, if the last line is old enough.
    fn claim(&self, now_ms: u64) -> Option<Due> {
        let last = self.last_ms.load(Relaxed);
        if last != NEVER && now_ms.saturating_sub(last) < LOG_EVERY_MS {
            return None;
        }
        // Of the callers racing here, one logs.
        self.last_ms
            .compare_exchange(last, now_ms, Relaxed, Relaxed)
            .ok()?;
        Some(Due {
            suppressed: self.suppressed.swap(0, Relaxed),
            over_ms: if last == NEVER { 0 } else { now_ms - last },
        })
    }
}

/// Log a failed connect to the backend whose connections are `conns` (pool `pool`,
/// named `name`), rate-limited.
pub(crate) fn connect_failed(
    conns: &ConnPool,
    pool: &str,
    name: &str,
    error: &ConnectError,
    now_ms: u64,
) {
    let Some(due) = conns.connect_failures.failure(now_ms) else {
        return;
    };
    if due.suppressed == 0 {
        tracing::warn!(pool, backend = name, error = %error, suppressed = 0, "upstream connect failed");
    } else {
        tracing::warn!(
            pool,
            backend = name,
            error = %error,
            suppressed = due.suppressed,
            "upstream connect failed; {} more in the last {:.1}s",
            due.suppressed,
            due.over_ms as f64 / 1000.0
        );
    }
}

/// Report connect failures left out of the log and not reported since (upkeep).
pub(crate) fn flush_connect_failures(conns: &ConnPool, pool: &str, name: &str, now_ms: u64) {
    if let Some(due) = conns.connect_failures.flush(now_ms) {
        tracing::warn!(
            pool,
            backend = name,
            suppressed = due.suppressed,
            "upstream connect failed {} more times in the last {:.1}s",
            due.suppressed,
            due.over_ms as f64 / 1000.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_second_with_the_count_left_out() {
        let log = FailureLog::default();
        // The first failure is logged at once, even at time 0.
        assert_eq!(
            log.failure(0),
            Some(Due {
                suppressed: 0,
                over_ms: 0
            })
        );
        for t in 1..1000 {
            assert_eq!(log.failure(t), None);
        }
        assert_eq!(log.flush(999), None, "not yet a second");
        assert_eq!(
            log.failure(1000),
            Some(Due {
                suppressed: 999,
                over_ms: 1000
            })
        );
        assert_eq!(log.flush(5000), None, "nothing left out since");
        log.failure(1500);
        log.failure(1600);
        assert_eq!(log.flush(1700), None);
        assert_eq!(
            log.flush(2100),
            Some(Due {
                suppressed: 2,
                over_ms: 1100
            })
        );
        // A flush line counts as a line: the next failure within a second is left out.
        assert_eq!(log.failure(2200), None);
        assert_eq!(
            log.failure(3100),
            Some(Due {
                suppressed: 1,
                over_ms: 1000
            })
        );
    }

    #[test]
    fn racing_failures_log_once_and_lose_no_count() {
        let log = Arc::new(FailureLog::default());
        log.failure(0);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let dues: Vec<Due> = (0..10_000).filter_map(|_| log.failure(1500)).collect();
                    dues
                })
            })
            .collect();
        let dues: Vec<Due> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(dues.len(), 1, "one line for the second");
        let flushed = log.flush(2500).map_or(0, |d| d.suppressed);
        assert_eq!(
            dues[0].suppressed + flushed,
            39_999,
            "every failure counted once"
        );
    }
}
