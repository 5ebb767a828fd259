//! The answer of an HTTP/2 backend written to an HTTP/1.1 client: the head (the
//! route's response edits applied, the framing chosen for this client), then the body
//! as the stream's data comes (its length, chunks with the trailers that may be
//! trailers in the last one, or until close to an HTTP/1.0 client).

use super::super::super::io::{self, Limit};
use super::super::super::sent::Sent;
use super::super::super::{date, Conn, Next};
use super::super::Req;
use crate::proxy::accounting::BodyEnd;
use crate::proxy::trailers::last_chunk;
use http::header::{CONTENT_LENGTH, DATE};
use http::HeaderMap;
use tango_core::http1::codec::{reason_phrase, write_field, ChunkPrefix, Version, LAST_CHUNK};
use tango_core::rewrite::Apply;

/// How the response body goes to the client.
#[derive(PartialEq, Eq, Clone, Copy)]
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// Write the response to the client: the head (with the route's response edits), then
/// the body as it comes, counting its bytes in the request's count as they go. Returns
/// what the connection does next, the body bytes sent and how the body ended.
pub(super) async fn respond(
    c: &mut Conn<'_>,
    r: &mut Req<'_>,
    resp: http::Response<::h2::RecvStream>,
    apply: Option<&Apply<'_>>,
) -> (Next, u64, BodyEnd) {
    let (parts, mut recv) = resp.into_parts();
    let status = parts.status.as_u16();
    let length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let http11 = r.head.version == Version::Http11;
    let framing = if r.head.method == tango_core::http1::codec::Method::Head
        || status == 204
        || status == 304
    {
        Framing::None
    } else if let Some(n) = length {
        Framing::Length(n)
    } else if http11 {
        Framing::Chunked
    } else {
        Framing::Close
    };
    let keep = r.head.keep_alive && r.body.done() && !c.closing() && framing != Framing::Close;
    let mut out = Vec::with_capacity(256);
    write_head(
        &mut out,
        r.head.version,
        status,
        &parts.headers,
        framing,
        keep,
        length,
        apply,
    );
    let limit = Limit::Stall(c.l.send_timeout);
    if io::write(&c.s, &out, limit, &mut c.timer).await.is_err() {
        return (Next::Close, 0, BodyEnd::Client);
    }
    if framing == Framing::None {
        let next = if keep { Next::KeepAlive } else { Next::Linger };
        return (next, 0, BodyEnd::Whole);
    }
    let ended = relay(c, &mut recv, framing, &mut r.sent).await;
    let bytes = r.sent.total();
    match ended {
        Ok(()) if length.is_none_or(|n| n == bytes) => {
            let next = if keep { Next::KeepAlive } else { Next::Linger };
            (next, bytes, BodyEnd::Whole)
        }
        // The stream ended cleanly short of (or past) its length: h2 checks the length
        // as data comes, so this is the backend's doing too.
        Ok(()) => (Next::Close, bytes, BodyEnd::Backend),
        Err(end) => (Next::Close, bytes, end),
    }
}

/// The response head for an HTTP/1 client: the backend's fields (minus those the
/// route's edits drop), the edits' own, then the framing and `Date`, as the engine
/// writes an HTTP/1 backend's.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_head(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    fields: &HeaderMap,
    framing: Framing,
    keep: bool,
    length: Option<u64>,
    apply: Option<&Apply<'_>>,
) {
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(format!(" {status} ").as_bytes());
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or(reason_phrase(status));
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        let name = name.as_str().as_bytes();
        let dropped = apply.is_some_and(|a| a.edits.drops(name));
        if name != b"content-length" && !dropped {
            write_field(out, name, value.as_bytes());
        }
    }
    if let Some(a) = apply {
        a.edits.write_fields(out, &a.vars);
    }
    match (keep, version) {
        (false, Version::Http11) => out.extend_from_slice(b"connection: close\r\n"),
        (true, Version::Http10) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        _ => {}
    }
    match framing {
        Framing::Length(n) => write_field(out, b"content-length", n.to_string().as_bytes()),
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // A HEAD's answer keeps the length the backend gave.
        Framing::None => {
            if let Some(n) = length {
                write_field(out, b"content-length", n.to_string().as_bytes());
            }
        }
        Framing::Close => {}
    }
    if !fields.contains_key(DATE) {
        date::with(|d| write_field(out, b"date", d));
    }
    out.extend_from_slice(b"\r\n");
}

/// The body's data to the client as `framing` says, then (chunked) the trailers, the
/// data counted in `sent` (0 at the start) as the kernel takes it, a write cut short
/// counting what of its data went. `Ok` when the stream ended cleanly, `Err` with who
/// broke it off when not: the backend (a reset or failed stream, silence past the
/// stall timeout) or the client (a write that failed or stalled).
async fn relay(
    c: &mut Conn<'_>,
    recv: &mut ::h2::RecvStream,
    framing: Framing,
    sent: &mut Sent,
) -> Result<(), BodyEnd> {
    let chunked = framing == Framing::Chunked;
    let limit = Limit::Stall(c.l.send_timeout);
    let stall = c.body_stall();
    loop {
        let next = tokio::time::timeout(stall, recv.data()).await;
        let data = match next {
            Ok(Some(Ok(d))) => d,
            Ok(None) => break,
            Ok(Some(Err(_))) | Err(_) => return Err(BodyEnd::Backend),
        };
        let _ = recv.flow_control().release_capacity(data.len());
        if data.is_empty() {
            continue;
        }
        let prefix = chunked.then(|| ChunkPrefix::new(data.len() as u64));
        let mut parts = io::framed(prefix.as_ref(), &data);
        let lead = prefix.as_ref().map_or(0, |p| p.as_bytes().len());
        let wrote = sent.write(lead, data.len());
        if io::write_all(&c.s, &mut parts, limit, &mut c.timer, wrote)
            .await
            .is_err()
        {
            return Err(BodyEnd::Client);
        }
    }
    let trailers = match tokio::time::timeout(stall, recv.trailers()).await {
        Ok(Ok(t)) => t,
        Ok(Err(_)) | Err(_) => return Err(BodyEnd::Backend),
    };
    if chunked {
        // Only the fields that may be trailers, as hyper's side sends them.
        let end = trailers
            .as_ref()
            .map_or_else(|| LAST_CHUNK.to_vec(), last_chunk);
        if io::write(&c.s, &end, limit, &mut c.timer).await.is_err() {
            return Err(BodyEnd::Client);
        }
    }
    Ok(())
}
