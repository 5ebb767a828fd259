//! Upstream connections: an HTTP/1.1 keep-alive pool per backend.
//!
//! The pool is ours rather than hyper-util's legacy client because the proxy must know
//! whether a request was sent before deciding to retry it elsewhere: connecting happens
//! before the request is handed over, and `try_send_request` gives back a request that
//! never reached the wire (a pooled connection the backend had just closed).

use crate::proxy::body::UpBody;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

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
    idle: Mutex<Vec<Idle>>,
    open: Arc<AtomicU64>,
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
    pool: Arc<crate::runtime::BackendState>,
    pub(crate) reused: bool,
}

impl Pooled {
    pub(crate) fn release(self) {
        // Right after a response ends the connection may not be ready yet (its task
        // has not seen the end); `checkout` waits for readiness, so only a closed
        // connection is dropped here.
        if !self.tx.is_closed() {
            let mut idle = self
                .pool
                .conns
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner());
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
            idle: Mutex::new(Vec::new()),
            open: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl ConnPool {
    pub(crate) fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// Drop idle connections older than `max_idle` (called by a periodic sweep).
    pub(crate) fn sweep(&self, max_idle: Duration) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| c.since.elapsed() < max_idle && !c.tx.is_closed());
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

/// Get a ready connection to `backend`: an idle one, or a new one.
pub(crate) async fn checkout(
    backend: &Arc<crate::runtime::BackendState>,
    connect_timeout: Duration,
    max_idle: Duration,
    max_connections: Option<u32>,
) -> Result<Pooled, ConnectError> {
    while let Some(mut tx) = backend.conns.take_idle(max_idle) {
        // Ready at once in the common case; a connection that the backend closed
        // reports an error here and the next one is tried.
        if tx.ready().await.is_ok() {
            return Ok(Pooled {
                tx,
                pool: backend.clone(),
                reused: true,
            });
        }
    }
    if let Some(max) = max_connections {
        if backend.conns.open() >= u64::from(max) {
            return Err(ConnectError::AtCapacity);
        }
    }
    let tx = connect(&backend.address, connect_timeout, &backend.conns.open).await?;
    Ok(Pooled {
        tx,
        pool: backend.clone(),
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
