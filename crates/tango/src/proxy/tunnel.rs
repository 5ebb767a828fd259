//! A tunnel's bytes both ways, after a `101` to an upgrade or a `2xx` to CONNECT, the
//! same on every client path: the engine's socket, and the connection (TLS HTTP/1.1)
//! or HTTP/2 stream hyper hands over. A half-close is passed on (each side's end of
//! stream shuts the other's writes, and the rest still flows back), and the tunnel is
//! over when both sides have ended or either fails.
//!
//! Shutdown ends it at once, on every path alike: a WebSocket may stay open for hours,
//! so one that waited for its peers to close would hold the drain for the whole grace
//! period. A reload leaves it alone: it keeps the backend connection it has, whatever
//! the new configuration says.
//!
//! A tunnel with no byte moving either way for the listener's `idle_timeout` is closed,
//! as nginx's `proxy_read_timeout` and HAProxy's `timeout tunnel` close theirs: a peer
//! that vanished without a FIN (a client gone off the network, a backend rebooted)
//! would otherwise hold its descriptors, its connection slot and the backend's
//! in-flight count for good. WebSocket pings are bytes: a protocol that keeps itself
//! alive more often than that is never cut.
//!
//! The bytes written each way are counted (`Carried`), for the tunnel's access log line,
//! which is written when the tunnel ends.

use super::shutdown::Shutdown;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The bytes a tunnel carried each way, as written to the other side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Carried {
    /// From the client to the backend.
    pub(crate) to_upstream: u64,
    /// From the backend to the client.
    pub(crate) to_client: u64,
}

/// Bytes both ways between `client` and `upstream` until the tunnel is over, no byte
/// has moved for `idle`, or shutdown begins; what it carried each way.
pub(crate) async fn relay<C, U>(
    client: &mut C,
    upstream: &mut U,
    idle: Duration,
    shutdown: &Shutdown,
) -> Carried
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let since = Instant::now();
    let moved = AtomicU64::new(0);
    let mut c = Noted::new(client, &moved, since);
    let mut u = Noted::new(upstream, &moved, since);
    copy_until_over(&mut c, &mut u, idle, shutdown, since, &moved).await;
    Carried {
        to_upstream: u.written,
        to_client: c.written,
    }
}

/// The copy both ways, until it is over, idle for `idle`, or shutdown begins.
async fn copy_until_over<C, U>(
    c: &mut Noted<'_, C>,
    u: &mut Noted<'_, U>,
    idle: Duration,
    shutdown: &Shutdown,
    since: Instant,
    moved: &AtomicU64,
) where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let copy = tokio::io::copy_bidirectional(c, u);
    let quiet = tokio::time::sleep_until(since + idle);
    tokio::pin!(copy, quiet);
    let mut stop = shutdown.subscribe();
    loop {
        tokio::select! {
            r = &mut copy => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "tunnel ended");
                }
                return;
            }
            // Tells at once when shutdown began before the tunnel opened.
            _ = stop.wait_for(|s| *s) => {
                tracing::debug!("tunnel closed: shutting down");
                return;
            }
            // The timer is moved on only when it fires: reads just note the time.
            () = &mut quiet => {
                let last = since + Duration::from_nanos(moved.load(Relaxed));
                if Instant::now() >= last + idle {
                    tracing::debug!(idle = ?idle, "tunnel closed: no byte moved for the idle timeout");
                    return;
                }
                quiet.as_mut().reset(last + idle);
            }
        }
    }
}

/// One side of a tunnel, noting when a read last brought bytes (nanoseconds after
/// `since`, in `moved`): every byte moved is read from one side first. It counts the
/// bytes written to it.
struct Noted<'a, S: ?Sized> {
    inner: &'a mut S,
    moved: &'a AtomicU64,
    since: Instant,
    written: u64,
}

impl<'a, S: ?Sized> Noted<'a, S> {
    fn new(inner: &'a mut S, moved: &'a AtomicU64, since: Instant) -> Self {
        Self {
            inner,
            moved,
            since,
            written: 0,
        }
    }

    /// Counts what a write took.
    fn wrote(&mut self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = r {
            self.written += n as u64;
        }
        r
    }
}

impl<S: AsyncRead + Unpin + ?Sized> AsyncRead for Noted<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let at = this.since.elapsed().as_nanos();
            this.moved
                .store(u64::try_from(at).unwrap_or(u64::MAX), Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin + ?Sized> AsyncWrite for Noted<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut *this.inner).poll_write(cx, buf);
        this.wrote(r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut *this.inner).poll_write_vectored(cx, bufs);
        this.wrote(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}
