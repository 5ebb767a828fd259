//! The body tango sends back to clients that hyper serves (TLS, HTTP/2): its own short
//! answers, or a backend's body read straight from the upstream connection by the
//! response's framing (a length, chunks, or until the backend closes). Bodies stream a
//! read at a time; nothing is buffered whole. The upstream connection goes back to its
//! pool when the body has ended where its framing said, and the in-flight count is
//! released when the client has it all or goes away. The chunks that came with the
//! head are followed before hyper has the head, so a body broken there is answered
//! `502` rather than begun and cut. A chunked body's trailer section is kept as it
//! comes (bounded by the chunked tracker's trailer limits: past them the body is bad
//! framing) and handed on after the data as a trailers frame, of the fields that may
//! be trailers (`proxy/trailers.rs`). How a backend's body ends judges its try
//! (`accounting::Owed`): an error reading it is the backend's failure; a body hyper
//! drops unfinished was left by the client.

pub(crate) mod h2_stream;

use super::accounting::{BodyEnd, Owed};
use super::bufpool::Buf;
use super::exchange::stream;
use super::h1::io;
use crate::runtime::{BackendState, InFlight};
use crate::upstream::Upstream;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tango_core::http1::codec::{ChunkedTracker, ResponseFraming};
use tokio::time::{Instant, Sleep};

/// The body of a response sent to a client hyper serves.
pub(crate) enum ProxyBody {
    Upstream(Box<UpstreamBody>),
    Full(Option<Bytes>),
    /// A backend's HTTP/2 response (`exchange::h2`).
    H2(Box<h2_stream::H2Body>),
}

impl ProxyBody {
    pub(crate) fn text(s: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(s.into()))
    }

    pub(crate) fn empty() -> Self {
        ProxyBody::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ProxyBody::Upstream(b) => b.poll(cx),
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::H2(b) => b.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream(b) => b.done && b.first.is_none() && b.trailers.is_none(),
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream(b) => match &b.framing {
                Following::Length(n) => SizeHint::with_exact(*n),
                _ => SizeHint::default(),
            },
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::H2(_) => SizeHint::default(),
        }
    }
}

/// How far through its framing a backend's body is.
enum Following {
    /// Bytes not yet handed on.
    Length(u64),
    Chunked(ChunkedTracker),
    /// Until the backend closes.
    Close,
}

/// A backend's response body, read from its connection.
pub(crate) struct UpstreamBody {
    up: Option<Upstream<Arc<BackendState>>>,
    /// The data of the chunks that came with the head, taken before the response was
    /// handed to hyper (see [`ProxyBody::upstream`]); handed on first.
    first: Option<Bytes>,
    /// Bytes read from the backend; those from `at` are not handed on yet.
    buf: Buf,
    at: usize,
    framing: Following,
    /// A chunked body's trailer section so far (empty when it has none).
    section: Vec<u8>,
    /// The backend's trailers, once its body has ended; handed on after its data.
    trailers: Option<HeaderMap>,
    /// The backend keeps the connection open after the response.
    keep_alive: bool,
    done: bool,
    /// How long the backend may go without sending a byte.
    stall: Stall,
    /// The try's verdict, given when the body ends; before the in-flight count, so it
    /// is recorded first when the body is dropped.
    owed: Option<Owed>,
    _in_flight: InFlight,
}

impl ProxyBody {
    /// The body of a backend's response whose head ends at `at` in `buf`, framed as
    /// `framing`, read from `up`; an empty body when there is none (the connection then
    /// goes back to its pool at once). The chunks that came with the head are followed
    /// here, before hyper has the head to send: `Err` when their framing is broken, so
    /// the client can still be answered instead. `owed` is told how the body ended.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn upstream(
        up: Upstream<Arc<BackendState>>,
        buf: Buf,
        at: usize,
        framing: ResponseFraming,
        keep_alive: bool,
        stall: Duration,
        in_flight: InFlight,
        owed: Option<Owed>,
    ) -> Result<ProxyBody, std::io::Error> {
        let framing = match framing {
            ResponseFraming::Length(n) => Following::Length(n),
            ResponseFraming::Chunked => Following::Chunked(ChunkedTracker::new()),
            ResponseFraming::CloseDelimited => Following::Close,
            ResponseFraming::NoBody => Following::Length(0),
        };
        let mut b = UpstreamBody {
            up: Some(up),
            first: None,
            buf,
            at,
            framing,
            section: Vec::new(),
            trailers: None,
            keep_alive,
            done: false,
            stall: Stall::new(stall),
            owed,
            _in_flight: in_flight,
        };
        match b.framing {
            Following::Length(0) => {
                b.finish();
                return Ok(ProxyBody::empty());
            }
            Following::Chunked(_) if b.at < b.buf.len() => match b.take() {
                Ok(first) => b.first = first,
                Err(e) => {
                    // Not the client's: the backend's body is unframeable from its start.
                    // The client is answered 502, counted as its error there.
                    b.settle(BodyEnd::Unsent);
                    return Err(e);
                }
            },
            _ => {}
        }
        Ok(ProxyBody::Upstream(Box::new(b)))
    }
}

impl UpstreamBody {
    /// The body has ended: the connection serves another request if the response
    /// ended where its framing said, with nothing after it.
    fn finish(&mut self) {
        self.settle(BodyEnd::Whole);
        self.done = true;
        let clean = self.at == self.buf.len() && !matches!(self.framing, Following::Close);
        if let Some(up) = self.up.take() {
            if clean && self.keep_alive {
                up.release(Instant::now());
            }
        }
    }

    /// Judge the try now: the body has ended as `end` says. A body dropped before it
    /// ended (the client went away) is judged then, as the client's.
    fn settle(&mut self, end: BodyEnd) {
        if let Some(mut owed) = self.owed.take() {
            owed.ended(end);
        }
    }

    /// The next frame from the bytes read, if they hold body data.
    fn take(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        let input = &self.buf[self.at..];
        let data = match &mut self.framing {
            Following::Length(left) => {
                let n = (*left).min(input.len() as u64) as usize;
                *left -= n as u64;
                self.at += n;
                let data = Bytes::copy_from_slice(&input[..n]);
                if *left == 0 {
                    self.finish();
                }
                data
            }
            Following::Chunked(t) => {
                let mut data = BytesMut::new();
                let section = &mut self.section;
                let feed = t
                    .feed_split(
                        input,
                        |r| data.extend_from_slice(&input[r]),
                        |r| section.extend_from_slice(&input[r]),
                    )
                    .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "bad chunk"))?;
                self.at += feed.used;
                if feed.done {
                    if !self.section.is_empty() {
                        self.trailers = super::trailers::parse_section(&self.section);
                    }
                    self.finish();
                }
                data.freeze()
            }
            Following::Close => {
                self.at += input.len();
                Bytes::copy_from_slice(input)
            }
        };
        Ok((!data.is_empty()).then_some(data))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(data) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        loop {
            if self.done {
                return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            // Every error here is the backend's: bad chunked framing, a failed read, an
            // end short of the framing, silence past the stall timeout. A client that
            // goes away is not seen here: hyper drops the body.
            if self.at < self.buf.len() {
                match self.take() {
                    Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(None) => continue,
                    Err(e) => {
                        self.settle(BodyEnd::Backend);
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            match self.fill(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    self.settle(BodyEnd::Backend);
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Read the next bytes from the backend into the emptied buffer.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        let Some(up) = &mut self.up else {
            return Poll::Ready(Err(ErrorKind::NotConnected.into()));
        };
        self.buf.clear();
        self.at = 0;
        match stream::poll_read(&mut up.stream, cx, &mut self.buf) {
            Poll::Ready(Ok(0)) if matches!(self.framing, Following::Close) => {
                self.finish();
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(ErrorKind::UnexpectedEof.into())),
            Poll::Ready(Ok(_)) => {
                self.stall.progressed();
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        if self.stall.poll_expired(cx) {
            return Poll::Ready(Err(io::timed_out("the backend sent nothing in time")));
        }
        Poll::Pending
    }
}

/// How long a backend's body may send nothing: the timer is made at the first wait,
/// set when a wait begins after progress, and left running across the polls of one
/// wait, so a quiet backend is cut off `after` its last byte, however often the body
/// is polled meanwhile.
pub(crate) struct Stall {
    after: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Stall {
    pub(crate) fn new(after: Duration) -> Self {
        Self {
            after,
            timer: None,
            armed: false,
        }
    }

    /// Bytes came: the next wait starts the clock again.
    pub(crate) fn progressed(&mut self) {
        self.armed = false;
    }

    /// Nothing came on this poll: whether the backend has now been silent too long
    /// (if not, the timer will wake the task when it is).
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = Instant::now() + self.after;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !std::mem::replace(&mut self.armed, true) {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx).is_ready()
    }
}
