//! An upstream connection's byte stream: the bare socket of a plain pool, or a TLS
//! session over it for a pool with `tls`.
//!
//! An enum rather than a trait object: the plain arm is what the proxy's hot path
//! reads and writes with readiness calls on the socket itself (`proxy/h1/io.rs`), and
//! a match costs it a branch, not a virtual call or an allocation. The TLS arm is boxed
//! (rustls's session is a few KiB) so a plain connection stays the size of its socket;
//! it is read and written through `AsyncRead`/`AsyncWrite`, since rustls keeps
//! buffered records of its own that socket readiness cannot see.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// An upstream connection's stream.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The backend chose HTTP/2 by ALPN (never on a plain connection).
    pub(crate) fn chose_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }

    /// An idle connection is alive when a read would block: the backend has neither
    /// closed it nor sent anything unasked (bytes past the end of its last answer, which
    /// the next request must never take for its own). For TLS the session reads (a
    /// session ticket the backend sent late is taken in and the connection stays usable;
    /// its close_notify ends it).
    ///
    /// The plain arm costs no system call unless the socket is readable as the event
    /// loop knows it: tokio's `try_read` returns `WouldBlock` from the readiness alone,
    /// and the engine's reads (`h1::io::try_read`) clear that readiness when they take
    /// all the socket had, so a keep-alive connection comes back to the list not
    /// readable. Bytes or a close that came while it sat idle made it readable, and
    /// the read then confirms them.
    pub(crate) fn alive(&mut self) -> bool {
        match self {
            Stream::Plain(s) => {
                let mut probe = [0u8; 1];
                matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Stream::Tls(s) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                let mut cx = Context::from_waker(Waker::noop());
                Pin::new(&mut **s).poll_read(&mut cx, &mut buf).is_pending()
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
