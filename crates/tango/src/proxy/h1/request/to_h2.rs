//! An engine request to a pool whose backends speak HTTP/2 (`protocol = "h2"`): the
//! parsed head translated into an HTTP/2 request (the fields as the HTTP/1 path
//! forwards them: hop-by-hop ones out, X-Forwarded-*, X-Request-Id; `te: trailers`
//! kept), the body's data sent as the client framed it (a length, or chunks decoded,
//! their trailer section as the stream's trailers, with only the fields that may trail),
//! the response written back as HTTP/1.1: its length when the backend gave one,
//! otherwise chunks (with the trailers in the last one), or until close to an HTTP/1.0
//! client. The route's header edits apply both ways as on the HTTP/1 path, and a gRPC
//! request tango fails is answered as gRPC. Everything happens in the connection's
//! task, as for HTTP/1 backends.

mod respond;

use super::super::body::{self, ReadFail};
use super::super::io::{self, Limit};
use super::super::{Conn, Next};
use super::{Abort, Req, Route};
use crate::proxy::bufpool::Buf;
use crate::proxy::error::ProxyError;
use crate::proxy::exchange::h2 as up;
use crate::proxy::exchange::{self, Target, Tries};
use crate::runtime::{PoolRuntime, RouteRules};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use http::{HeaderMap, Method, Request};
use respond::{respond, write_head, Framing};
use std::time::Duration;
use tango_core::http1::codec::{ChunkedTracker, RequestFraming, RequestHead, TargetForm};
use tango_core::retry::Outcome;
use tango_core::rewrite::{host_of, Apply, Vars};
use tokio::time::Instant;

/// Serve request `r` (in `buf`) at `pool`, whose backends speak HTTP/2, with the
/// route's edits. A gRPC request tango fails is answered as gRPC (`proxy/grpc.rs`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    pool: &PoolRuntime,
    key: Option<u64>,
    route: Route<'_, '_>,
    started: Instant,
    target: &mut Target,
) -> Abort {
    let grpc = is_grpc(r.head, buf);
    match tries(c, buf, r, pool, key, route, started, target).await {
        Abort::Failed(e) if grpc => Box::pin(grpc_error(c, r, &e, route.apply)).await,
        a => a,
    }
}

/// The request is gRPC (`content-type: application/grpc...`).
fn is_grpc(head: &RequestHead, buf: &[u8]) -> bool {
    head.headers.iter().any(|h| {
        h.name().of(buf).eq_ignore_ascii_case(b"content-type")
            && h.value().of(buf).starts_with(b"application/grpc")
    })
}

/// Answer a gRPC request tango could not get answered as gRPC answers, in HTTP/1.1: a
/// `200` whose head carries `grpc-status` and `grpc-message`, and no body.
async fn grpc_error(
    c: &mut Conn<'_>,
    r: &Req<'_>,
    e: &ProxyError,
    apply: Option<&Apply<'_>>,
) -> Abort {
    tracing::debug!(error = %e, blame = ?e.blame(), "request failed");
    let resp = crate::proxy::grpc::error_response(e);
    let keep = r.head.keep_alive && r.body.done() && !c.closing();
    let mut out = Vec::with_capacity(256);
    let framing = Framing::Length(0);
    let version = r.head.version;
    write_head(
        &mut out,
        version,
        200,
        resp.headers(),
        framing,
        keep,
        None,
        apply,
    );
    let limit = Limit::Stall(c.l.send_timeout);
    let next = match io::write(&c.s, &out, limit, &mut c.timer).await {
        Ok(()) if keep => Next::KeepAlive,
        Ok(()) if r.body.done() => Next::Close,
        Ok(()) => Next::Linger,
        Err(_) => Next::Close,
    };
    // Counted and logged as the failure it stands for.
    let status = e.status().as_u16();
    Abort::Served {
        next,
        status,
        bytes: 0,
    }
}

/// The tries of `serve`.
#[allow(clippy::too_many_arguments)]
async fn tries(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    pool: &PoolRuntime,
    key: Option<u64>,
    route: Route<'_, '_>,
    started: Instant,
    target: &mut Target,
) -> Abort {
    let (method, path, authority, fields, te) = match translate(c, buf, r, route.rules) {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let rt = c.ctx.rt.as_ref();
    let deadline = started + pool.cfg.timeout.min(c.ctx.settings.request_timeout);
    let resendable = r.head.method.is_idempotent() && r.body.is_empty();
    let mut tries = Tries::new(rt, pool, key, deadline, resendable);
    let mut now = started;
    loop {
        let (i, _, remaining) = match tries.next(target, now) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        let address = &pool.backends[i].address;
        let req = match up::head(&method, &path, authority.as_deref(), address, &fields, te) {
            Ok(req) => req,
            Err(e) => return e.into(),
        };
        match attempt(c, buf, r, pool, i, remaining, req, route.apply, target).await {
            Ok(a) => return a,
            Err(o) => {
                if let Err(e) = tries.failed(o) {
                    return e.into();
                }
            }
        }
        now = Instant::now();
    }
}

pub(super) type Translated = (Method, String, Option<String>, HeaderMap, bool);

/// The parts of the HTTP/2 request: method, path, authority, fields (with the route's
/// request edits), `te: trailers`.
pub(super) fn translate(
    c: &Conn<'_>,
    buf: &[u8],
    r: &Req<'_>,
    rules: Option<&RouteRules>,
) -> Result<Translated, ProxyError> {
    let head = r.head;
    let bad = |_| ProxyError::BadRequest("a request HTTP/2 cannot carry");
    let method = Method::from_bytes(head.method_span.of(buf)).map_err(bad)?;
    let origin = head.origin.of(buf);
    let path = match head.form {
        TargetForm::Origin | TargetForm::Asterisk => origin.to_vec(),
        TargetForm::Absolute if origin.starts_with(b"/") => origin.to_vec(),
        TargetForm::Absolute => [b"/", origin].concat(),
        TargetForm::Authority => return Err(crate::proxy::error::CONNECT_TO_H2),
    };
    let path = String::from_utf8(path).map_err(|_| ProxyError::BadRequest("invalid target"))?;
    let host = head.host.map(|h| h.of(buf));
    let authority = host
        .and_then(|h| std::str::from_utf8(h).ok())
        .map(str::to_owned);
    let mut fields = HeaderMap::with_capacity(head.headers.len() + 4);
    let mut te = false;
    for h in head.headers.iter() {
        let (name, value) = (h.name().of(buf), h.value().of(buf));
        if name.eq_ignore_ascii_case(b"te") {
            te |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
        }
        if h.is_hop_by_hop() || name.eq_ignore_ascii_case(b"x-request-id") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            fields.append(n, v);
        }
    }
    let host_value = host.and_then(|h| HeaderValue::from_bytes(h).ok());
    let xfh = host_value.or_else(|| {
        fields
            .get(&crate::proxy::headers::X_FORWARDED_HOST)
            .cloned()
    });
    crate::proxy::headers::add_forwarded(&mut fields, &c.ctx.peer_value, false, xfh);
    let mut hex = [0; 32];
    let request_id = r.id.bytes(buf, &mut hex);
    if let Ok(id) = HeaderValue::from_bytes(request_id) {
        fields.insert(&crate::proxy::headers::X_REQUEST_ID, id);
    }
    // After tango's own fields, so a rule can replace them, as on the HTTP/1 path.
    if let Some(x) = rules {
        let vars = Vars {
            client_addr: c.ctx.peer_value.as_bytes(),
            request_id,
            host: host.map_or(&[][..], host_of),
        };
        crate::proxy::rules::apply(&mut fields, &x.request_map, &vars);
    }
    if let RequestFraming::Length(n) = head.framing {
        fields.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok((method, path, authority, fields, te))
}

/// One try at backend `i`: `Ok` when the request was answered (or cannot go on).
#[allow(clippy::too_many_arguments)]
pub(super) async fn attempt(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    pool: &PoolRuntime,
    i: usize,
    remaining: Duration,
    req: Request<()>,
    apply: Option<&Apply<'_>>,
    target: &mut Target,
) -> Result<Abort, Outcome> {
    let rt = c.ctx.rt.as_ref();
    let in_flight = exchange::reserve(pool, i, target.load_cap, &*pool.backends[i])?;
    let mut stream = up::open(rt, pool, i, remaining).await?;
    let sent_at = Instant::now();
    let deadline = sent_at + remaining.min(pool.cfg.try_timeout);
    let empty = r.body.is_empty();
    let (response, mut send) = up::start(rt, pool, i, &mut stream, req, empty).await?;
    if !empty {
        match send_body(c, buf, r, &mut send, deadline).await {
            Ok(()) => {}
            // The backend may have answered already (say, refusing the body).
            Err(BodyEnd::Upstream) => {}
            Err(BodyEnd::Client(ReadFail::ClientGone { timed_out: false })) => {
                send.send_reset(::h2::Reason::CANCEL);
                return Ok(Abort::ClientGone);
            }
            // The backend was waiting for the body: the client's failure, not its.
            Err(BodyEnd::Client(ReadFail::ClientGone { timed_out: true })) => {
                send.send_reset(::h2::Reason::CANCEL);
                return Ok(ProxyError::ClientTimeout.into());
            }
            Err(BodyEnd::Client(ReadFail::BadBody)) => {
                send.send_reset(::h2::Reason::CANCEL);
                return Ok(ProxyError::BadRequest("invalid chunked body").into());
            }
        }
    }
    let watch_from = sent_at + exchange::WATCH_CLIENT_AFTER;
    let response = up::FinalHead::new(response);
    let Some(got) = exchange::head_unless_client_left(response, deadline, (&c.s, watch_from)).await
    else {
        return Ok(Abort::ClientGone);
    };
    let at = Instant::now();
    let took = at - sent_at;
    target.upstream = Some(took);
    let resp = match got {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            // Sent again only from the bytes still in the buffer.
            let resendable = r.body.with_head(r.head).end > 0;
            return Err(up::head_failed(rt, pool, i, &stream, took, &e, resendable));
        }
        Err(_) => {
            crate::proxy::accounting::record(rt, pool, i, None, Some(took));
            return Err(Outcome::TimedOut);
        }
    };
    let status = resp.status().as_u16();
    target.status = status;
    crate::proxy::accounting::record(rt, pool, i, Some(status), Some(took));
    let (next, bytes, end) = respond(c, r, resp, apply).await;
    // Judged before the in-flight count goes, as on the HTTP/1 path.
    crate::proxy::accounting::body_end(rt, pool, i, status, end);
    drop((stream, in_flight));
    Ok(Abort::Served {
        next,
        status,
        bytes,
    })
}

enum BodyEnd {
    Upstream,
    Client(ReadFail),
}

/// The body's data, as the client framed it, into the stream; a chunked body's
/// trailer section, held back until whole, as the stream's trailing HEADERS with only
/// the fields that may be trailers (`trailers::parse_section`, the rule of every other
/// path). A body without a section pays nothing for it: the section stays unallocated.
async fn send_body(
    c: &mut Conn<'_>,
    buf: &mut Buf,
    r: &mut Req<'_>,
    send: &mut ::h2::SendStream<Bytes>,
    deadline: Instant,
) -> Result<(), BodyEnd> {
    let mut chunks = matches!(r.head.framing, RequestFraming::Chunked).then(ChunkedTracker::new);
    let mut section = Vec::new();
    let first = r.body.with_head(r.head);
    let raw = &buf[first];
    push(send, &mut chunks, &mut section, raw, r.body.done()).await?;
    while !r.body.done() {
        let n = body::read_next(c, buf, &mut r.body, deadline)
            .await
            .map_err(BodyEnd::Client)?;
        push(send, &mut chunks, &mut section, &buf[..n], r.body.done()).await?;
        buf.drain(..n);
    }
    Ok(())
}

/// Send the data in `raw` (decoded from chunks when `chunks` follows them, the trailer
/// section's bytes added to `section`); `end`: it is the body's last, and the stream
/// ends after it, with the trailers when the section has fields that may trail.
async fn push(
    send: &mut ::h2::SendStream<Bytes>,
    chunks: &mut Option<ChunkedTracker>,
    section: &mut Vec<u8>,
    raw: &[u8],
    end: bool,
) -> Result<(), BodyEnd> {
    let data = match chunks {
        None => Bytes::copy_from_slice(raw),
        Some(t) => {
            let mut data = Vec::with_capacity(raw.len());
            let on_data = |range| data.extend_from_slice(&raw[range]);
            t.feed_split(raw, on_data, |range| section.extend_from_slice(&raw[range]))
                .map_err(|_| BodyEnd::Client(ReadFail::BadBody))?;
            Bytes::from(data)
        }
    };
    let trailers = end && !section.is_empty();
    send_data(send, data, end && !trailers)
        .await
        .map_err(|_| BodyEnd::Upstream)?;
    if trailers {
        let sent = match crate::proxy::trailers::parse_section(section) {
            Some(t) => send.send_trailers(t),
            // Nothing in it may trail: the stream ends as for a body without one.
            None => send.send_data(Bytes::new(), true),
        };
        sent.map_err(|_| BodyEnd::Upstream)?;
    }
    Ok(())
}

/// Send `data` as the stream's flow control allows, ending the stream after it when
/// `end`.
async fn send_data(
    send: &mut ::h2::SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), ::h2::Error> {
    while !data.is_empty() {
        if send.capacity() == 0 {
            send.reserve_capacity(data.len());
            match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => return Err(::h2::Error::from(::h2::Reason::CANCEL)),
            }
        }
        let n = send.capacity().min(data.len());
        let last = end && n == data.len();
        send.send_data(data.split_to(n), last)?;
        if last {
            return Ok(());
        }
    }
    if end {
        send.send_data(Bytes::new(), true)?;
    }
    Ok(())
}
