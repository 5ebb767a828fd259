//! A request that hyper's server parsed (over TLS, or HTTP/2) written to a backend's
//! socket: the head from its header map in one buffer, then the body frame by frame
//! from hyper's `Incoming`, framed by Content-Length when its length is known and as
//! chunks otherwise, the client's trailers in the last chunk (`proxy/trailers.rs`).
//! The header map has already been through the proxy's header rules (hop-by-hop fields
//! out, forwarding fields in); the framing fields are written here.

use super::early::{self, Early};
use crate::proxy::h1::io::{self, Limit, Timer};
use crate::upstream::Stream;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRAILER, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Uri};
use http_body::{Body as _, Frame};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::Poll;
use tango_core::http1::codec::{write_field, ChunkPrefix, LAST_CHUNK};
use tokio::time::Instant;

/// How the body is framed for the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body, and no framing field.
    None,
    Length(u64),
    Chunked,
}

impl Framing {
    /// The declared length the body ends at, when the body has one and announces no
    /// trailers (see [`framing`]).
    pub(crate) fn length(self) -> Option<u64> {
        match self {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }
}

/// The framing for a request with these parts: its exact length when hyper knows it
/// (Content-Length, or an HTTP/2 stream that has ended), chunked otherwise or when the
/// request announces trailers (`Trailer`): only a last chunk can carry them, and an
/// HTTP/2 client may send them after a body of a declared length. A request without a
/// body gets `Content-Length: 0` when the client sent one, or its method usually
/// carries a body.
pub(crate) fn framing(method: &Method, headers: &HeaderMap, body: &Incoming) -> Framing {
    if body.is_end_stream() {
        let says_length = headers.contains_key(CONTENT_LENGTH);
        let wants_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        return if says_length || wants_body {
            Framing::Length(0)
        } else {
            Framing::None
        };
    }
    match body.size_hint().exact() {
        Some(n) if !headers.contains_key(TRAILER) => Framing::Length(n),
        _ => Framing::Chunked,
    }
}

/// Append the request head: request line (origin form; CONNECT's authority), the
/// fields in the map's order (its own framing fields left out), the framing field.
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    framing: Framing,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    match (method, uri.authority()) {
        (&Method::CONNECT, Some(a)) => out.extend_from_slice(a.as_str().as_bytes()),
        _ => {
            let pq = uri.path_and_query().map_or("/", |p| p.as_str());
            out.extend_from_slice(pq.as_bytes());
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        Framing::None => {}
        Framing::Length(n) => write_field(out, b"content-length", n.to_string().as_bytes()),
        Framing::Chunked => write_field(out, b"transfer-encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Why a body could not be sent.
pub(crate) enum BodyFail {
    /// The backend answered while it took no more of it (see `exchange::early`): its
    /// answer is read from what came.
    Answered,
    /// The client's body failed (it went away, or broke its framing).
    Client,
    /// The client sent no more of its body by `deadline`.
    ClientTimedOut,
    /// The backend did not take it, or not by `deadline`.
    Upstream { timed_out: bool },
}

/// Send `body` to `s` framed as `framing`, by `deadline`; counting its bytes in
/// `counted` (the access log's), when given; what the backend sends meanwhile goes in
/// `early`.
///
/// A body of a declared length is whole once that length is in: the data that
/// completes it goes at once, and the body ends there, whether or not the client's
/// stream has ended (an HTTP/2 client may send END_STREAM late, or never; DATA beyond
/// the length is a stream error to it all the same). A chunked body ends with the last
/// chunk, which carries the client's trailers when it sent any (a body of a declared
/// length has no place for them), once the client's body has ended: hyper ends a body
/// its client reset with NO_ERROR as if it were whole (see [`confirm_end`]).
pub(crate) async fn body(
    s: &mut Stream,
    body: &mut Incoming,
    framing: Framing,
    deadline: Instant,
    t: &mut Timer<'_>,
    counted: Option<&AtomicU64>,
    early: &mut Early,
) -> Result<(), BodyFail> {
    let limit = Limit::Until(deadline);
    let chunked = framing == Framing::Chunked;
    let upstream = |e: std::io::Error| BodyFail::Upstream {
        timed_out: e.kind() == std::io::ErrorKind::TimedOut,
    };
    // The bytes a declared length still wants.
    let mut left = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };
    // The wait for the client's next frame is bounded by the try's time too: a client
    // that stops mid-body must not hold the backend's connection past it. (The writes
    // below wait for the same deadline.)
    t.reset(deadline);
    let mut trailers = None;
    loop {
        let Some(frame) = next_frame(body, t).await? else {
            if left.is_some_and(|n| n > 0) {
                // Short of its length: hyper ends a body so when its stream was reset.
                return Err(BodyFail::Client);
            }
            break;
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                trailers = frame.into_trailers().ok();
                continue;
            }
        };
        if data.is_empty() {
            continue;
        }
        if let Some(c) = counted {
            c.fetch_add(data.len() as u64, Relaxed);
        }
        let completes = match &mut left {
            // More than declared: never written, where it would begin another request.
            Some(n) if data.len() as u64 > *n => return Err(BodyFail::Client),
            Some(n) => {
                *n -= data.len() as u64;
                *n == 0
            }
            None => false,
        };
        if completes {
            confirm_end().await;
        }
        let prefix = chunked.then(|| ChunkPrefix::new(data.len() as u64));
        let mut parts = io::framed(prefix.as_ref(), &data);
        let sent = early::write_all(s, &mut parts, limit, t, &mut 0, early).await;
        if !sent.map_err(upstream)? {
            return Err(BodyFail::Answered);
        }
        if completes {
            return Ok(());
        }
    }
    if !chunked {
        return Ok(());
    }
    confirm_end().await;
    let last = trailers.as_ref().map(crate::proxy::trailers::last_chunk);
    let last = last.as_deref().unwrap_or(LAST_CHUNK);
    if !early::write(s, last, limit, t, early)
        .await
        .map_err(upstream)?
    {
        return Err(BodyFail::Answered);
    }
    Ok(())
}

/// The client's next frame, within the try's time; `None` at the body's end.
async fn next_frame(
    body: &mut Incoming,
    t: &mut Timer<'_>,
) -> Result<Option<Frame<Bytes>>, BodyFail> {
    let next = std::future::poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
        Poll::Ready(f) => Poll::Ready(Some(f)),
        Poll::Pending if t.poll_fired(cx) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    });
    match next.await {
        None => Err(BodyFail::ClientTimedOut),
        Some(None) => Ok(None),
        Some(Some(Ok(f))) => Ok(Some(f)),
        Some(Some(Err(_))) => Err(BodyFail::Client),
    }
}

/// A client's body has ended, or has all its declared bytes in: let hyper see first
/// whether its stream was reset. hyper ends an HTTP/2 request body whose stream the
/// client reset with NO_ERROR as it ends a whole one, and looks for a reset only while
/// the service waits: one wait, and a reset stream's request (one whose DATA went past
/// its length in the same read, too) is dropped here, before the backend is told the
/// body is whole. (An HTTP/1 body's end is its framing's; the wait costs it one poll.)
async fn confirm_end() {
    tokio::task::yield_now().await;
}
