//! tango's own HTTP/1.1 engine, for plain (non-TLS) client connections.
//!
//! One task per client connection does everything: it parses each request head with
//! tango-core's codec (the only place requests are framed), routes and picks, takes an
//! upstream connection from the backend's pool into the same task, writes the rewritten
//! head and streams the body, reads the response and forwards it, returns the upstream
//! connection, and goes on with the next request (keep-alive, pipelining). No channel,
//! no second task, no header map.
//!
//! Between requests a connection holds no buffer: it waits for its socket to become
//! readable, with one timer (the first-byte timeout for a new connection, the idle
//! timeout after a request), the eviction signal and the shutdown signal, and only then
//! borrows a buffer from its thread's pool ([`super::bufpool`]); the buffer goes back
//! when the connection is idle again with nothing pipelined. The work on requests is
//! boxed, so the future of an idle connection stays small.
//!
//! A connection that opens with the HTTP/2 preface is handed to hyper's server (h2c by
//! prior knowledge), with the bytes already read.

pub(crate) mod io;

mod body;
mod date;
mod own;
mod preface;
mod request;
mod response;
pub(crate) mod ring;
mod sent;
mod trailing;
mod view;

use super::bufpool::Buf;
use super::idle::Conns;
use super::idle::Slot;
use super::linger::{linger, Bounds};
use super::service::ConnCtx;
use super::shutdown::Shutdown;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use tango_core::config::Listener;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The HTTP/2 connection preface (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A client connection being served.
pub(super) struct Conn<'a> {
    pub(super) s: TcpStream,
    pub(super) ctx: &'a Arc<ConnCtx>,
    pub(super) l: &'a Listener,
    pub(super) slot: &'a Arc<Slot>,
    pub(super) shutdown: &'a Shutdown,
    /// The largest request head taken.
    pub(super) max_head: usize,
    /// The connection's one timer, for whatever it waits on.
    pub(super) timer: io::Timer<'a>,
    /// When the last response was sent, if that was read off the clock lately (the
    /// idle time is counted from it, without reading the clock again).
    pub(super) sent_at: Option<Instant>,
}

impl Conn<'_> {
    /// The connection should close after the response in progress: shutdown began, or
    /// the listener chose it to make room.
    pub(super) fn closing(&self) -> bool {
        self.slot.is_evicted() || self.shutdown.is_draining()
    }

    /// How long a body may go without a byte moving, either way.
    pub(super) fn body_stall(&self) -> std::time::Duration {
        self.l.idle_timeout
    }
}

/// How a run of requests ended.
pub(super) enum Next {
    /// The connection may take another request.
    KeepAlive,
    /// Close it.
    Close,
    /// Close it after reading for a while what the client may still send.
    Linger,
}

/// What the connection does once the work in hand is done.
enum Phase {
    Idle,
    Close,
    Linger,
    /// It opened with the HTTP/2 preface: these bytes, then the socket, go to hyper.
    H2(Buf),
}

/// Serve a plain client connection of listener `l` (admitted into `slot` of `conns`)
/// until it closes; or, when it opens with the HTTP/2 preface, give it back with the
/// bytes read so far, for hyper.
pub(super) async fn serve(
    stream: TcpStream,
    ctx: &Arc<ConnCtx>,
    l: &Listener,
    slot: &Arc<Slot>,
    conns: &Conns,
    shutdown: &Shutdown,
) -> Option<(TcpStream, Buf)> {
    // One timer for the connection's life, moved on (not made anew) for each wait:
    // the first byte first, then the idle time between requests, and whatever a
    // request waits on.
    let timer = pin!(tokio::time::sleep_until(
        Instant::now() + l.first_byte_timeout
    ));
    let mut c = Conn {
        s: stream,
        ctx,
        l,
        slot,
        shutdown,
        max_head: l.max_header_bytes.max(8192),
        timer: io::Timer::new(timer),
        sent_at: None,
    };
    let mut first = true;
    loop {
        if !idle(&mut c).await {
            return None;
        }
        let mut buf = Buf::new();
        match io::try_read(&c.s, &mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            // Readiness can be spurious: back to waiting, for the same deadline.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
        slot.enter();
        let phase = Box::pin(busy(&mut c, buf, first)).await;
        slot.leave();
        first = false;
        match phase {
            Phase::Idle => {
                conns.idle_again(slot);
                let now = c.sent_at.take().unwrap_or_else(Instant::now);
                c.timer.reset(now + l.idle_timeout);
            }
            Phase::Close => return None,
            // Boxed, to keep it out of the idle connection's future.
            Phase::Linger => {
                Box::pin(linger(c.s, Bounds::H1_UNREAD_BODY)).await;
                return None;
            }
            Phase::H2(pre) => return Some((c.s, pre)),
        }
    }
}

/// Wait, holding no buffer, until the client sends something (true), or until the
/// connection's timer fires, the connection is chosen to make room, or shutdown begins
/// (false).
/// The eviction and shutdown signals wake the task through its slot: nothing is
/// registered with a channel while waiting.
async fn idle(c: &mut Conn<'_>) -> bool {
    std::future::poll_fn(|cx| {
        c.slot.register(cx.waker());
        if c.slot.is_evicted() {
            tracing::debug!("idle connection closed: to make room, or its listener was removed");
            return Poll::Ready(false);
        }
        if c.shutdown.is_draining() {
            return Poll::Ready(false);
        }
        if let Poll::Ready(r) = c.s.poll_read_ready(cx) {
            return Poll::Ready(r.is_ok());
        }
        if c.timer.poll_fired(cx) {
            return Poll::Ready(false);
        }
        Poll::Pending
    })
    .await
}

/// The client sent something (in `buf`): serve it, and whatever it pipelined behind
/// it, with the buffer borrowed for the purpose.
async fn busy(c: &mut Conn<'_>, mut buf: Buf, first: bool) -> Phase {
    if first && H2_PREFACE.starts_with(&buf[..buf.len().min(H2_PREFACE.len())]) {
        // Boxed, as a rare path: it would make every request's future larger.
        return match Box::pin(preface::read_preface(c, &mut buf)).await {
            Ok(true) => Phase::H2(buf),
            Ok(false) => serve_requests(c, &mut buf).await,
            Err(()) => Phase::Close,
        };
    }
    serve_requests(c, &mut buf).await
}

async fn serve_requests(c: &mut Conn<'_>, buf: &mut Buf) -> Phase {
    loop {
        match request::serve(c, buf).await {
            Next::KeepAlive if buf.is_empty() => return Phase::Idle,
            // Pipelined: the next request is here already.
            Next::KeepAlive => {}
            Next::Close => return Phase::Close,
            Next::Linger => return Phase::Linger,
        }
    }
}
