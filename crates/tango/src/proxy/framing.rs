//! The framing guard: the I/O side of `tango_core::http1::Framer`, between a client
//! connection (plain or TLS) and hyper's HTTP/1 parser.
//!
//! Bytes read from the client go through the framer, which judges each request head
//! and follows its body, and only what it passes reaches hyper. A refused request is
//! replaced by bytes hyper rejects: hyper answers 400 and closes, and the request never
//! reaches a backend. Body bytes, and everything once the connection has switched
//! protocols, are read straight into hyper's buffer.
//!
//! After a request that may switch protocols (Upgrade, CONNECT) the guard reads nothing
//! more until the service has answered it and said, through the connection's
//! [`SwitchVerdict`], whether the answer switched (101, or 2xx to CONNECT): only then
//! does it pass the rest through unjudged. An Upgrade header alone changes nothing.
//!
//! The guard also keeps the header timeout: a head not complete within
//! `header_timeout` of its first byte ends the connection.

use atomic_waker::AtomicWaker;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tango_core::config::Listener;
use tango_core::http1::{Closed, Framer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much is read from the client at once when the bytes must be judged.
const READ_SIZE: usize = 16 * 1024;

const UNDECIDED: u8 = 0;
const SWITCHED: u8 = 1;
const STAYED: u8 = 2;

/// How the last request that may switch protocols was answered, told by the service to
/// the connection's guard. One per connection.
#[derive(Default)]
pub(crate) struct SwitchVerdict {
    state: AtomicU8,
    waker: AtomicWaker,
}

impl SwitchVerdict {
    /// The answer to a request that may switch protocols is ready: `switched` when it
    /// is a 101 or a 2xx to CONNECT.
    pub(crate) fn decide(&self, switched: bool) {
        let v = if switched { SWITCHED } else { STAYED };
        self.state.store(v, Ordering::Release);
        self.waker.wake();
    }

    /// The verdict, if given (and clear it for the next such request).
    fn take(&self) -> Option<bool> {
        match self.state.swap(UNDECIDED, Ordering::Acquire) {
            SWITCHED => Some(true),
            STAYED => Some(false),
            _ => None,
        }
    }
}

/// Wrap a client connection of listener `l` in a guard reporting to `verdict`.
pub(crate) fn guard<I>(io: I, l: &Listener, verdict: Arc<SwitchVerdict>) -> FramingGuard<I> {
    FramingGuard::new(io, l.max_header_bytes.max(8192), l.header_timeout, verdict)
}

pub(crate) struct FramingGuard<I> {
    inner: I,
    framer: Framer,
    /// Bytes judged and ready for hyper.
    ready: Vec<u8>,
    ready_pos: usize,
    eof: bool,
    /// Where bytes are read before they are judged (kept, so no allocation per read).
    scratch: Vec<u8>,
    verdict: Arc<SwitchVerdict>,
    /// How long a client may take over one request head, from its first byte.
    header_timeout: Duration,
    /// Armed while a head is incomplete; a head that arrives whole never arms it.
    head_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    timer_armed: bool,
    logged_close: bool,
}

impl<I> FramingGuard<I> {
    pub(crate) fn new(
        inner: I,
        max_head: usize,
        header_timeout: Duration,
        verdict: Arc<SwitchVerdict>,
    ) -> Self {
        Self {
            inner,
            framer: Framer::new(max_head),
            ready: Vec::new(),
            ready_pos: 0,
            eof: false,
            scratch: Vec::new(),
            verdict,
            header_timeout,
            head_timer: None,
            timer_armed: false,
            logged_close: false,
        }
    }

    /// Hand hyper judged bytes, if there are any.
    fn give(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.ready_pos >= self.ready.len() {
            return false;
        }
        let n = (self.ready.len() - self.ready_pos).min(buf.remaining());
        buf.put_slice(&self.ready[self.ready_pos..self.ready_pos + n]);
        self.ready_pos += n;
        if self.ready_pos == self.ready.len() {
            self.ready.clear();
            self.ready_pos = 0;
        }
        true
    }

    fn log_close(&mut self) {
        if std::mem::replace(&mut self.logged_close, true) {
            return;
        }
        match self.framer.closed() {
            Some(Closed::Refused(why)) => {
                tracing::debug!(reason = why.as_str(), "request refused before forwarding")
            }
            Some(other) => tracing::debug!(?other, "request framing left to hyper to refuse"),
            None => {}
        }
    }

    /// Keep the header timer in step with the framer. Returns true when it has fired.
    fn head_timer_fired(&mut self, cx: &mut Context<'_>) -> bool {
        let in_progress = self.framer.head_in_progress();
        if !in_progress {
            self.timer_armed = false;
            return false;
        }
        if !self.timer_armed {
            let deadline = tokio::time::Instant::now() + self.header_timeout;
            match &mut self.head_timer {
                Some(t) => t.as_mut().reset(deadline),
                None => self.head_timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.timer_armed = true;
        }
        self.head_timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready())
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FramingGuard<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.give(buf) {
                return Poll::Ready(Ok(()));
            }
            if this.framer.closed().is_some() {
                this.log_close();
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.framer.awaiting_switch() {
                // Register first, then look, so a verdict given in between still wakes us.
                this.verdict.waker.register(cx.waker());
                match this.verdict.take() {
                    Some(switched) => {
                        this.framer.resolve_switch(switched, &mut this.ready);
                        continue;
                    }
                    None => return Poll::Pending,
                }
            }
            if let Some(n) = this.framer.direct_len() {
                // Body bytes, or a tunnel: no need to look at them, read them straight
                // into hyper's buffer when it can take no more than may pass.
                if n >= buf.remaining() as u64 {
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    let got = buf.filled().len() - before;
                    this.framer.advance_direct(got);
                    return Poll::Ready(Ok(()));
                }
            }
            let mut scratch = std::mem::take(&mut this.scratch);
            scratch.clear();
            scratch.reserve(READ_SIZE);
            let mut rb = ReadBuf::uninit(scratch.spare_capacity_mut());
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
            let got = rb.filled().len();
            if let Poll::Ready(Ok(())) = polled {
                if got == 0 {
                    // The client closed. What is held back was never judged complete:
                    // it stays back, and hyper sees the connection end.
                    this.eof = true;
                } else {
                    this.framer.feed(rb.filled(), &mut this.ready);
                }
            }
            this.scratch = scratch;
            let fired = this.head_timer_fired(cx);
            match polled {
                Poll::Pending if fired => {
                    // Too slow with its head: end the connection; hyper sees it close
                    // mid-message and drops it.
                    tracing::debug!("request head not complete in time; closing");
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FramingGuard<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;
