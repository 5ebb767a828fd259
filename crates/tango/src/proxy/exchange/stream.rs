//! Reads and writes on an upstream connection, with the same limits and the same one
//! timer per connection as the engine's socket calls (`h1/io.rs`).
//!
//! A plain connection goes straight to those readiness-based calls, so a plain pool's
//! request pays one branch for TLS existing. A TLS connection is read and written
//! through tokio-rustls (`AsyncRead`/`AsyncWrite`): its session holds decrypted bytes
//! and records not yet written that the socket's readiness cannot tell of, and a write
//! is flushed before it counts as done.

use crate::proxy::h1::io::{self, Limit, Timer};
use crate::upstream::Stream;
use std::io::{ErrorKind, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

/// Read what the connection has into `buf`'s spare room (the caller makes some),
/// waiting within `limit` on `t`; `Ok(0)` is the end of the stream.
pub(crate) async fn read(
    s: &mut Stream,
    buf: &mut Vec<u8>,
    limit: Limit,
    t: &mut Timer<'_>,
) -> std::io::Result<usize> {
    match s {
        Stream::Plain(s) => io::read(s, buf, limit, t).await,
        Stream::Tls(_) => {
            t.reset(deadline(limit));
            std::future::poll_fn(|cx| match poll_read(s, cx, buf) {
                Poll::Ready(r) => Poll::Ready(r),
                Poll::Pending if t.poll_fired(cx) => {
                    Poll::Ready(Err(io::timed_out("no bytes in time")))
                }
                Poll::Pending => Poll::Pending,
            })
            .await
        }
    }
}

/// Read what the connection has into `buf`'s spare room, or register for more: for a
/// body polled by hyper. `Ok(0)` is the end of the stream.
pub(crate) fn poll_read(
    s: &mut Stream,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
) -> Poll<std::io::Result<usize>> {
    match s {
        Stream::Plain(s) => loop {
            match io::try_read(s, buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
            match s.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        },
        Stream::Tls(tls) => poll_read_tls(tls, cx, buf),
    }
}

/// [`poll_read`] of a TLS session.
pub(crate) fn poll_read_tls(
    tls: &mut TlsStream<TcpStream>,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
) -> Poll<std::io::Result<usize>> {
    // The spare room zeroed (forbidding unsafe code, ReadBuf needs it initialised): a
    // cost next to decrypting what fills it.
    let len = buf.len();
    buf.resize(buf.capacity().max(len + 4096), 0);
    let mut rb = ReadBuf::new(&mut buf[len..]);
    let r = Pin::new(tls).poll_read(cx, &mut rb);
    let n = rb.filled().len();
    buf.truncate(len + n);
    r.map_ok(|()| n)
}

pub(super) fn deadline(limit: Limit) -> Instant {
    match limit {
        Limit::Until(d) => d,
        Limit::Stall(d) => Instant::now() + d,
    }
}

/// Write every byte of `bufs`, adding to `wrote` as bytes go (for TLS: as the session
/// takes them), waiting within `limit` on `t`.
pub(crate) async fn write_all(
    s: &mut Stream,
    bufs: &mut [IoSlice<'_>],
    limit: Limit,
    t: &mut Timer<'_>,
    wrote: &mut u64,
) -> std::io::Result<()> {
    let tls = match s {
        Stream::Plain(s) => return io::write_all(s, bufs, limit, t, wrote).await,
        Stream::Tls(tls) => &mut **tls,
    };
    let mut bufs = bufs;
    IoSlice::advance_slices(&mut bufs, 0);
    t.reset(deadline(limit));
    std::future::poll_fn(
        |cx| match poll_write_tls(tls, cx, &mut bufs, limit, t, wrote) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending if t.poll_fired(cx) => {
                Poll::Ready(Err(io::timed_out("the peer took nothing in time")))
            }
            Poll::Pending => Poll::Pending,
        },
    )
    .await
}

/// Give a TLS session what it takes of `bufs` (advanced past it, and counted in
/// `wrote`), then flush it: ready once all is written and flushed, or on an error;
/// pending while the session takes no more (a `Limit::Stall` deadline moved on at each
/// piece taken). The caller waits on `t` for the deadline.
pub(crate) fn poll_write_tls(
    tls: &mut TlsStream<TcpStream>,
    cx: &mut Context<'_>,
    bufs: &mut &mut [IoSlice<'_>],
    limit: Limit,
    t: &mut Timer<'_>,
    wrote: &mut u64,
) -> Poll<std::io::Result<()>> {
    loop {
        if bufs.is_empty() {
            return Pin::new(&mut *tls).poll_flush(cx);
        }
        match Pin::new(&mut *tls).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                *wrote += n as u64;
                IoSlice::advance_slices(bufs, n);
                if let Limit::Stall(_) = limit {
                    t.reset(deadline(limit));
                }
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// [`write_all`] of one buffer.
pub(crate) async fn write(
    s: &mut Stream,
    data: &[u8],
    limit: Limit,
    t: &mut Timer<'_>,
) -> std::io::Result<()> {
    write_all(s, &mut [IoSlice::new(data)], limit, t, &mut 0).await
}
