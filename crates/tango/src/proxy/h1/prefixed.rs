//! HTTP/2 by prior knowledge on a plain connection: the engine reads the first bytes,
//! and when they are the HTTP/2 preface the connection goes to hyper's HTTP/2 server,
//! those bytes first.

use super::io::{self, Limit};
use super::Conn;
use crate::proxy::bufpool::Buf;
use crate::proxy::conn_io::ConnIo;
use crate::proxy::service::ConnCtx;
use crate::proxy::Watch;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tango_core::config::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// `buf` starts like the preface: read until it is whole (true) or is not (false).
/// `Err` when the client goes away or takes longer than the header timeout.
pub(super) async fn read_preface(c: &mut Conn<'_>, buf: &mut Buf) -> Result<bool, ()> {
    let deadline = Instant::now() + c.l.header_timeout;
    loop {
        let n = buf.len().min(super::H2_PREFACE.len());
        if buf[..n] != super::H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == super::H2_PREFACE.len() {
            return Ok(true);
        }
        match io::read(&c.s, buf, Limit::Until(deadline)).await {
            Ok(0) | Err(_) => return Err(()),
            Ok(_) => {}
        }
    }
}

/// Serve the connection with hyper's HTTP/2 server, `pre` read already.
pub(super) async fn serve_h2(
    s: TcpStream,
    pre: Buf,
    ctx: Arc<ConnCtx>,
    l: &Listener,
    w: &Watch<'_>,
) {
    // The socket keeps the send timeout, as on every connection hyper serves.
    let io = ConnIo::new(s, None, Some((l.send_timeout, w.slot.clone())));
    let io = Prefixed {
        pre: Some(pre),
        at: 0,
        inner: io,
    };
    crate::proxy::serve(io, ctx, l, w, true).await;
}

/// A socket whose first bytes were read already: they are read again first.
struct Prefixed<I> {
    pre: Option<Buf>,
    at: usize,
    inner: I,
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
