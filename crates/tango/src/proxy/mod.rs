//! The data plane: listeners, connections and the per-request service.
//!
//! Each listener runs an accept loop. A connection is served by hyper-util's auto
//! builder (HTTP/1.1, and HTTP/2 by prior knowledge or by ALPN over TLS), watched for
//! idleness and for shutdown. Listener settings are read from the current snapshot at
//! accept time, so a reload changes them for new connections without rebinding.
//! Connection hygiene (first-byte and send timeouts, closing idle connections at the
//! connection limit) lives in `conn_io` and `idle`.

pub(crate) mod access;
pub(crate) mod accounting;
pub(crate) mod body;
mod conn_io;
pub(crate) mod error;
mod framing;
pub(crate) mod headers;
mod idle;
pub(crate) mod keys;
pub(crate) mod service;
mod tls;

use crate::runtime::Runtime;
use anyhow::Context as _;
use conn_io::ConnIo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use idle::{Conns, Slot, Tracked};
use service::ConnCtx;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::{Config, Listener};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Signals every connection to finish its current requests and close.
#[derive(Clone)]
pub(crate) struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    /// Connections still open, across all listeners.
    pub(crate) open: Arc<AtomicUsize>,
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

    pub(crate) fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    pub(crate) fn subscribe_public(&self) -> watch::Receiver<bool> {
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

struct Running {
    /// The address actually bound (differs from the configured one for port 0).
    local: SocketAddr,
    stop: watch::Sender<bool>,
}

/// The set of bound listeners, reconciled with each configuration.
pub(crate) struct Listeners {
    rt: Arc<Runtime>,
    shutdown: Shutdown,
    running: HashMap<SocketAddr, Running>,
    access_log: Option<Arc<access::AccessLog>>,
    /// The open-file limit after raising it (`None`: unknown).
    fd_limit: Option<u64>,
}

/// A listener bound ahead of a reload, so a bind failure can reject the reload.
pub(crate) struct Bound {
    listener: Listener,
    socket: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listeners {
    pub(crate) fn new(
        rt: Arc<Runtime>,
        shutdown: Shutdown,
        access_log: Option<Arc<access::AccessLog>>,
    ) -> Self {
        Self {
            rt,
            shutdown,
            running: HashMap::new(),
            access_log,
            fd_limit: raise_fd_limit(),
        }
    }

    /// Bind the listeners `config` adds. Nothing starts yet. A listener whose address
    /// is already bound keeps its socket (and its TLS certificate until a restart).
    pub(crate) async fn prepare(&self, config: &Config) -> anyhow::Result<Vec<Bound>> {
        let mut out = Vec::new();
        for l in &config.listeners {
            if self.running.contains_key(&l.listen) {
                continue;
            }
            let tls = match &l.tls {
                Some(t) => Some(tls::acceptor(&t.cert, &t.key)?),
                None => None,
            };
            let socket = bind(l.listen)
                .await
                .with_context(|| format!("binding listener `{}` on {}", l.name, l.listen))?;
            out.push(Bound {
                listener: l.clone(),
                socket,
                tls,
            });
        }
        Ok(out)
    }

    /// Start what was bound and stop listeners no longer in `config`.
    pub(crate) fn commit(&mut self, config: &Config, bound: Vec<Bound>) {
        for b in bound {
            let (stop, stop_rx) = watch::channel(false);
            let addr = b.listener.listen;
            let local = b.socket.local_addr().unwrap_or(addr);
            tracing::info!(listener = %b.listener.name, address = %local, tls = b.tls.is_some(), "listening");
            if let Some(limit) = self
                .fd_limit
                .filter(|l| b.listener.max_connections as u64 >= *l)
            {
                tracing::warn!(listener = %b.listener.name, max_connections = b.listener.max_connections, open_file_limit = limit,
                    "max_connections is above the open-file limit: accepts will fail before it is reached");
            }
            self.running.insert(addr, Running { local, stop });
            let ctx = AcceptCtx {
                rt: self.rt.clone(),
                shutdown: self.shutdown.clone(),
                name: Arc::from(b.listener.name.as_str()),
                tls: b.tls,
                conns: Conns::default(),
                access_log: self.access_log.clone(),
            };
            tokio::spawn(accept_loop(ctx, b.socket, stop_rx));
        }
        let keep: Vec<SocketAddr> = config.listeners.iter().map(|l| l.listen).collect();
        self.running.retain(|addr, r| {
            let k = keep.contains(addr);
            if !k {
                tracing::info!(address = %addr, "listener removed; open connections drain");
                let _ = r.stop.send(true);
            }
            k
        });
    }

    /// (listener name, bound address) of every running listener.
    pub(crate) fn addresses(&self, config: &Config) -> Vec<(String, SocketAddr)> {
        config
            .listeners
            .iter()
            .filter_map(|l| {
                self.running
                    .get(&l.listen)
                    .map(|r| (l.name.clone(), r.local))
            })
            .collect()
    }
}

/// Raise the soft open-file limit to the hard one, as servers commonly do: every client
/// and upstream connection is a descriptor, and the usual soft default (1024) is far below
/// `max_connections`. Returns the limit in force.
fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::debug!(limit = n, "open-file limit");
            Some(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            None
        }
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

struct AcceptCtx {
    rt: Arc<Runtime>,
    shutdown: Shutdown,
    name: Arc<str>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Open connections, and the idle ones that may be closed for a newcomer.
    conns: Conns,
    access_log: Option<Arc<access::AccessLog>>,
}

async fn accept_loop(ctx: AcceptCtx, socket: TcpListener, mut stop: watch::Receiver<bool>) {
    let ctx = Arc::new(ctx);
    let mut shutdown = ctx.shutdown.subscribe();
    loop {
        let (stream, peer) = tokio::select! {
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %ctx.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        };
        let snap = ctx.rt.current();
        let Some(lcfg) = snap
            .config
            .listeners
            .iter()
            .find(|l| *l.name == *ctx.name)
            .cloned()
        else {
            break;
        };
        drop(snap);
        // At the cap, the connection idle longest is closed to make room; only when none
        // is idle is the newcomer refused.
        let Some(slot) = ctx.conns.admit(lcfg.max_connections) else {
            tokio::spawn(refuse(stream, ctx.tls.is_some()));
            continue;
        };
        let _ = stream.set_nodelay(true);
        ctx.shutdown.open.fetch_add(1, Relaxed);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let switch = Arc::new(framing::SwitchVerdict::default());
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
            ctx.conns.close(&slot);
            ctx.shutdown.open.fetch_sub(1, Relaxed);
            ctx.shutdown.closed.notify_waiters();
        });
    }
    tracing::debug!(listener = %ctx.name, "accept loop stopped");
}

/// Over the connection limit: answer at once and close, never leave the client hanging.
async fn refuse(mut stream: TcpStream, tls: bool) {
    if !tls {
        let _ = stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n")
            .await;
    }
    let _ = stream.shutdown().await;
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
