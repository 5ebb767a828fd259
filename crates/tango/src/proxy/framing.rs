//! A guard in front of hyper's HTTP/1 parser for the one framing ambiguity hyper
//! resolves instead of refusing: a request with both Content-Length and
//! Transfer-Encoding. hyper drops Content-Length and reads the body as chunked, which is
//! what RFC 9112 allows, but a load balancer should never forward such a request, so
//! tango refuses it with 400.
//!
//! The guard follows the byte stream of a connection: it holds back each request head
//! until it is complete, inspects it with httparse, then passes it on and follows the
//! body (Content-Length bytes, or chunked framing) to find the next head. An ambiguous
//! head is replaced by bytes hyper rejects (hyper then answers 400 and closes), and
//! nothing after it is read. HTTP/2 (the connection preface), upgrades and CONNECT
//! switch the guard to pass-through. Anything malformed is passed on as is: hyper's
//! parser is the judge of that.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";
/// What hyper is handed in place of an ambiguous head: an invalid method byte.
const POISON: &[u8] = b"\x00 / HTTP/1.1\r\n\r\n";
const MAX_HEADERS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// `n` data bytes left, then CRLF.
    Data(u64),
    /// The CRLF after chunk data: bytes left of it.
    DataEnd(u8),
    /// Trailer section, until an empty line.
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Head,
    Body(u64),
    Chunked(Chunk),
    Pass,
    Poisoned,
}

pub(crate) struct FramingGuard<I> {
    inner: I,
    state: State,
    /// Bytes read but not yet judged (an incomplete head, or a chunk line).
    pending: Vec<u8>,
    /// Bytes judged and ready for hyper.
    ready: Vec<u8>,
    /// How much of the incomplete head in `pending` hyper already has. All of a head but
    /// its last byte may go ahead, so hyper's header timeout runs while the client is
    /// slow; hyper cannot act on a head it has not seen end.
    head_released: usize,
    ready_pos: usize,
    max_head: usize,
    eof: bool,
    /// Where bytes are read before they are judged (kept, so no allocation per read).
    scratch: Vec<u8>,
    /// How long a client may take over one request head, from its first byte.
    header_timeout: Duration,
    /// Armed while a head is incomplete; a head that arrives whole never arms it.
    head_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    timer_armed: bool,
}

impl<I> FramingGuard<I> {
    pub(crate) fn new(inner: I, max_head: usize, header_timeout: Duration) -> Self {
        Self {
            inner,
            state: State::Start,
            pending: Vec::new(),
            ready: Vec::new(),
            head_released: 0,
            ready_pos: 0,
            max_head,
            eof: false,
            scratch: Vec::new(),
            header_timeout,
            head_timer: None,
            timer_armed: false,
        }
    }

    /// Judge `data` (freshly read), moving what may pass into `ready`.
    fn feed(&mut self, data: &[u8]) {
        let mut data = data;
        loop {
            match self.state {
                State::Pass => {
                    self.ready.extend_from_slice(data);
                    return;
                }
                State::Poisoned => return,
                State::Body(n) => {
                    let take = (n.min(data.len() as u64)) as usize;
                    self.ready.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Body(left)
                    };
                    if data.is_empty() {
                        return;
                    }
                }
                State::Head
                    if self.pending.is_empty()
                        && !data.starts_with(b"\r")
                        && !data.starts_with(b"\n") =>
                {
                    // The common case: a whole head in hand. Judge it where it lies and
                    // copy it once.
                    match inspect(data) {
                        Head::Complete { len, next } => {
                            self.ready.extend_from_slice(&data[..len]);
                            self.state = next;
                            data = &data[len..];
                            if data.is_empty() {
                                return;
                            }
                        }
                        Head::Ambiguous => return self.poison(),
                        Head::Partial | Head::Malformed => {
                            self.pending.extend_from_slice(data);
                            let moved = self.judge_pending();
                            if !moved {
                                return;
                            }
                            let rest = std::mem::take(&mut self.pending);
                            if rest.is_empty() {
                                return;
                            }
                            return self.feed(&rest);
                        }
                    }
                }
                State::Start
                | State::Head
                | State::Chunked(Chunk::Size)
                | State::Chunked(Chunk::Trailers) => {
                    self.pending.extend_from_slice(data);
                    if !self.judge_pending() {
                        return;
                    }
                    // judge_pending moved a complete unit to `ready` and left the rest
                    // in `pending`; feed the rest through the new state.
                    let rest = std::mem::take(&mut self.pending);
                    if rest.is_empty() {
                        return;
                    }
                    return self.feed(&rest);
                }
                State::Chunked(Chunk::Data(n)) => {
                    let take = (n.min(data.len() as u64)) as usize;
                    self.ready.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    let left = n - take as u64;
                    self.state = State::Chunked(if left == 0 {
                        Chunk::DataEnd(2)
                    } else {
                        Chunk::Data(left)
                    });
                    if data.is_empty() {
                        return;
                    }
                }
                State::Chunked(Chunk::DataEnd(k)) => {
                    let take = (k as usize).min(data.len());
                    self.ready.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    let left = k - take as u8;
                    self.state = State::Chunked(if left == 0 {
                        Chunk::Size
                    } else {
                        Chunk::DataEnd(left)
                    });
                    if data.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// Try to complete the unit held in `pending`. Returns true when the state moved on
    /// (the judged bytes are in `ready`, the remainder back in `pending`).
    fn judge_pending(&mut self) -> bool {
        match self.state {
            State::Start => {
                let n = self.pending.len().min(H2_PREFACE.len());
                if self.pending[..n] != H2_PREFACE[..n] {
                    self.state = State::Head;
                    return self.judge_pending();
                }
                if n == H2_PREFACE.len() {
                    self.pass_all();
                    return false;
                }
                false
            }
            State::Head => self.judge_head(),
            State::Chunked(Chunk::Size) => {
                let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
                    if self.pending.len() > 4096 {
                        self.pass_all();
                    }
                    return false;
                };
                match httparse::parse_chunk_size(&self.pending[..=end]) {
                    Ok(httparse::Status::Complete((_, size))) => {
                        self.release(end + 1);
                        self.state = State::Chunked(if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        });
                        true
                    }
                    _ => {
                        self.pass_all();
                        false
                    }
                }
            }
            State::Chunked(Chunk::Trailers) => {
                // Lines until an empty one; each line is released as it completes.
                let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
                    if self.pending.len() > self.max_head {
                        self.pass_all();
                    }
                    return false;
                };
                let empty = end == 0 || (end == 1 && self.pending[0] == b'\r');
                self.release(end + 1);
                if empty {
                    self.state = State::Head;
                }
                true
            }
            _ => false,
        }
    }

    fn judge_head(&mut self) -> bool {
        // Empty lines before a request line are allowed (RFC 9112 2.2).
        let skip = self
            .pending
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if skip > 0 {
            self.release(skip);
            if self.pending.is_empty() {
                return false;
            }
        }
        match inspect(&self.pending) {
            Head::Partial => {
                if self.pending.len() > self.max_head {
                    // Too large: let hyper see it and answer 431.
                    self.pass_all();
                } else if self.pending.len() > self.head_released + 1 {
                    let upto = self.pending.len() - 1;
                    self.ready
                        .extend_from_slice(&self.pending[self.head_released..upto]);
                    self.head_released = upto;
                }
                false
            }
            // Malformed (or more headers than we inspect): hyper decides.
            Head::Malformed => {
                self.pass_all();
                false
            }
            Head::Ambiguous => {
                self.poison();
                false
            }
            Head::Complete { len, next } => {
                self.release(len);
                self.state = next;
                true
            }
        }
    }

    fn poison(&mut self) {
        tracing::debug!("request with both Content-Length and Transfer-Encoding refused");
        self.pending.clear();
        self.head_released = 0;
        // hyper may hold the head's first lines; what follows makes it invalid.
        self.ready.extend_from_slice(POISON);
        self.state = State::Poisoned;
    }

    fn release(&mut self, n: usize) {
        let from = self.head_released.min(n);
        self.ready.extend_from_slice(&self.pending[from..n]);
        self.pending.drain(..n);
        self.head_released = 0;
    }

    fn pass_all(&mut self) {
        let from = self.head_released.min(self.pending.len());
        self.ready.extend_from_slice(&self.pending[from..]);
        self.pending.clear();
        self.head_released = 0;
        self.state = State::Pass;
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
            if this.ready_pos < this.ready.len() {
                let n = (this.ready.len() - this.ready_pos).min(buf.remaining());
                buf.put_slice(&this.ready[this.ready_pos..this.ready_pos + n]);
                this.ready_pos += n;
                if this.ready_pos == this.ready.len() {
                    this.ready.clear();
                    this.ready_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || this.state == State::Poisoned {
                return Poll::Ready(Ok(()));
            }
            if this.state == State::Pass && this.pending.is_empty() {
                // Nothing to inspect any more: read straight into hyper's buffer.
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if let State::Body(n) = this.state {
                // Body bytes need no inspection: read them straight into hyper's buffer.
                if this.pending.is_empty() && n >= buf.remaining() as u64 {
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    let got = (buf.filled().len() - before) as u64;
                    this.state = if got == n {
                        State::Head
                    } else {
                        State::Body(n - got)
                    };
                    return Poll::Ready(Ok(()));
                }
            }
            let mut scratch = std::mem::take(&mut this.scratch);
            scratch.clear();
            scratch.reserve(16 * 1024);
            let mut rb = ReadBuf::uninit(scratch.spare_capacity_mut());
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
            let got = rb.filled().len();
            if let Poll::Ready(Ok(())) = polled {
                if got > 0 {
                    this.feed(rb.filled());
                }
            }
            this.scratch = scratch;
            let head_in_progress =
                matches!(this.state, State::Start | State::Head) && !this.pending.is_empty();
            if head_in_progress && !this.timer_armed {
                let deadline = tokio::time::Instant::now() + this.header_timeout;
                match &mut this.head_timer {
                    Some(t) => t.as_mut().reset(deadline),
                    None => this.head_timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                this.timer_armed = true;
            } else if !head_in_progress {
                this.timer_armed = false;
            }
            match polled {
                Poll::Pending => {
                    if this.timer_armed {
                        if let Some(t) = &mut this.head_timer {
                            if t.as_mut().poll(cx).is_ready() {
                                // Too slow with its head: end the connection; hyper
                                // sees it close mid-message and drops it.
                                tracing::debug!("request head not complete in time; closing");
                                this.eof = true;
                                this.state = State::Poisoned;
                                this.pending.clear();
                                return Poll::Ready(Ok(()));
                            }
                        }
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if got == 0 => {
                    // The client closed: hand over whatever was held back, hyper decides.
                    this.eof = true;
                    let from = this.head_released.min(this.pending.len());
                    this.ready.extend_from_slice(&this.pending[from..]);
                    this.pending.clear();
                }
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

/// What a look at a request head found.
enum Head {
    Partial,
    Malformed,
    /// Both Content-Length and Transfer-Encoding.
    Ambiguous,
    /// `len` bytes of head, and how the bytes after it are framed.
    Complete {
        len: usize,
        next: State,
    },
}

/// Parse a head with httparse (hyper's own parser, so both agree on where it ends) and
/// read off its framing.
fn inspect(buf: &[u8]) -> Head {
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Malformed,
    };
    let mut cl: Option<Option<u64>> = None;
    let mut te: Option<bool> = None;
    let mut upgrade = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            cl = Some(
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok()),
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let chunked_last = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .map(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"))
                .unwrap_or(false);
            te = Some(chunked_last);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if cl.is_some() && te.is_some() {
        return Head::Ambiguous;
    }
    let connect = req
        .method
        .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"));
    let next = if upgrade || connect {
        // A tunnel may follow; its bytes are not HTTP.
        State::Pass
    } else {
        match (te, cl) {
            (Some(true), _) => State::Chunked(Chunk::Size),
            // A final coding other than chunked: hyper refuses it; follow no further.
            (Some(false), _) => State::Pass,
            (None, None) | (None, Some(Some(0))) => State::Head,
            (None, Some(Some(n))) => State::Body(n),
            // An unparsable Content-Length: hyper refuses it.
            (None, Some(None)) => State::Pass,
        }
    };
    Head::Complete { len, next }
}

#[cfg(test)]
mod tests;
