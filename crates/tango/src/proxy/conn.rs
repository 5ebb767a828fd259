//! One client connection: its PROXY header read first on a listener that takes one
//! (`proxy_protocol`), then served by hyper-util's auto builder (HTTP/1.1, and HTTP/2 by
//! prior knowledge or by ALPN over TLS) behind the socket wrapper (`conn_io`) and the
//! framing guard (`framing`), and watched for idleness, for eviction to make room
//! (`idle`) and for shutdown (`Shutdown`, which every connection hears).

use super::access::AccessLog;
use super::conn_io::ConnIo;
use super::framing::{self, SwitchVerdict};
use super::headers;
use super::idle::{Conns, Slot, Tracked};
use super::service::{self, ConnCtx};
use crate::runtime::Runtime;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::Listener;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Signals every connection to finish its current requests and close.
#[derive(Clone)]
pub(crate) struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    /// Connections still open, across all listeners.
    open: Arc<AtomicUsize>,
    /// Woken each time a connection closes, so a drain can recount.
    closed: Arc<tokio::sync::Notify>,
}

impl Shutdown {
    pub(crate) fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
            open: Arc::new(AtomicUsize::new(0)),
            closed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// A connection was admitted.
    pub(super) fn connection_opened(&self) {
        self.open.fetch_add(1, Relaxed);
    }

    /// A connection has closed.
    fn connection_closed(&self) {
        self.open.fetch_sub(1, Relaxed);
        self.closed.notify_waiters();
    }

    pub(crate) fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Tells `true` once shutdown has begun.
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
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

/// What the connections of one listener share.
pub(super) struct Shared {
    pub(super) rt: Arc<Runtime>,
    pub(super) shutdown: Shutdown,
    pub(super) name: Arc<str>,
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    /// Open connections, and the idle ones that may be closed for a newcomer.
    pub(super) conns: Conns,
    pub(super) access_log: Option<Arc<AccessLog>>,
}

/// One client connection, admitted into `slot`, from its first byte (or TLS handshake)
/// until it closes.
pub(super) async fn connection(
    ctx: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    lcfg: Listener,
    slot: Arc<Slot>,
) {
    // Behind a trusted proxy, the client is who its PROXY header says.
    let Some(peer) = super::proxy_protocol::client(&mut stream, peer, &lcfg, &slot).await else {
        return ctx.closed(&slot);
    };
    let switch = Arc::new(SwitchVerdict::default());
    let conn = ConnCtx {
        rt: ctx.rt.clone(),
        listener: ctx.name.clone(),
        peer,
        peer_value: headers::peer_value(peer.ip()),
        tls: ctx.tls.is_some(),
        trusted_proxies: lcfg.trusted_proxies.clone(),
        request_timeout: lcfg.request_timeout,
        access_log: ctx.access_log.clone(),
        switch: switch.clone(),
    };
    // The socket keeps the first-byte and send timeouts, under TLS and the guard.
    let io = ConnIo::new(
        stream,
        Some(lcfg.first_byte_timeout),
        Some((lcfg.send_timeout, slot.clone())),
    );
    let w = Watch {
        slot: &slot,
        conns: &ctx.conns,
        shutdown: &ctx.shutdown,
    };
    match &ctx.tls {
        None => {
            let io = framing::guard(io, &lcfg, switch);
            serve(io, conn, &lcfg, &w, false).await
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(lcfg.header_timeout, acceptor.accept(io));
            tokio::select! {
                r = handshake => match r {
                    Ok(Ok(tls)) => {
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        // The handshake was the socket's first byte; the first
                        // request gets a first-byte timeout of its own.
                        let tls = ConnIo::new(tls, Some(lcfg.first_byte_timeout), None);
                        let io = framing::guard(tls, &lcfg, switch);
                        serve(io, conn, &lcfg, &w, h2).await
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
                _ = slot.evicted() => tracing::debug!("closed in the TLS handshake to make room"),
            }
        }
    }
    ctx.closed(&slot);
}

impl Shared {
    /// A connection admitted into `slot` has closed.
    fn closed(&self, slot: &Arc<Slot>) {
        self.conns.close(slot);
        self.shutdown.connection_closed();
    }
}

/// What a connection's watch loop reports to and hears from.
struct Watch<'a> {
    slot: &'a Arc<Slot>,
    conns: &'a Conns,
    shutdown: &'a Shutdown,
}

/// How long a graceful close of a connection with nothing in progress may take before
/// the connection is dropped: HTTP/2 confirms its GOAWAY with a PING round trip, which a
/// client may never answer.
const LINGER: Duration = Duration::from_secs(2);

async fn serve<I>(io: I, conn: ConnCtx, l: &Listener, w: &Watch<'_>, h2_only: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ctx = Arc::new(conn);
    let slot = w.slot.clone();
    let svc = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        // Counted until the response body has gone to hyper whole, not just its head.
        let guard = slot.start();
        async move {
            let r = service::handle(ctx, req).await;
            r.map(|resp| resp.map(|body| Tracked::new(body, guard)))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The framing guard times request heads (from their first byte); hyper's own
        // timer would also close keep-alive connections idle for that long.
        .header_read_timeout(None)
        .max_buf_size(l.max_header_bytes.max(8192))
        .keep_alive(true)
        .writev(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(l.max_header_bytes as u32);
    let builder = if h2_only {
        builder.http2_only()
    } else {
        builder
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    drive(pin!(conn), |c| c.graceful_shutdown(), l, w).await;
}

/// Drive a connection, closing it when idle for `idle_timeout`, when chosen to make room
/// for a newcomer, or (gracefully) on shutdown.
async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    graceful: impl Fn(Pin<&mut C>),
    l: &Listener,
    w: &Watch<'_>,
) where
    C: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut stop = w.shutdown.subscribe();
    let mut evicted = pin!(w.slot.evicted());
    let mut evicted_seen = false;
    let idle = l.idle_timeout;
    let period = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut seen_done, mut quiet, mut lingered) = (0u64, Duration::ZERO, Duration::ZERO);
    let mut closing = *stop.borrow();
    if closing {
        graceful(conn.as_mut());
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
                break;
            }
            _ = stop.changed(), if !closing => {
                if *stop.borrow() {
                    closing = true;
                    graceful(conn.as_mut());
                }
            }
            _ = &mut evicted, if !evicted_seen => {
                evicted_seen = true;
                if !w.slot.busy() {
                    tracing::debug!("idle connection closed to make room for a new one");
                    break;
                }
                // A request began just as the connection was chosen (or a response is still
                // being delivered): finish it, then close.
                closing = true;
                graceful(conn.as_mut());
            }
            _ = tick.tick() => {
                let (busy, done) = (w.slot.busy(), w.slot.done());
                if closing {
                    lingered = if busy { Duration::ZERO } else { lingered + period };
                    if lingered >= LINGER {
                        break;
                    }
                    continue;
                }
                if !busy && done == seen_done {
                    quiet += period;
                } else {
                    quiet = Duration::ZERO;
                    seen_done = done;
                }
                // Active since it was last queued: to the back of the idle queue.
                if done != w.slot.queued() {
                    w.conns.requeue(w.slot, done);
                }
                if quiet >= idle {
                    closing = true;
                    graceful(conn.as_mut());
                }
            }
        }
    }
}
