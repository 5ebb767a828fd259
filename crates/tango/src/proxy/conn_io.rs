//! The client socket as hyper sees it, with two deadlines hyper does not keep.
//!
//! - **First byte.** A new connection must send something within `first_byte_timeout`;
//!   the header timeout only starts at the first byte, so without this a connection that
//!   says nothing would be held for the whole idle timeout.
//! - **Send.** A write that makes no progress for `send_timeout` ends the connection: a
//!   client that pipelines requests (or sends HTTP/2 PINGs) and never reads would
//!   otherwise hold its connection, and the socket buffers full of its unread responses,
//!   for as long as it likes. HTTP/1 and HTTP/2 both write through here.
//!
//! [`Prefixed`] gives a socket's first bytes, read already, back to whoever reads next
//! (hyper's HTTP/2 server, after the engine saw the preface).
//!
//! Each timer is armed only while what it guards is pending (a read before the first
//! byte, a write the socket cannot take), so a connection whose reads and writes complete
//! at once never touches the timer wheel. A blocked write is also reported to the
//! connection's [`Slot`]: a connection with bytes still to deliver is not idle, and is
//! not closed hard to make room for a newcomer.

use super::bufpool::Buf;
use super::idle::Slot;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Makes the socket's close abortive (a reset). A connection closed because its client
/// stopped reading would otherwise keep its unsent bytes, and the kernel memory holding
/// them, while the kernel goes on offering them to a zero window.
pub(crate) trait Abort {
    fn abort_on_close(&self);
}

impl Abort for TcpStream {
    fn abort_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

impl<I: Abort> Abort for &mut I {
    fn abort_on_close(&self) {
        (**self).abort_on_close();
    }
}

impl<I: Abort> Abort for ConnIo<I> {
    fn abort_on_close(&self) {
        self.inner.abort_on_close();
    }
}

impl<I: Abort> Abort for tokio_rustls::server::TlsStream<I> {
    fn abort_on_close(&self) {
        self.get_ref().0.abort_on_close();
    }
}

pub(crate) struct ConnIo<I> {
    inner: I,
    /// Until the first byte has come: when it must have.
    first_byte: Option<Instant>,
    read_timer: Option<Pin<Box<Sleep>>>,
    /// The send timeout, and the connection told when writes block and unblock.
    send: Option<(Duration, Arc<Slot>)>,
    /// Kept once made, and reset for each stall.
    write_timer: Option<Pin<Box<Sleep>>>,
    /// A write is pending and `write_timer` runs for it.
    write_armed: bool,
    /// The send timeout expired: every further operation fails.
    dead: bool,
}

fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

const NO_FIRST_BYTE: &str = "no first byte within first_byte_timeout";
const NOT_READING: &str = "the client read nothing for send_timeout";

impl<I> ConnIo<I> {
    /// `first_byte`: how long from now the connection may stay silent (`None`: it has
    /// spoken already). `send`: the send timeout and the connection's slot; `None` when a
    /// layer below keeps them.
    pub(crate) fn new(
        inner: I,
        first_byte: Option<Duration>,
        send: Option<(Duration, Arc<Slot>)>,
    ) -> Self {
        Self {
            inner,
            first_byte: first_byte.map(|d| Instant::now() + d),
            read_timer: None,
            send,
            write_timer: None,
            write_armed: false,
            dead: false,
        }
    }
}

impl<I: Abort> ConnIo<I> {
    /// A write is pending: run the send timer (from now, if it was not already running)
    /// and fail once it expires.
    fn stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some((limit, slot)) = &self.send else {
            return Poll::Pending;
        };
        let limit = *limit;
        if !self.write_armed {
            slot.set_blocked(true);
        }
        let timer = match &mut self.write_timer {
            Some(t) => {
                if !self.write_armed {
                    t.as_mut().reset(Instant::now() + limit);
                }
                t
            }
            None => self.write_timer.insert(Box::pin(tokio::time::sleep(limit))),
        };
        self.write_armed = true;
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.dead = true;
        self.inner.abort_on_close();
        Poll::Ready(Err(timed_out(NOT_READING)))
    }

    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
        progress: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => self.stall(cx),
            Poll::Ready(Ok(v)) => {
                if self.write_armed && progress(&v) {
                    self.write_armed = false;
                    if let Some((_, slot)) = &self.send {
                        slot.set_blocked(false);
                    }
                }
                Poll::Ready(Ok(v))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ConnIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dead {
            return Poll::Ready(Err(timed_out(NOT_READING)));
        }
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(deadline) = this.first_byte else {
            return r;
        };
        if r.is_ready() {
            // Bytes, the end of the stream or an error: silence is over either way.
            this.first_byte = None;
            this.read_timer = None;
            return r;
        }
        let timer = this
            .read_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timed_out(NO_FIRST_BYTE))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncWrite + Abort + Unpin> AsyncWrite for ConnIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.dead {
            return Poll::Ready(Err(timed_out(NOT_READING)));
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, r, |n| *n > 0)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.dead {
            return Poll::Ready(Err(timed_out(NOT_READING)));
        }
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, r, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dead {
            return Poll::Ready(Err(timed_out(NOT_READING)));
        }
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.after_write(cx, r, |_| true)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dead {
            return Poll::Ready(Err(timed_out(NOT_READING)));
        }
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.after_write(cx, r, |_| true)
    }
}

/// A socket whose first bytes were read already: they are read again first.
pub(crate) struct Prefixed<I> {
    pre: Option<Buf>,
    at: usize,
    inner: I,
}

impl<I> Prefixed<I> {
    /// `inner`, after which `pre` was read from it.
    pub(crate) fn new(pre: Buf, inner: I) -> Self {
        Prefixed {
            pre: Some(pre),
            at: 0,
            inner,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(pre) = &this.pre {
            let n = (pre.len() - this.at).min(buf.remaining());
            buf.put_slice(&pre[this.at..this.at + n]);
            this.at += n;
            if this.at == pre.len() {
                // Back to the pool.
                this.pre = None;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    impl Abort for DuplexStream {
        fn abort_on_close(&self) {}
    }

    const SEC: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_fails_after_the_send_timeout() {
        let (a, _b) = tokio::io::duplex(64);
        let slot = Arc::new(Slot::new());
        let mut io = ConnIo::new(a, None, Some((SEC, slot.clone())));
        let started = Instant::now();
        let e = io.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), SEC);
        assert!(
            slot.busy(),
            "a connection with bytes to deliver is not idle"
        );
        // Dead from then on, reads included.
        let mut buf = [0u8; 8];
        assert_eq!(
            io.read(&mut buf).await.unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_taking_bytes_is_not_cut_off() {
        let (a, mut b) = tokio::io::duplex(64);
        let slot = Arc::new(Slot::new());
        let mut io = ConnIo::new(a, None, Some((SEC, slot.clone())));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 1024 {
                // Each stall is shorter than the send timeout; together they are longer.
                tokio::time::sleep(SEC / 2).await;
                total += b.read(&mut buf).await.unwrap();
            }
            total
        });
        io.write_all(&[0u8; 1024]).await.unwrap();
        io.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), 1024);
        assert!(!slot.busy(), "everything was delivered");
    }

    #[tokio::test(start_paused = true)]
    async fn silence_past_the_first_byte_timeout_fails_the_read() {
        let (a, _b) = tokio::io::duplex(64);
        let mut io = ConnIo::new(a, Some(SEC), None);
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let e = io.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), SEC);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_first_byte_reads_wait_as_long_as_they_like() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut io = ConnIo::new(a, Some(SEC), None);
        b.write_all(b"G").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        let later = tokio::spawn(async move {
            tokio::time::sleep(SEC * 10).await;
            b.write_all(b"ET").await.unwrap();
            b
        });
        assert_eq!(io.read(&mut buf).await.unwrap(), 2);
        drop(later.await.unwrap());
    }
}
