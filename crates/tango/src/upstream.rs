//! Upstream connections: a keep-alive pool per backend of bare sockets (or TLS sessions
//! over them), which the proxy speaks HTTP/1.1 over itself (`pool`), how a pool opens
//! a new one (`Dialer`: TLS, `tls.rs`; a PROXY header first), and the rate-limited log
//! of failed connects.
//!
//! The pool is tango's own: the proxy must know whether a request reached the wire
//! before deciding to retry it elsewhere, must count connections per backend for
//! `max_connections`, and keeps an idle connection as nothing but its socket.
//!
//! Failed connects are logged at most once per backend per second, with how many were
//! left out (`FailureLog`): a dead backend under load fails thousands of times a second.

pub(crate) mod h2pool;
mod pool;
mod stream;
pub(crate) mod tls;

pub(crate) use pool::{open, Limits, PoolRef, Upstream};
pub(crate) use stream::Stream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::Duration;
use tango_core::config::{Pool, ProxyVersion, UpstreamProtocol};

/// Where a client's requests come from, as a PROXY header tells a backend: the client's
/// address (after a PROXY header tango accepted) and the address it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) client: SocketAddr,
    pub(crate) local: SocketAddr,
}

/// How a pool opens a connection: TCP, then its PROXY header when it sends one, then
/// the TLS handshake when it speaks TLS. Built with each configuration (its TLS client
/// once, not per connection).
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    /// The pool's TLS client; `Err` (why) when its files, good when the configuration
    /// was checked, could not be read when it was built: every connect then fails.
    tls: Option<Result<tls::Client, String>>,
    proxy: Option<ProxyVersion>,
    /// `protocol = "auto"`: TLS offers `h2` and `http/1.1`, and each new connection
    /// tells its backend's [`ConnPool`] which one the backend chose.
    pub(crate) auto: bool,
}

impl Dialer {
    /// The dialer for `pool`'s settings (reading its TLS files).
    pub(crate) fn new(pool: &Pool) -> Dialer {
        let tls = pool.tls.as_ref().map(|t| {
            tls::Client::new(t, pool.protocol).map_err(|p| {
                tracing::error!(pool = %pool.name, error = %p, "upstream TLS settings unusable; connects will fail");
                p.to_string()
            })
        });
        Dialer {
            tls,
            proxy: pool.send_proxy_protocol,
            auto: pool.protocol == UpstreamProtocol::Auto,
        }
    }

    /// Its connections carry one client's address, so each serves only that client.
    pub(crate) fn private(&self) -> bool {
        self.proxy.is_some()
    }
}

/// A connection from `pool` (to `address`, opened as `dial` says) for a request from
/// `origin` at `now`: a live idle one, or a new one (`pool::checkout`). With
/// `protocol = "auto"` a new connection tells the backend's pool what the backend
/// chose by ALPN; one that chose `h2` joins its HTTP/2 connections instead, where the
/// request's next try finds it (`ConnectError::Chose`).
pub(crate) async fn checkout_socket<P: PoolRef>(
    pool: P,
    address: &str,
    limits: Limits,
    dial: &Dialer,
    origin: &Origin,
    now: tokio::time::Instant,
) -> Result<Upstream<P>, ConnectError> {
    let up = pool::checkout(pool, address, limits, dial, origin, now).await?;
    if !dial.auto || up.reused {
        return Ok(up);
    }
    let h2 = up.stream.chose_h2();
    let handle = up.handle().clone();
    handle.pool().learned(h2);
    if !h2 {
        return Ok(up);
    }
    Box::pin(h2pool::adopt(handle.pool(), up.into_counted())).await;
    Err(ConnectError::Chose(true))
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect timed out")]
    Timeout,
    #[error("connect failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection limit reached")]
    AtCapacity,
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("TLS not available: {0}")]
    TlsSettings(String),
    /// `protocol = "auto"`: the new connection's backend chose the other protocol by
    /// ALPN; the connection went to that protocol's connections, and the request is
    /// to be tried again (`ConnPool::speaks_h2` now says which way).
    #[error("the backend chose {} by ALPN", if *.0 { "h2" } else { "HTTP/1.1" })]
    Chose(bool),
}

/// What a backend of a `protocol = "auto"` pool chose by ALPN on its last new
/// connection.
const UNKNOWN: u8 = 0;
const CHOSE_H1: u8 = 1;
const CHOSE_H2: u8 = 2;

/// Idle connections of one backend, and how many are open in all.
pub(crate) struct ConnPool {
    /// Idle connections, as bare sockets.
    sockets: pool::Sockets,
    /// HTTP/2 connections (pools with `protocol = "h2"`).
    h2: h2pool::Conns,
    /// Open connections: idle, in use or connecting.
    open: AtomicU64,
    /// `protocol = "auto"`: what the backend chose by ALPN (`UNKNOWN`, `CHOSE_H1`,
    /// `CHOSE_H2`); until it is known, requests take the HTTP/1.1 path.
    chose: AtomicU8,
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

impl Default for ConnPool {
    fn default() -> Self {
        Self {
            sockets: pool::Sockets::default(),
            h2: h2pool::Conns::default(),
            open: AtomicU64::new(0),
            chose: AtomicU8::new(UNKNOWN),
            connect_failures: FailureLog::default(),
        }
    }
}

impl ConnPool {
    pub(crate) fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// `protocol = "auto"`: the backend chose HTTP/2 on its last new connection, so its
    /// requests take the HTTP/2 path.
    pub(crate) fn speaks_h2(&self) -> bool {
        self.chose.load(Relaxed) == CHOSE_H2
    }

    /// A new connection's backend chose `h2` (or not) by ALPN.
    fn learned(&self, h2: bool) {
        self.chose
            .store(if h2 { CHOSE_H2 } else { CHOSE_H1 }, Relaxed);
    }

    /// Forget what the backend chose (its pool's TLS or protocol settings changed).
    pub(crate) fn forget_choice(&self) {
        self.chose.store(UNKNOWN, Relaxed);
    }

    /// Connections open to the backend: idle, in use or connecting.
    fn open_count(&self) -> &AtomicU64 {
        &self.open
    }

    /// Close idle connections older than `max_idle`, or closed by the backend (called
    /// by a periodic sweep).
    pub(crate) fn sweep(&self, max_idle: Duration) {
        let closed = self.sockets.sweep(max_idle) + self.h2.sweep(max_idle);
        self.open.fetch_sub(closed, Relaxed);
    }
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
    use std::sync::Arc;

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
