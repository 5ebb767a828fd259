//! The lingering close of an HTTP/2 connection hyper has finished with: its socket
//! handed back when hyper lets go of it ([`Returned`]), then its write side shut and
//! what the client still sends read and dropped, until the client closes or goes quiet
//! ([`linger`]).
//!
//! Why: hyper's HTTP/2 server ends a connection (after a GOAWAY, on shutdown or to make
//! room) once its last response is written to the socket, not once the client has it:
//! megabytes may still sit in the kernel's buffers. The client, reading them, keeps
//! sending WINDOW_UPDATEs, and a socket closed with bytes arriving answers them with a
//! reset, which throws away the response's unsent tail. nginx closes every connection
//! this way (`lingering_close`), with the same bounds as here.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::{timeout, timeout_at, Instant};

/// How long the client may send nothing before the connection is closed (nginx's
/// `lingering_timeout`).
const QUIET: Duration = Duration::from_secs(5);

/// The longest a connection lingers, however steadily the client sends (nginx's
/// `lingering_time`). A shutdown's drain waits for it, within its grace period.
const MOST: Duration = Duration::from_secs(30);

/// A connection's I/O as hyper holds it: handed back through the paired receiver when
/// hyper drops it.
pub(crate) struct Returned<I> {
    io: Option<I>,
    back: Option<oneshot::Sender<I>>,
}

impl<I> Returned<I> {
    pub(crate) fn new(io: I) -> (Self, oneshot::Receiver<I>) {
        let (tx, rx) = oneshot::channel();
        let r = Returned {
            io: Some(io),
            back: Some(tx),
        };
        (r, rx)
    }

    fn io(&mut self) -> Pin<&mut I>
    where
        I: Unpin,
    {
        Pin::new(self.io.as_mut().expect("the I/O is held until drop"))
    }
}

impl<I> Drop for Returned<I> {
    fn drop(&mut self) {
        if let (Some(io), Some(back)) = (self.io.take(), self.back.take()) {
            // No one waiting: the connection was abandoned, and closes here.
            let _ = back.send(io);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Returned<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().io().poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Returned<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().io().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().io().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(I::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io().poll_shutdown(cx)
    }
}

/// Shut the connection's write side (after what is buffered), then read and drop what
/// the client sends until it closes, errs, or sends nothing for [`QUIET`], and for
/// [`MOST`] at the longest; the connection closes when `io` is dropped.
pub(crate) async fn linger<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let end = Instant::now() + MOST;
    if !matches!(timeout(QUIET, io.shutdown()).await, Ok(Ok(()))) {
        return;
    }
    // Allocated only here: a connection's future would otherwise carry it for life.
    let mut sink = vec![0u8; 4096];
    loop {
        let quiet = (Instant::now() + QUIET).min(end);
        match timeout_at(quiet, io.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}
