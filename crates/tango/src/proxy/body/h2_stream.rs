//! The bodies of a request to an HTTP/2 backend for hyper's clients: the client's
//! request body pumped into the stream ([`Pump`]) and the backend's response body read
//! from it ([`H2Body`]), both frame by frame with their trailers (only the fields that
//! may be trailers, `proxy/trailers.rs`, as on the HTTP/1 path).
//!
//! The request body is pumped from the response body's poll once the head is in: no
//! task per request, and the request's data keeps moving for as long as the client
//! reads its answer (bidirectional streaming).

use crate::proxy::accounting::{BodyEnd, Owed};
use crate::runtime::InFlight;
use crate::upstream::h2pool::Stream;
use ::h2::{Reason, RecvStream, SendStream};
use bytes::Bytes;
use http_body::{Body, Frame};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A client's request body on its way into an HTTP/2 stream: data as the stream's
/// flow control takes it, then the trailers (those that may be trailers) or the end of
/// the stream.
pub(crate) struct Pump {
    src: Incoming,
    dst: SendStream<Bytes>,
    /// Data taken from the client and not yet sent.
    pending: Bytes,
    /// The bytes a declared length (one announcing no trailers) still wants: once it
    /// is all in, the body is whole, and the stream ends without waiting for the
    /// client's END_STREAM, which a client may send late or never.
    left: Option<u64>,
    counted: Option<Arc<AtomicU64>>,
    /// The client's body broke off.
    broke: bool,
    /// The client's body has ended; the stream's end goes on the next poll.
    ended: bool,
}

impl Pump {
    /// `length`: the body's declared length, when it is to end there.
    pub(crate) fn new(
        src: Incoming,
        dst: SendStream<Bytes>,
        length: Option<u64>,
        counted: Option<Arc<AtomicU64>>,
    ) -> Self {
        Pump {
            src,
            dst,
            pending: Bytes::new(),
            left: length,
            counted,
            broke: false,
            ended: false,
        }
    }

    /// Whether the client, not the backend, holds the body up: the pump waits for the
    /// client's next frame (nothing taken from it waits for the stream's window), or
    /// the client's body broke off.
    pub(crate) fn client_at_fault(&self) -> bool {
        self.broke || self.pending.is_empty()
    }

    /// Whether the client's body broke off (what ended the pump, when it ended in error).
    pub(crate) fn client_broke(&self) -> bool {
        self.broke
    }

    /// Reset the stream: the body will not be finished.
    pub(crate) fn cancel(&mut self) {
        self.dst.send_reset(Reason::CANCEL);
    }

    /// Move what can be moved; `Ready` once the body has gone (or failed either way).
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        loop {
            if !self.pending.is_empty() {
                if self.dst.capacity() == 0 {
                    self.dst.reserve_capacity(self.pending.len());
                    match self.dst.poll_capacity(cx) {
                        Poll::Ready(Some(Ok(_))) => continue,
                        Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Err(())),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                let n = self.dst.capacity().min(self.pending.len());
                let chunk = self.pending.split_to(n);
                if self.dst.send_data(chunk, false).is_err() {
                    return Poll::Ready(Err(()));
                }
                continue;
            }
            if self.ended {
                let ended = self.dst.send_data(Bytes::new(), true);
                return Poll::Ready(ended.map_err(|_| ()));
            }
            if self.left == Some(0) {
                return self.end_next(cx);
            }
            let frame = match Pin::new(&mut self.src).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return self.end_next(cx),
                Poll::Ready(Some(Err(_))) => {
                    // The client's body broke off: the backend must not take it whole.
                    self.dst.send_reset(Reason::CANCEL);
                    self.broke = true;
                    return Poll::Ready(Err(()));
                }
                Poll::Ready(Some(Ok(f))) => f,
            };
            match frame.into_data() {
                Ok(data) => {
                    if let Some(c) = &self.counted {
                        c.fetch_add(data.len() as u64, Relaxed);
                    }
                    // hyper has checked the data against the declared length: more is
                    // a stream error, never data.
                    if let Some(n) = &mut self.left {
                        *n = n.saturating_sub(data.len() as u64);
                    }
                    self.pending = data;
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let sent = match crate::proxy::trailers::keep(trailers) {
                            Some(t) => self.dst.send_trailers(t),
                            None => self.dst.send_data(Bytes::new(), true),
                        };
                        return Poll::Ready(sent.map_err(|_| ()));
                    }
                }
            }
        }
    }

    /// The client's body is whole; the stream's end goes on the next poll, not yet:
    /// hyper ends a body whose stream the client reset with NO_ERROR as it ends a whole
    /// one, and drops the request for a reset only once its task waits
    /// (`exchange::send::confirm_end`).
    fn end_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        self.ended = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A backend's HTTP/2 response body for hyper, with its trailers; while it is read,
/// the request body still going the other way is pumped too.
pub(crate) struct H2Body {
    recv: RecvStream,
    pump: Option<Pump>,
    data_done: bool,
    done: bool,
    /// How long the backend may go without sending.
    stall: super::Stall,
    /// The try's verdict, given when the body ends (before `held` is let go of).
    owed: Option<Owed>,
    /// The client's request body broke off, and the pump reset the stream for it: what
    /// the stream does after that is not the backend's doing.
    client_broke: bool,
    /// The stream's place on its connection and the backend's in-flight count, let go
    /// of when the body ends.
    held: Option<(Stream, InFlight)>,
}

fn h2_error(e: ::h2::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl H2Body {
    /// The body of the response whose stream is `recv`, with the request body still
    /// going (`pump`); `stream` and `in_flight` are held until it ends, and `owed` is
    /// told how it ended.
    pub(crate) fn new(
        recv: RecvStream,
        pump: Option<Pump>,
        stall: Duration,
        held: (Stream, InFlight),
        owed: Option<Owed>,
    ) -> Self {
        let mut body = H2Body {
            recv,
            pump,
            data_done: false,
            done: false,
            stall: super::Stall::new(stall),
            owed,
            client_broke: false,
            held: Some(held),
        };
        // An answer that ended with its head (gRPC's trailers-only one) is whole now,
        // and says so: hyper then ends the client's stream with the head too, where a
        // gRPC client looks for a status that has no trailers to come in.
        if body.recv.is_end_stream() {
            body.end(BodyEnd::Whole);
        }
        body
    }

    /// The body has ended as `how` says: the try is judged, then what it held let go.
    fn end(&mut self, how: BodyEnd) {
        if let Some(mut owed) = self.owed.take() {
            owed.ended(how);
        }
        self.done = true;
        self.pump = None;
        self.held = None;
    }

    /// Who broke the stream off: the client when its request body did, otherwise the
    /// backend (a reset, a broken connection, a length it did not keep).
    fn broken_by(&self) -> BodyEnd {
        if self.client_broke {
            BodyEnd::Client
        } else {
            BodyEnd::Backend
        }
    }

    /// Nothing came: pending, unless the backend has been silent for too long. A
    /// backend silent while the client's body is still coming, and the pump waits for
    /// the client, may be waiting for that body: the silence is not charged to it.
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, std::io::Error>>> {
        if self.stall.poll_expired(cx) {
            let waits_for_client = self.pump.as_ref().is_some_and(Pump::client_at_fault);
            self.end(if waits_for_client {
                BodyEnd::Client
            } else {
                self.broken_by()
            });
            let e = crate::proxy::h1::io::timed_out("the backend sent nothing in time");
            return Poll::Ready(Some(Err(e)));
        }
        Poll::Pending
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.done
    }

    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(p) = &mut self.pump {
            if let Poll::Ready(r) = p.poll(cx) {
                self.client_broke |= r.is_err() && p.client_broke();
                self.pump = None;
            }
        }
        while !self.done && !self.data_done {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(d))) => {
                    let _ = self.recv.flow_control().release_capacity(d.len());
                    self.stall.progressed();
                    if !d.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(d))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.end(self.broken_by());
                    return Poll::Ready(Some(Err(h2_error(e))));
                }
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => return self.wait(cx),
            }
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.recv.poll_trailers(cx) {
            Poll::Ready(r) => {
                self.end(if r.is_ok() {
                    BodyEnd::Whole
                } else {
                    self.broken_by()
                });
                // Only the fields that may be trailers, as from an HTTP/1 backend.
                match r.map(|t| t.and_then(crate::proxy::trailers::keep)) {
                    Ok(Some(t)) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
                    Ok(None) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(h2_error(e)))),
                }
            }
            Poll::Pending => self.wait(cx),
        }
    }
}
