//! A backend's response head as its client gets it: the status line in the client's
//! version, the backend's fields minus the hop-by-hop ones, the body's framing decided
//! anew for this client (with the plan for sending the body), Date when missing, and
//! the route's edits.

use super::super::fields::Kind;
use super::super::response::{ResponseFraming, ResponseHead};
use super::super::Version;
use super::{length, status_line, write_field, Lines};
use crate::rewrite::Apply;

/// The client's side of a response: what its request said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFacts {
    /// The client's request version: the response's status line has it.
    pub version: Version,
    /// The client's request allows another on the connection, and tango means to
    /// read one (false when it will close anyway, say while draining).
    pub keep_alive: bool,
    /// The request was HEAD (the backend's Content-Length is passed on).
    pub is_head: bool,
}

/// How the response body goes to the client, after the head [`write_response_head`]
/// wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body.
    None,
    /// Exactly this many bytes, as they come.
    Length(u64),
    /// A chunked body, as it comes: a [`ChunkedTracker`](super::super::ChunkedTracker)
    /// finds its end.
    Chunked,
    /// A close-delimited body, framed as chunks
    /// ([`encode_chunk`](super::super::encode_chunk) each read,
    /// [`LAST_CHUNK`](super::super::LAST_CHUNK) when the backend closes).
    ChunkEncode,
    /// A chunked body to an HTTP/1.0 client: only its data
    /// ([`ChunkedTracker::feed_data`](super::super::ChunkedTracker::feed_data)); the end
    /// is told by closing.
    DechunkToClose,
    /// A close-delimited body to an HTTP/1.0 client: as it comes, until the backend
    /// closes; then the client connection closes.
    CloseDelimited,
    /// A protocol switch: after the head, bytes pass both ways unframed.
    Tunnel,
}

/// What [`write_response_head`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePlan {
    /// How the body is sent.
    pub body: BodyPlan,
    /// Whether the client connection takes another request after this response.
    pub keep_alive: bool,
}

/// Append the head of `resp` (parsed from `buf`) for the client to `out`, and say how
/// its body is sent. `date` is the Date value to add when the backend sent none (an
/// IMF-fixdate, formatted once a second by the caller). An interim (1xx) response
/// goes only to an HTTP/1.1 client (RFC 9110 15.2): for HTTP/1.0 nothing is written.
pub fn write_response_head(
    out: &mut Vec<u8>,
    resp: &ResponseHead,
    buf: &[u8],
    client: ClientFacts,
    date: &[u8],
) -> ResponsePlan {
    write_response_head_edited(out, resp, buf, client, date, None)
}

/// [`write_response_head`], with the route's response edits applied to a final
/// response after tango's own fields (Date included); framing fields are tango's.
pub fn write_response_head_edited(
    out: &mut Vec<u8>,
    resp: &ResponseHead,
    buf: &[u8],
    client: ClientFacts,
    date: &[u8],
    edits: Option<&Apply<'_>>,
) -> ResponsePlan {
    let plan = plan(resp, client);
    if resp.interim && client.version == Version::Http10 {
        return plan;
    }
    let edits = edits.filter(|a| !resp.interim && !a.edits.is_empty());
    let kept = |name: &[u8]| edits.is_none_or(|a| !a.edits.drops(name));
    out.reserve(resp.head_len + 64);
    status_line(out, client.version, resp.status, resp.reason.of(buf));
    let mut lines = Lines::new(buf);
    for h in resp.headers.iter() {
        if !(h.is_hop_by_hop() || h.kind() == Kind::ContentLength) && kept(h.name().of(buf)) {
            lines.push(out, h);
        }
    }
    lines.flush(out);
    if resp.interim {
        out.extend_from_slice(b"\r\n");
        return plan;
    }
    match (plan.body, client.version, plan.keep_alive) {
        (BodyPlan::Tunnel, _, _) if resp.status == 101 => {
            out.extend_from_slice(b"connection: upgrade\r\n");
        }
        (BodyPlan::Tunnel, _, _) => {}
        (_, Version::Http11, false) => out.extend_from_slice(b"connection: close\r\n"),
        (_, Version::Http10, true) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        _ => {}
    }
    match plan.body {
        BodyPlan::Length(n) => length(out, n),
        BodyPlan::Chunked if resp.coded => codings(out, resp, buf, false),
        BodyPlan::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        BodyPlan::ChunkEncode => codings(out, resp, buf, true),
        BodyPlan::None if client.is_head => {
            if let Some(n) = resp.content_length {
                length(out, n);
            }
        }
        _ => {}
    }
    if !resp.has_date() && kept(b"date") {
        write_field(out, b"date", date);
    }
    if let Some(a) = edits {
        a.edits.write_fields(out, &a.vars);
    }
    out.extend_from_slice(b"\r\n");
    plan
}

/// The framing field of a body whose codings the backend named: they stay, since the
/// bytes go on coded and the client must know it. A chunked body's fields end in
/// `chunked` already (`gzip, chunked`); a close-delimited body sent as chunks
/// (`then_chunked`) gets `chunked` after them (`Transfer-Encoding: gzip` without
/// `chunked` ends at the close).
fn codings(out: &mut Vec<u8>, resp: &ResponseHead, buf: &[u8], then_chunked: bool) {
    out.extend_from_slice(b"transfer-encoding: ");
    let mut first = true;
    for h in resp.headers.of_kind(Kind::TransferEncoding) {
        let v = h.value().of(buf);
        if !v.is_empty() {
            if !std::mem::take(&mut first) {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(v);
        }
    }
    if then_chunked {
        if !first {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"chunked");
    }
    out.extend_from_slice(b"\r\n");
}

/// The body plan and the client connection's fate, as hyper's server decided them.
fn plan(resp: &ResponseHead, client: ClientFacts) -> ResponsePlan {
    let http11 = client.version == Version::Http11;
    let (body, closes) = match resp.framing {
        _ if resp.switching => (BodyPlan::Tunnel, true),
        ResponseFraming::NoBody => (BodyPlan::None, false),
        ResponseFraming::Length(n) => (BodyPlan::Length(n), false),
        ResponseFraming::Chunked if http11 => (BodyPlan::Chunked, false),
        ResponseFraming::Chunked => (BodyPlan::DechunkToClose, true),
        ResponseFraming::CloseDelimited if http11 => (BodyPlan::ChunkEncode, false),
        ResponseFraming::CloseDelimited => (BodyPlan::CloseDelimited, true),
    };
    ResponsePlan {
        body,
        keep_alive: client.keep_alive && !closes,
    }
}
