//! The data plane: listeners, connections and the per-request service.
//!
//! Each listener runs an accept loop. A connection is served by hyper-util's auto
//! builder (HTTP/1.1, and HTTP/2 by prior knowledge or by ALPN over TLS), watched for
//! idleness and for shutdown. Listener settings are read from the current snapshot at
//! accept time, so a reload changes them for new connections without rebinding.

pub(crate) mod body;
pub(crate) mod error;
mod framing;
pub(crate) mod headers;
pub(crate) mod service;

use crate::runtime::Runtime;
use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use service::ConnCtx;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
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
    access_log: bool,
}

/// A listener bound ahead of a reload, so a bind failure can reject the reload.
pub(crate) struct Bound {
    listener: Listener,
    socket: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listeners {
    pub(crate) fn new(rt: Arc<Runtime>, shutdown: Shutdown, access_log: bool) -> Self {
        Self {
            rt,
            shutdown,
            running: HashMap::new(),
            access_log,
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
                Some(t) => Some(crate::tls::acceptor(&t.cert, &t.key)?),
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
            self.running.insert(addr, Running { local, stop });
            let ctx = AcceptCtx {
                rt: self.rt.clone(),
                shutdown: self.shutdown.clone(),
                name: b.listener.name.clone(),
                tls: b.tls,
                active: Arc::new(AtomicUsize::new(0)),
                access_log: self.access_log,
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
    name: String,
    tls: Option<tokio_rustls::TlsAcceptor>,
    active: Arc<AtomicUsize>,
    access_log: bool,
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
            .find(|l| l.name == ctx.name)
            .cloned()
        else {
            break;
        };
        drop(snap);
        if ctx.active.load(Relaxed) >= lcfg.max_connections {
            tokio::spawn(refuse(stream, ctx.tls.is_some()));
            continue;
        }
        let _ = stream.set_nodelay(true);
        ctx.active.fetch_add(1, Relaxed);
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
                access_log: ctx.access_log,
                switch: switch.clone(),
            };
            match &ctx.tls {
                None => {
                    let io = framing::guard(stream, &lcfg, switch);
                    serve(io, conn, &lcfg, &ctx.shutdown, false).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(lcfg.header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                            let io = framing::guard(tls, &lcfg, switch);
                            serve(io, conn, &lcfg, &ctx.shutdown, h2).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            ctx.active.fetch_sub(1, Relaxed);
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

/// Tracks whether a connection has requests in progress and when it last had one.
pub(crate) struct Activity {
    pub(crate) active: AtomicUsize,
    /// Requests finished; the idle check compares it between ticks, so the hot path
    /// never reads the clock for it.
    pub(crate) done: AtomicU64,
}

async fn serve<I>(io: I, conn: ConnCtx, l: &Listener, shutdown: &Shutdown, h2_only: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        active: AtomicUsize::new(0),
        done: AtomicU64::new(0),
    });
    let ctx = Arc::new(conn);
    let act = activity.clone();
    let svc = hyper::service::service_fn(move |req| {
        let ctx = ctx.clone();
        let act = act.clone();
        async move {
            act.active.fetch_add(1, Relaxed);
            let r = service::handle(ctx.clone(), req).await;
            act.active.fetch_sub(1, Relaxed);
            act.done.fetch_add(1, Relaxed);
            r
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
    let mut conn = pin!(conn);
    let mut stop = shutdown.subscribe();
    let idle = l.idle_timeout;
    let period = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut seen_done, mut quiet) = (0u64, Duration::ZERO);
    let mut closing = *stop.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
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
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tick.tick(), if !closing => {
                let done = activity.done.load(Relaxed);
                if activity.active.load(Relaxed) == 0 && done == seen_done {
                    quiet += period;
                } else {
                    quiet = Duration::ZERO;
                    seen_done = done;
                }
                if quiet >= idle {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
