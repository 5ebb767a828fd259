//! Request bodies on their way upstream: the bytes already read go out with the head
//! in one write; the rest is read from the client and written on, a read at a time
//! (never more read than the backend has taken), with chunked framing followed by
//! tango-core's `ChunkedTracker` so the body is forwarded as it came (but for a
//! trailer section, which goes with only the fields that may be trailers: `trailing`)
//! and its end is known. A backend that answers while it takes no more of the body
//! stops it (`exchange::early`); the client's body bytes already read are dropped then,
//! so only what follows the body can be read as the next request.

use super::io::{self, Limit};
use super::trailing::Section;
use super::Conn;
use crate::proxy::bufpool::Buf;
use crate::proxy::exchange::early::{self, Early};
use crate::upstream::{ConnPool, Upstream};
use std::io::{ErrorKind, IoSlice};
use tango_core::http1::codec::{ChunkedTracker, RequestFraming, RequestHead};
use tokio::time::Instant;

/// How far a request's body has been read.
pub(super) struct BodyIn {
    framing: Framing,
    /// No body at all (no framing, or `Content-Length: 0`).
    empty: bool,
    /// Where the body bytes read with the head end in the buffer (while not `spent`).
    end: usize,
    /// The buffer no longer holds the head: the body streamed past it, and the buffer
    /// holds only what followed the body.
    spent: bool,
    /// Body bytes read (chunk data only, for a chunked body).
    bytes: u64,
    /// The client was sent `100 Continue`.
    continued: bool,
}

enum Framing {
    None,
    /// Bytes not read yet.
    Length(u64),
    /// Boxed: most requests have no chunked body, and every request's future would
    /// otherwise hold the tracker.
    Chunked(Box<Chunked>),
}

/// A chunked body followed, with its trailer section held back: a backend gets only
/// the fields that may be trailers (`trailing`), in place of the section as it came.
#[derive(Default)]
struct Chunked {
    t: ChunkedTracker,
    /// The trailer section so far, as the client sent it (empty, unallocated, for a
    /// body without one).
    section: Section,
    /// Of the bytes the last take used, how many at their end are the section's.
    held: usize,
    /// Once the body is whole and had a section: what goes in its place.
    last: Vec<u8>,
}

impl Chunked {
    /// Follow the body through `input`, adding its data bytes to `data`: how many
    /// bytes of `input` are the body's. `Err` when they break chunked framing.
    fn take(&mut self, input: &[u8], data: &mut u64) -> Result<usize, ()> {
        let mut trailing = 0..0;
        let feed = self
            .t
            .feed_split(input, |r| *data += r.len() as u64, |r| trailing = r)
            .map_err(|_| ())?;
        self.held = trailing.len();
        self.last = self.section.take(&input[trailing], feed.done);
        Ok(feed.used)
    }
}

impl BodyIn {
    /// Follow the body of `head` through the bytes read with it. `Err` when they break
    /// chunked framing.
    pub(super) fn start(head: &RequestHead, buf: &[u8]) -> Result<BodyIn, ()> {
        let at = head.head_len;
        let avail = &buf[at..];
        let (framing, end, bytes) = match head.framing {
            RequestFraming::None => (Framing::None, at, 0),
            RequestFraming::Length(n) => {
                let take = n.min(avail.len() as u64);
                (Framing::Length(n - take), at + take as usize, take)
            }
            RequestFraming::Chunked => {
                let mut t = Box::<Chunked>::default();
                let mut data = 0u64;
                let used = t.take(avail, &mut data)?;
                (Framing::Chunked(t), at + used, data)
            }
        };
        Ok(BodyIn {
            framing,
            empty: matches!(
                head.framing,
                RequestFraming::None | RequestFraming::Length(0)
            ),
            end,
            spent: false,
            bytes,
            continued: false,
        })
    }

    /// The request has no body to send (none, or `Content-Length: 0`).
    pub(super) fn is_empty(&self) -> bool {
        self.empty
    }

    /// The whole body has been read from the client.
    pub(super) fn done(&self) -> bool {
        match &self.framing {
            Framing::None => true,
            Framing::Length(left) => *left == 0,
            Framing::Chunked(c) => c.t.is_done(),
        }
    }

    pub(super) fn bytes_in(&self) -> u64 {
        self.bytes
    }

    /// `n` more bytes from the client went to the backend through the tunnel the
    /// request opened: the access log counts them with the body's.
    pub(super) fn carried(&mut self, n: u64) {
        self.bytes += n;
    }

    /// Where what the client sent after this request starts in the buffer.
    pub(super) fn after(&self) -> usize {
        if self.spent {
            0
        } else {
            self.end
        }
    }

    /// The request is over: drop its bytes from the buffer, keeping what followed.
    pub(super) fn finish(&mut self, buf: &mut Buf) {
        let after = self.after();
        if after > 0 {
            let n = after.min(buf.len());
            buf.drain(..n);
        }
        self.spent = true;
        self.end = 0;
    }

    /// Of the body bytes last taken (those read with the head, or by the last read),
    /// how many at their end are trailer section bytes, which do not go on as they
    /// came: 0 but for a chunked body with trailers.
    fn held(&self) -> usize {
        match &self.framing {
            Framing::Chunked(c) => c.held,
            _ => 0,
        }
    }

    /// What goes on in place of a trailer section, once the body has ended whole:
    /// its fields that may be trailers and the body's final CRLF (nothing for a body
    /// without one).
    fn last(&self) -> &[u8] {
        match &self.framing {
            Framing::Chunked(c) => &c.last,
            _ => &[],
        }
    }

    /// Where the body bytes read with the head lie in the buffer (none once the body
    /// has streamed past it), as the client framed them.
    pub(super) fn with_head(&self, head: &RequestHead) -> std::ops::Range<usize> {
        if self.spent {
            0..0
        } else {
            head.head_len..self.end
        }
    }

    /// Take the body bytes at the start of `buf` (read after the head): how many there
    /// are. `Err` when chunked framing breaks.
    fn take(&mut self, buf: &[u8]) -> Result<usize, ()> {
        match &mut self.framing {
            Framing::None => Ok(0),
            Framing::Length(left) => {
                let n = (*left).min(buf.len() as u64);
                *left -= n;
                self.bytes += n;
                Ok(n as usize)
            }
            Framing::Chunked(c) => c.take(buf, &mut self.bytes),
        }
    }
}

/// How sending a request ended, when the try goes on.
pub(super) enum Sent {
    /// Head and body are with the backend.
    Whole,
    /// The client went away before its body was complete.
    ClientGone,
    /// The client sent no more of its body before the try's time ran out: its
    /// failure, not the backend's, which was waiting for the body.
    ClientTimedOut,
    /// The client's chunked body broke its framing.
    BadBody,
    /// The backend closed or reset its side before it took the whole body, or
    /// answered while it took no more of it (a `413` before reading on, then a close
    /// or nothing): its answer is read as usual, from what came already, and the
    /// connection is not reused after it.
    Stopped,
}

/// Why sending a request failed.
pub(super) enum SendError {
    /// Nothing was written: the pooled connection had been closed by the backend.
    Stale,
    /// The backend did not take the request, or not in time.
    Upstream { timed_out: bool },
}

/// Where a request goes: the backend's connection, what it sent back meanwhile, and
/// the try's deadline.
pub(super) struct Upward<'u, 'p> {
    pub(super) up: &'u mut Upstream<&'p ConnPool>,
    pub(super) early: &'u mut Early,
    pub(super) deadline: Instant,
}

/// Send the request of `head` (its body followed by `body`): the head written for the
/// backend in `out`, then the body.
pub(super) async fn send(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    head: &RequestHead,
    body: &mut BodyIn,
    out: &[u8],
    mut to: Upward<'_, '_>,
) -> Result<Sent, SendError> {
    if body.spent {
        // Its bytes are gone; the retry policy never sends such a request twice.
        return Err(SendError::Upstream { timed_out: false });
    }
    if let Err(e) = send_head(c, buf, head, body, out, &mut to).await {
        return match e {
            Some(e) => Err(e),
            None => Ok(Sent::Stopped),
        };
    }
    let expect_continue = head.expect_continue && body.end == head.head_len && !body.done();
    if body.done() {
        return Ok(Sent::Whole);
    }
    if expect_continue && !body.continued {
        // The client waits for this before it sends the body (RFC 9110 10.1.1).
        let go_on = b"HTTP/1.1 100 Continue\r\n\r\n";
        if io::write(&c.s, go_on, Limit::Stall(c.l.send_timeout), &mut c.timer)
            .await
            .is_err()
        {
            return Ok(Sent::ClientGone);
        }
        body.continued = true;
    }
    // Boxed: most bodies come with their head, and this future would make every
    // request's larger.
    Box::pin(stream_rest(c, buf, body, to)).await
}

/// The head for the backend (`out`) and the body bytes read with the request's head,
/// in one write. `Err(None)`: the backend stopped taking them after some went out, or
/// answered meanwhile ([`Sent::Stopped`]).
async fn send_head(
    c: &mut Conn<'_>,
    buf: &[u8],
    head: &RequestHead,
    body: &BodyIn,
    out: &[u8],
    to: &mut Upward<'_, '_>,
) -> Result<(), Option<SendError>> {
    let initial = &buf[head.head_len..body.end - body.held()];
    let mut wrote = 0;
    let last = body.last();
    let mut bufs = [IoSlice::new(out), IoSlice::new(initial), IoSlice::new(last)];
    // The third piece only for a trailer section: the writer would trim it otherwise.
    let pieces = if last.is_empty() { 2 } else { 3 };
    let limit = Limit::Until(to.deadline);
    let up = &mut *to.up;
    let sent = early::write_all(
        &mut up.stream,
        &mut bufs[..pieces],
        limit,
        &mut c.timer,
        &mut wrote,
        to.early,
    )
    .await;
    let stopped = match sent {
        Ok(true) => return Ok(()),
        Ok(false) => None,
        Err(e) => Some(e.kind()),
    };
    Err(match (wrote, up.reused, stopped) {
        (_, _, Some(ErrorKind::TimedOut)) => Some(SendError::Upstream { timed_out: true }),
        // Nothing of the request went: the backend had closed the connection while
        // it was idle (what it sent, if anything, answers no request of this one's).
        (0, true, _) => Some(SendError::Stale),
        _ => None,
    })
}

/// A failed write of the body upstream: a timeout, or the backend's close.
fn upstream_error(e: &std::io::Error) -> Result<Sent, SendError> {
    if e.kind() == ErrorKind::TimedOut {
        Err(SendError::Upstream { timed_out: true })
    } else {
        Ok(Sent::Stopped)
    }
}

/// The rest of the body, read from the client and written upstream until it ends.
async fn stream_rest(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    body: &mut BodyIn,
    to: Upward<'_, '_>,
) -> Result<Sent, SendError> {
    // Everything in the buffer has gone upstream (the body is not complete, so no
    // byte after it was read): from here it holds the body's next bytes.
    body.spent = true;
    buf.clear();
    let limit = Limit::Until(to.deadline);
    loop {
        io::grow_if_full(buf);
        match io::read(&c.s, buf, limit, &mut c.timer).await {
            Ok(0) => return Ok(Sent::ClientGone),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::TimedOut => return Ok(Sent::ClientTimedOut),
            Err(_) => return Ok(Sent::ClientGone),
        }
        let Ok(n) = body.take(buf) else {
            return Ok(Sent::BadBody);
        };
        let up = &mut to.up.stream;
        let pass = &buf[..n - body.held()];
        let mut bufs = [IoSlice::new(pass), IoSlice::new(body.last())];
        let sent = early::write_all(up, &mut bufs, limit, &mut c.timer, &mut 0, to.early).await;
        // The body's bytes go, sent or not: only what follows the body (a pipelined
        // request) may be read as a request.
        buf.drain(..n);
        match sent {
            Ok(true) => {}
            Ok(false) => return Ok(Sent::Stopped),
            Err(e) => return upstream_error(&e),
        }
        if body.done() {
            return Ok(Sent::Whole);
        }
    }
}

/// Why no more of a body could be read.
pub(super) enum ReadFail {
    /// The client went away, or sent nothing by the deadline.
    ClientGone { timed_out: bool },
    /// The client's chunked body broke its framing.
    BadBody,
}

/// The body's next bytes from the client, after those read with the head have gone
/// (the caller drops what it sent from the start of `buf` before calling again):
/// `Ok(n)`, the first `n` bytes of `buf` are the body's as the client framed them; what
/// follows them is the client's next request. Used where the body does not go out as
/// it came (to an HTTP/2 backend).
pub(super) async fn read_next(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    body: &mut BodyIn,
    deadline: Instant,
) -> Result<usize, ReadFail> {
    if !body.spent {
        body.spent = true;
        buf.clear();
    }
    loop {
        io::grow_if_full(buf);
        match io::read(&c.s, buf, Limit::Until(deadline), &mut c.timer).await {
            Ok(0) => return Err(ReadFail::ClientGone { timed_out: false }),
            Ok(_) => {}
            Err(e) => {
                let timed_out = e.kind() == ErrorKind::TimedOut;
                return Err(ReadFail::ClientGone { timed_out });
            }
        }
        let n = body.take(buf).map_err(|()| ReadFail::BadBody)?;
        if n > 0 || body.done() {
            return Ok(n);
        }
    }
}
