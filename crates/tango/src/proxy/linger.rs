//! The lingering close of a client connection: its write side shut and what the client
//! still sends read and dropped, until the client closes, goes quiet, or a bound is
//! reached ([`linger`], with the bounds of the case: [`Bounds`]); and, for HTTP/2, the
//! socket handed back when hyper lets go of it ([`Returned`]).
//!
//! Why: a socket closed with unread bytes, or with bytes still arriving, answers them
//! with a reset, and a reset makes the client's kernel drop what it had received but
//! not yet handed to the client. The HTTP/1.1 engine closes this way after answering a
//! request whose body (or pipelined successors) the client may still be sending.
//! hyper's HTTP/2 server ends a connection (after a GOAWAY, on shutdown or to make
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
use tokio::time::{timeout_at, Instant};

/// How long a lingering close lasts and how much it reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// How long the client may send nothing before the connection is closed (nginx's
    /// `lingering_timeout`).
    quiet: Duration,
    /// The longest the connection lingers, however steadily the client sends (nginx's
    /// `lingering_time`). A shutdown's drain waits for it, within its grace period.
    most: Duration,
    /// The most bytes read and dropped.
    bytes: u64,
}

impl Bounds {
    /// An HTTP/2 connection hyper has finished with: the client is reading a response
    /// and sends little (WINDOW_UPDATEs), so the bounds are nginx's, by time alone.
    pub(crate) const H2: Bounds = Bounds {
        quiet: Duration::from_secs(5),
        most: Duration::from_secs(30),
        bytes: u64::MAX,
    };

    /// An HTTP/1.1 connection closed after an answer given before the request's body was
    /// read (a refusal, a backend's early answer): what still comes is that body, which
    /// may be large, so the close is short and bounded in bytes too. Long enough for
    /// the client to read the answer that was already sent.
    pub(crate) const H1_UNREAD_BODY: Bounds = Bounds {
        quiet: Duration::from_secs(2),
        most: Duration::from_secs(2),
        bytes: 256 * 1024,
    };
}

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
/// the client sends until it closes, errs, sends nothing for `b.quiet`, or `b.bytes`
/// have come, and for `b.most` at the longest; the connection closes when `io` is
/// dropped.
pub(crate) async fn linger<I: AsyncRead + AsyncWrite + Unpin>(mut io: I, b: Bounds) {
    let end = Instant::now() + b.most;
    let quiet = (Instant::now() + b.quiet).min(end);
    if !matches!(timeout_at(quiet, io.shutdown()).await, Ok(Ok(()))) {
        return;
    }
    // Allocated only here: a connection's future would otherwise carry it for life.
    let mut sink = vec![0u8; 4096];
    let mut read = 0u64;
    while read < b.bytes {
        let quiet = (Instant::now() + b.quiet).min(end);
        match timeout_at(quiet, io.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => read += n as u64,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// Linger on one end of an in-memory pipe while the other end sends `chunk` every
    /// `every`, up to `total` bytes; returns how long the linger lasted and whether the
    /// client end saw our side shut (a read of 0) before that.
    async fn linger_against(b: Bounds, every: Duration, chunk: usize) -> (Duration, bool) {
        let (ours, mut client) = duplex(1 << 20);
        let lingering = tokio::spawn(async move {
            let start = Instant::now();
            linger(ours, b).await;
            start.elapsed()
        });
        let mut first = [0u8; 1];
        let shut = matches!(client.read(&mut first).await, Ok(0));
        let data = vec![7u8; chunk];
        while !lingering.is_finished() {
            if client.write_all(&data).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
        (lingering.await.expect("linger ends"), shut)
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_sending_is_cut_off_at_the_longest_time() {
        let (took, shut) = linger_against(Bounds::H2, Duration::from_secs(1), 10).await;
        assert!(shut, "our write side is shut first");
        assert!(
            took >= Bounds::H2.most && took < Bounds::H2.most + Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_client_is_let_go_after_the_quiet_time() {
        let (took, _) = linger_against(Bounds::H2, Duration::from_secs(60), 10).await;
        assert!(
            took >= Bounds::H2.quiet && took < Bounds::H2.quiet + Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unread_body_is_dropped_up_to_its_byte_bound_and_no_further() {
        // 64 KiB every 10 ms: the 256 KiB bound comes long before the 2 s one.
        let (took, _) =
            linger_against(Bounds::H1_UNREAD_BODY, Duration::from_millis(10), 64 * 1024).await;
        assert!(took < Duration::from_millis(100), "{took:?}");
    }
}
