//! One client connection: its PROXY header read first on a listener that takes one
//! (`proxy_protocol`); then a plain one is served by the HTTP/1.1 engine (`h1`, which
//! hands h2c by prior knowledge back here), a TLS one by hyper-util's auto builder
//! (HTTP/1.1, and HTTP/2 by ALPN) behind the socket wrapper (`conn_io`) and the framing
//! guard (`framing`); hyper's connections are watched for idleness, for eviction to make
//! room (`idle`) and for shutdown (`Shutdown`, which every connection hears), and one
//! hyper handed over to a tunnel is kept until the tunnel ends.

pub(crate) use super::shutdown::Shutdown;

use super::access::AccessLog;
use super::bufpool::Buf;
use super::conn_io::{ConnIo, Prefixed};
use super::framing::{self, SwitchVerdict};
use super::headers;
use super::idle::{Conns, Slot, Stall, Tracked, Tunnel};
use super::linger::{linger, Bounds, Returned};
use super::service::{self, ConnCtx};
use super::spread::Placed;
use crate::runtime::Runtime;
use crate::upstream::Origin;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::Listener;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// What the connections of one listener share.
pub(super) struct Shared {
    pub(super) rt: Arc<Runtime>,
    pub(super) shutdown: Shutdown,
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    /// Open connections, and the idle ones that may be closed for a newcomer.
    pub(super) conns: Conns,
    pub(super) access_log: Option<Arc<AccessLog>>,
    /// Open connections per worker, to keep the workers even.
    pub(super) spread: Arc<super::spread::Spread>,
    /// Each worker's runtime, by worker index: where a connection handed over runs.
    pub(super) workers: Vec<tokio::runtime::Handle>,
}

/// A connection's place among its listener's open connections and in the count the
/// drain waits on, given back when this is dropped: on every way the connection's task
/// ends, a panic included (tokio drops the future of a task that panicked), so neither
/// `max_connections` nor the drain waits on a connection that is gone.
pub(super) struct Admitted {
    pub(super) ctx: Arc<Shared>,
    pub(super) slot: Arc<Slot>,
}

impl Admitted {
    /// Count the connection admitted into `slot` as open until this is dropped.
    pub(super) fn new(ctx: Arc<Shared>, slot: Arc<Slot>) -> Self {
        ctx.shutdown.connection_opened();
        Admitted { ctx, slot }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.ctx.conns.close(&self.slot);
        self.ctx.shutdown.connection_closed();
    }
}

/// A connection just accepted, with what serving it takes.
pub(super) struct Accepted {
    /// Its listener's shared state and its place among the open connections.
    pub(super) open: Admitted,
    pub(super) stream: TcpStream,
    /// The client's address (until a PROXY header says otherwise) and the one it reached.
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    pub(super) lcfg: Arc<Listener>,
    /// Its count on the worker serving it, given back when the connection ends.
    pub(super) placed: Placed,
}

/// One client connection, from its first byte (or TLS handshake) until it closes.
///
/// Not an `async fn`: one keeps its arguments and a copy of each for as long as it
/// runs, and this future is most of an idle connection's memory. The block below uses
/// the parts of `a` where they lie.
#[allow(clippy::manual_async_fn)] // deliberately not an `async fn`, see above
pub(super) fn connection(mut a: Accepted) -> impl std::future::Future<Output = ()> + Send {
    async move {
        // Behind a trusted proxy, the client is who its PROXY header says. Boxed, and
        // only there: its read buffer would otherwise sit in every connection's task.
        if a.lcfg.proxy_protocol.is_some() {
            let client =
                super::proxy_protocol::client(&mut a.stream, a.peer, &a.lcfg, &a.open.slot);
            match Box::pin(client).await {
                Some(p) => a.peer = p,
                None => return,
            }
        }
        // Only a connection hyper reads through the framing guard needs the verdict.
        let switch = a
            .open
            .ctx
            .tls
            .as_ref()
            .map(|_| Arc::new(SwitchVerdict::default()));
        let conn = Arc::new(ConnCtx {
            rt: a.open.ctx.rt.clone(),
            peer: a.peer,
            origin: Origin {
                client: a.peer,
                local: a.local,
            },
            peer_value: headers::peer_value(a.peer.ip()),
            tls: a.open.ctx.tls.is_some(),
            settings: a.lcfg.clone(),
            access_log: a.open.ctx.access_log.clone(),
            switch: switch.clone(),
        });
        let w = Watch {
            slot: &a.open.slot,
            conns: &a.open.ctx.conns,
            shutdown: &a.open.ctx.shutdown,
        };
        if let (Some(acceptor), Some(switch)) = (a.open.ctx.tls.as_ref(), switch) {
            // Boxed: the TLS and hyper state would otherwise make every plain
            // connection's task as large.
            Box::pin(serve_tls(a.stream, acceptor, conn, &a.lcfg, &w, switch)).await;
        } else {
            // The HTTP/1.1 engine, unless the connection opens with the HTTP/2
            // preface; then hyper's HTTP/2 server takes it, with the bytes read. The
            // hand-over is boxed as it is made, so the engine's answer is not kept in
            // this future beside the engine's own.
            let engine = super::h1::serve(a.stream, &conn, &a.lcfg, w.slot, w.conns, w.shutdown);
            let h2c = engine
                .await
                .map(|(s, read)| Box::pin(serve_h2c(s, read, conn, &a.lcfg, &w)));
            if let Some(h2c) = h2c {
                h2c.await;
            }
        }
        drop(a.open);
        drop(a.placed);
    }
}

async fn serve_h2c(s: TcpStream, read: Buf, conn: Arc<ConnCtx>, l: &Listener, w: &Watch<'_>) {
    // The socket keeps the send timeout, as every connection hyper serves.
    let io = ConnIo::new(s, None, Some((l.send_timeout, w.slot.clone())));
    serve(Prefixed::new(read, io), conn, l, w, true).await;
}

/// A TLS connection: the handshake (bounded by the header timeout, and given up when
/// the connection is chosen to make room), then hyper's server behind the framing guard.
async fn serve_tls(
    stream: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    conn: Arc<ConnCtx>,
    lcfg: &Listener,
    w: &Watch<'_>,
    switch: Arc<SwitchVerdict>,
) {
    // The socket keeps the first-byte and send timeouts, under TLS and the guard.
    let io = ConnIo::new(
        stream,
        Some(lcfg.first_byte_timeout),
        Some((lcfg.send_timeout, w.slot.clone())),
    );
    let handshake = tokio::time::timeout(lcfg.header_timeout, acceptor.accept(io));
    tokio::select! {
        r = handshake => match r {
            Ok(Ok(tls)) => {
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                // The handshake was the socket's first byte; the first request gets a
                // first-byte timeout of its own.
                let tls = ConnIo::new(tls, Some(lcfg.first_byte_timeout), None);
                let io = framing::guard(tls, lcfg, switch);
                serve(io, conn, lcfg, w, h2).await
            }
            Ok(Err(e)) => {
                // rustls's verdicts (what the client sent was not TLS, no protocol or
                // cipher in common, its alert on our certificate) come as InvalidData;
                // a client that closes, before a byte or mid-way, comes as
                // UnexpectedEof, and a silent one times out: neither is counted, so
                // port scans and TCP health checks do not bury real failures.
                if e.kind() == std::io::ErrorKind::InvalidData {
                    conn.rt.tls_failures.count(&lcfg.name);
                }
                tracing::debug!(error = %e, "TLS handshake failed")
            }
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
        _ = w.slot.evicted() => tracing::debug!("closed in the TLS handshake to make room"),
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

/// HTTP/2: the bytes of a response stream hyper holds that the client has not yet taken.
const SEND_BUF_PER_STREAM: usize = 64 * 1024;

async fn serve<I>(io: I, ctx: Arc<ConnCtx>, l: &Listener, w: &Watch<'_>, h2_only: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slot = w.slot.clone();
    let shutdown = w.shutdown.clone();
    let svc = hyper::service::service_fn(move |mut req: http::Request<_>| {
        let ctx = ctx.clone();
        // Counted until the response body has gone to hyper whole, not just its head.
        let guard = slot.start();
        if may_tunnel(&req) {
            req.extensions_mut().insert(Tunnel {
                slot: slot.clone(),
                shutdown: shutdown.clone(),
            });
        }
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
        .max_header_list_size(l.max_header_bytes as u32)
        // What a stream may hold that the client has not taken (hyper's default is
        // 400 KiB): a client that grants a huge window and never reads would otherwise
        // pin that much for each of its streams, up to 80 MB a connection until
        // `send_timeout`. A body read is 16 KiB, so this keeps several in hand.
        .max_send_buf_size(SEND_BUF_PER_STREAM);
    if !h2_only {
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
        drive(pin!(conn), |c| c.graceful_shutdown(), l, w, true).await;
        return;
    }
    // HTTP/2: the socket comes back when hyper lets go of it, to be closed lingering
    // if hyper closed the connection itself (`linger` says why). One tango gives up on
    // (not reading, no answer to the GOAWAY) or chose to make room is closed at once.
    let builder = builder.http2_only();
    let (io, back) = Returned::new(io);
    let finished = {
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
        drive(pin!(conn), |c| c.graceful_shutdown(), l, w, false).await
    };
    if let (true, Ok(io)) = (finished, back.await) {
        // Still holding its place among the listener's connections: given up when
        // chosen to make room, as an idle connection is. One told to close as its
        // listener stopped holds no place anyone waits for, and lingers on.
        let room = async {
            w.slot.evicted().await;
            if w.slot.listener_stopped() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = linger(io, Bounds::H2) => {}
            () = room => {}
        }
    }
}

/// The request may open a tunnel: CONNECT (HTTP/1.1, or an HTTP/2 stream), or an
/// HTTP/1.1 upgrade.
fn may_tunnel<B>(req: &http::Request<B>) -> bool {
    req.method() == http::Method::CONNECT
        || (req.version() == http::Version::HTTP_11
            && req.headers().contains_key(http::header::UPGRADE))
}

/// Drive a connection, closing it when idle for `idle_timeout`, when chosen to make room
/// for a newcomer, or (gracefully) on shutdown. An HTTP/1.1 connection (`http1`) that
/// hyper handed over to a tunnel is kept until the tunnel ends. `true` when hyper ended
/// the connection itself (a graceful close it completed, the client's close or a
/// protocol error) and it may linger; `false` when it was given up on here, or chosen
/// to make room (its graceful close completed, but the room is for a newcomer now).
async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    graceful: impl Fn(Pin<&mut C>),
    l: &Listener,
    w: &Watch<'_>,
    http1: bool,
) -> bool
where
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
    let mut stall = Stall::default();
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
                // An HTTP/1.1 connection hyper handed over to a tunnel: hyper is done
                // with it, the client is not. It stays open, and counted (towards
                // `max_connections`, and by the drain), until the tunnel ends. (An
                // HTTP/2 connection's future ends only after its streams, tunnels
                // included.)
                if http1 {
                    w.slot.tunnels_over().await;
                }
                // Closed for a newcomer, it gives up its place at once; closed as its
                // listener stopped, it lingers as at shutdown.
                return !evicted_seen || w.slot.listener_stopped();
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
                if stall.tick(w.slot, period, l.send_timeout) {
                    tracing::debug!("client took no response bytes for the send timeout: closed");
                    break;
                }
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
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        let text = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:1\"\n";
        let loaded =
            tango_core::config::parse("t.toml", text, std::path::Path::new(".")).expect("valid");
        Arc::new(Shared {
            rt: Runtime::new(loaded.config, text),
            shutdown: Shutdown::new(),
            tls: None,
            conns: Conns::default(),
            access_log: None,
            spread: Arc::new(super::super::spread::Spread::new(1)),
            workers: Vec::new(),
        })
    }

    /// A connection's task that panics still gives its place back, so the drain does
    /// not wait its whole grace for it.
    #[test]
    fn a_connection_whose_task_panicked_is_counted_closed() {
        let ctx = shared();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let slot = ctx.conns.admit(10).expect("room");
        let open = Admitted::new(ctx.clone(), slot);
        assert_eq!(ctx.shutdown.open(), 1);
        let task = rt.spawn(async move {
            let _open = open;
            panic!("a connection's task panics");
        });
        let joined = rt.block_on(task);
        assert!(joined.unwrap_err().is_panic());
        assert_eq!(ctx.shutdown.open(), 0);
        let left = rt.block_on(ctx.shutdown.drained(Duration::from_secs(5)));
        assert_eq!(left, 0);
    }
}
